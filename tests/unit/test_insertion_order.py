"""LID estimation and LID-ordered insertion permutations (index/insertion_order.py)."""

from __future__ import annotations

import numpy as np
import pytest

from index.insertion_order import (
    ORDERS,
    estimate_lid,
    insertion_permutation,
    lid_mle,
    order_by_lid,
)
from index.metrics import Distance

# The MLE is biased up by about k / (k - 2) in the mean; the median of per-point estimates sits
# within ~7% of the true dimension for k = 20, so 15% leaves room for sampling noise.
TOLERANCE = 0.15


def uniform_in_plane(n: int, ambient: int, seed: int) -> np.ndarray:
    """Points uniform in a unit square, linearly embedded in ``ambient`` dimensions."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(ambient, 2)))[0].T
    return (rng.random((n, 2)) @ basis).astype(np.float32)


def gaussian_in_subspace(n: int, intrinsic: int, ambient: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(ambient, intrinsic)))[0].T
    return (rng.normal(size=(n, intrinsic)) @ basis).astype(np.float32)


def test_orders_are_the_documented_names() -> None:
    assert ORDERS == ("none", "lid_desc", "lid_asc")


@pytest.mark.parametrize("dimension", [2, 6, 12])
def test_lid_mle_recovers_dimension_from_exact_ball_distances(dimension: int) -> None:
    # In a uniform D-ball around a point, P(r <= t) = t^D: draw the k radii directly.
    rng = np.random.default_rng(dimension)
    radii = np.sort(rng.random((4000, 20)) ** (1.0 / dimension), axis=1)
    assert np.median(lid_mle(radii)) == pytest.approx(dimension, rel=TOLERANCE)


def test_lid_mle_of_duplicates_is_finite() -> None:
    rows = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.5, 1.0]])
    lid = lid_mle(rows)
    assert np.isfinite(lid).all()
    assert lid[0] == 0.0  # every neighbour is a duplicate: a point mass
    assert 0.0 < lid[1] < lid[3]  # duplicates pull the estimate towards 0


def test_lid_mle_rejects_a_single_neighbour() -> None:
    with pytest.raises(ValueError, match="k >= 2"):
        lid_mle(np.ones((3, 1)))


def test_estimate_lid_of_a_plane_in_10d_is_about_2() -> None:
    lid = estimate_lid(uniform_in_plane(3000, 10, seed=1), Distance.EUCLID)
    assert np.median(lid) == pytest.approx(2.0, rel=TOLERANCE)


def test_estimate_lid_of_a_6d_gaussian_in_10d_is_about_6() -> None:
    lid = estimate_lid(gaussian_in_subspace(3000, 6, 10, seed=2), Distance.EUCLID)
    assert np.median(lid) == pytest.approx(6.0, rel=TOLERANCE)


def test_estimate_lid_with_a_small_reference_sample_still_finds_the_dimension() -> None:
    vectors = gaussian_in_subspace(3000, 6, 10, seed=3)
    lid = estimate_lid(vectors, Distance.EUCLID, sample=500)
    assert lid.shape == (3000,)
    assert np.median(lid) == pytest.approx(6.0, rel=TOLERANCE)


def test_estimate_lid_for_cosine_uses_angles_not_norms() -> None:
    directions = gaussian_in_subspace(2000, 3, 10, seed=4)  # a great 2-sphere once normalised
    scales = np.random.default_rng(5).uniform(0.1, 10.0, size=(2000, 1)).astype(np.float32)
    lid = estimate_lid(directions * scales, Distance.COSINE)
    np.testing.assert_allclose(lid, estimate_lid(directions, Distance.COSINE), rtol=1e-4)
    assert np.median(lid) == pytest.approx(2.0, rel=TOLERANCE)


@pytest.mark.parametrize("distance", list(Distance))
def test_estimate_lid_on_duplicated_vectors_has_no_nan(distance: Distance) -> None:
    rng = np.random.default_rng(6)
    vectors = np.repeat(rng.normal(size=(30, 5)), 25, axis=0).astype(np.float32)
    lid = estimate_lid(vectors, distance, k=10)
    assert np.isfinite(lid).all()


def test_estimate_lid_excludes_the_point_itself() -> None:
    # Four corners of a square: without self-exclusion a zero distance would give LID 0.
    square = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float32)
    lid = estimate_lid(square, Distance.EUCLID, k=3)
    expected = lid_mle(np.array([[1.0, 1.0, np.sqrt(2.0)]]))[0]
    np.testing.assert_allclose(lid, np.full(4, expected))


def test_estimate_lid_is_reproducible_for_a_seed() -> None:
    vectors = gaussian_in_subspace(1500, 4, 8, seed=7)
    first = estimate_lid(vectors, Distance.EUCLID, sample=300, seed=11)
    second = estimate_lid(vectors, Distance.EUCLID, sample=300, seed=11)
    np.testing.assert_array_equal(first, second)


def test_estimate_lid_rejects_too_few_vectors() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        estimate_lid(np.zeros((2, 4), dtype=np.float32), Distance.EUCLID)


def test_none_order_keeps_the_given_order() -> None:
    assert insertion_permutation(np.zeros((10, 3)), Distance.EUCLID, "none") is None


@pytest.mark.parametrize("order", ["lid_desc", "lid_asc"])
def test_permutation_is_a_permutation_sorted_by_lid(order: str) -> None:
    # A 2-d plane and a 8-d blob side by side: two clearly different LIDs.
    vectors = np.vstack(
        [uniform_in_plane(800, 10, seed=8), 3.0 + gaussian_in_subspace(800, 8, 10, seed=9)]
    )
    permutation = insertion_permutation(vectors, Distance.EUCLID, order)  # type: ignore[arg-type]
    assert permutation is not None
    np.testing.assert_array_equal(np.sort(permutation), np.arange(1600))
    lid = estimate_lid(vectors, Distance.EUCLID)[permutation]
    steps = np.diff(lid)
    assert (steps <= 0).all() if order == "lid_desc" else (steps >= 0).all()


@pytest.mark.parametrize("order", ["lid_desc", "lid_asc"])
def test_equal_lids_keep_their_original_order(order: str) -> None:
    square = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float32)
    permutation = insertion_permutation(square, Distance.EUCLID, order, k=3)  # type: ignore[arg-type]
    np.testing.assert_array_equal(permutation, np.arange(4))


def test_unknown_order_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown insertion order"):
        insertion_permutation(np.zeros((10, 3)), Distance.EUCLID, "random")  # type: ignore[arg-type]


def test_fewer_than_three_rows_come_back_unpermuted() -> None:
    permutation = insertion_permutation(np.ones((2, 3)), Distance.EUCLID, "lid_desc")
    np.testing.assert_array_equal(permutation, np.arange(2))


def test_order_by_lid_sorts_given_lids_stably() -> None:
    lid = np.array([3.0, 1.0, 3.0, 2.0])
    np.testing.assert_array_equal(order_by_lid(lid, "lid_desc"), [0, 2, 3, 1])
    np.testing.assert_array_equal(order_by_lid(lid, "lid_asc"), [1, 3, 0, 2])
    assert order_by_lid(lid, "none") is None
