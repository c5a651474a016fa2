"""LeanVec training, projection, serialisation and the LVQ helpers, on small seeded data."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import numpy as np
import pytest

from index.leanvec import (
    LeanVecModel,
    Solver,
    inner_product_error,
    lvq_decode,
    lvq_encode,
    train_id,
    train_ood,
)
from index.serialization import IndexFormatError, pack, unpack
from tests.helpers.data import out_of_distribution

DIM, DIM_OUT = 64, 16


def subspace_data(n: int = 500, seed: int = 0) -> np.ndarray:
    """Rows lying exactly in a ``DIM_OUT``-dimensional affine subspace."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(DIM, DIM_OUT)))
    coords = rng.normal(size=(n, DIM_OUT)) * np.linspace(3.0, 1.0, DIM_OUT)
    rows: np.ndarray = (coords @ basis.T + rng.normal(size=DIM)).astype(np.float32)
    return rows


def in_distribution(seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Database and queries from one distribution with a decaying spectrum."""
    rng = np.random.default_rng(seed)
    spectrum = 1.0 / np.arange(1, DIM + 1) ** 0.7
    data = rng.normal(size=(2000, DIM)) * spectrum
    queries = rng.normal(size=(300, DIM)) * spectrum
    return data.astype(np.float32), queries.astype(np.float32)


def recall_at_10(model: LeanVecModel, data: np.ndarray, queries: np.ndarray) -> float:
    """Exact top-10 in the projected space vs exact top-10 by the full inner product."""
    truth = np.argpartition(-(queries @ data.T), 10, axis=1)[:, :10]
    projected = model.project_queries(queries) @ model.project_data(data).T
    found = np.argpartition(-projected, 10, axis=1)[:, :10]
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def test_id_projections_have_the_reduced_shape_and_float32() -> None:
    data = subspace_data()
    model = train_id(data, DIM_OUT)
    projected_data, projected_queries = model.project_data(data), model.project_queries(data[:7])
    assert (projected_data.shape, projected_data.dtype.name) == ((len(data), DIM_OUT), "float32")
    assert (projected_queries.shape, projected_queries.dtype.name) == ((7, DIM_OUT), "float32")
    assert (model.variant, model.dim_in, model.dim_out, model.iterations) == ("id", DIM, DIM_OUT, 0)


def test_id_map_has_orthonormal_columns_shared_by_both_sides() -> None:
    rng = np.random.default_rng(1)
    model = train_id(rng.normal(size=(400, DIM)).astype(np.float32), DIM_OUT)
    gram = model.query_map.T @ model.query_map
    np.testing.assert_allclose(gram, np.eye(DIM_OUT), atol=1e-5)
    assert model.data_map is model.query_map


def test_id_error_is_zero_for_data_in_a_subspace_of_the_target_dimension() -> None:
    data = subspace_data()
    model = train_id(data, DIM_OUT)
    queries = np.random.default_rng(2).normal(size=(50, DIM)).astype(np.float32)
    assert inner_product_error(model, queries, data) < 1e-6
    assert model.train_loss < 1e-6


def test_id_error_is_positive_when_the_data_needs_more_dimensions() -> None:
    data, queries = in_distribution()
    assert inner_product_error(train_id(data, DIM_OUT), queries, data) > 1e-3


def test_inner_product_error_matches_the_explicit_matrices() -> None:
    data, queries, _ = out_of_distribution()
    model = train_ood(data[:300], queries[:40], DIM_OUT, max_iters=5)
    exact = queries[:40].astype(np.float64) @ (data[:300] - model.mean).T.astype(np.float64)
    approx = model.project_queries(queries[:40]) @ model.project_data(data[:300]).T
    expected = np.sum((exact - approx) ** 2) / np.sum(exact**2)
    assert inner_product_error(model, queries[:40], data[:300]) == pytest.approx(expected, rel=1e-4)


SOLVERS = ["closed_form", "frank_wolfe"]


@pytest.mark.parametrize("solver", SOLVERS)
def test_ood_error_on_held_out_queries_is_well_below_id(solver: Solver) -> None:
    data, train_queries, held_out = out_of_distribution()
    id_error = inner_product_error(train_id(data, DIM_OUT), held_out, data)
    ood = train_ood(data, train_queries, DIM_OUT, solver=solver)
    ood_error = inner_product_error(ood, held_out, data)
    # Measured: ID 0.675; OOD 0.365 with Frank-Wolfe (46 % lower; seeds 1-4 give the
    # same picture), 0.352 with the closed form.
    assert ood_error <= 0.9 * id_error


@pytest.mark.parametrize("solver", SOLVERS)
def test_ood_recall_at_10_in_the_projected_space_beats_id(solver: Solver) -> None:
    data, train_queries, held_out = out_of_distribution()
    id_recall = recall_at_10(train_id(data, DIM_OUT), data, held_out)
    ood_recall = recall_at_10(
        train_ood(data, train_queries, DIM_OUT, solver=solver), data, held_out
    )
    # Measured: ID 0.122; OOD 0.350 with Frank-Wolfe (seeds 1-4: ID 0.14-0.15, OOD
    # 0.33-0.37), 0.336 with the closed form.
    assert ood_recall >= id_recall + 0.1


def test_closed_form_fits_the_training_queries_at_least_as_well_as_frank_wolfe() -> None:
    data, train_queries, _ = out_of_distribution()
    closed = train_ood(data, train_queries, DIM_OUT)
    iterated = train_ood(data, train_queries, DIM_OUT, solver="frank_wolfe", tol=1e-5)
    # Measured: 0.3221 closed form, 0.3226 after 300 Frank-Wolfe iterations.
    assert closed.iterations == 0 and iterated.iterations > 5
    assert closed.train_loss <= iterated.train_loss * 1.01


def test_closed_form_projects_the_database_orthonormally() -> None:
    data, train_queries, _ = out_of_distribution()
    data_map = train_ood(data, train_queries, DIM_OUT).data_map.astype(np.float64)
    assert np.allclose(data_map.T @ data_map, np.eye(DIM_OUT), atol=1e-5)


def test_ood_loss_never_increases_and_ends_below_its_start() -> None:
    data, train_queries, _ = out_of_distribution()
    losses: list[float] = []
    model = train_ood(
        data,
        train_queries,
        DIM_OUT,
        solver="frank_wolfe",
        max_iters=60,
        tol=0.0,
        progress=lambda _, x: losses.append(x),
    )
    assert len(losses) == model.iterations == 60
    assert all(after <= before * (1 + 1e-9) for before, after in pairwise(losses))
    assert losses[-1] < 0.9 * losses[0]  # measured: 0.713 -> 0.349
    assert model.train_loss == losses[-1]


def test_ood_stops_early_when_queries_follow_the_database() -> None:
    data, queries = in_distribution()
    model = train_ood(data, queries, DIM_OUT, solver="frank_wolfe", max_iters=300)
    assert 1 <= model.iterations < 50  # measured: 3


def test_ood_maps_respect_the_spectral_norm_bound() -> None:
    data, train_queries, _ = out_of_distribution()
    model = train_ood(data, train_queries, DIM_OUT, solver="frank_wolfe", max_iters=30)
    assert np.linalg.norm(model.query_map, 2) <= 1 + 1e-5
    assert np.linalg.norm(model.data_map, 2) <= 1 + 1e-5


@pytest.mark.parametrize("variant", ["id", "ood"])
def test_round_trip_keeps_arrays_and_projections(variant: str) -> None:
    data, train_queries, held_out = out_of_distribution()
    model = (
        train_id(data, DIM_OUT)
        if variant == "id"
        else train_ood(data, train_queries, DIM_OUT, max_iters=10)
    )
    loaded = LeanVecModel.from_bytes(model.to_bytes())
    for name in ("mean", "query_map", "data_map"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    np.testing.assert_array_equal(loaded.project_data(data), model.project_data(data))
    np.testing.assert_array_equal(loaded.project_queries(held_out), model.project_queries(held_out))
    scalars = ("variant", "dim_in", "dim_out", "train_loss", "iterations")
    assert [getattr(loaded, s) for s in scalars] == [getattr(model, s) for s in scalars]


def _rewritten(blob: bytes, **changes: object) -> bytes:
    header, blobs = unpack(blob)
    return pack(header | changes, blobs)


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda b: b"XXXX" + b[4:], "bad magic"),
        (lambda b: b[: len(b) - 5], "truncated"),
        (lambda b: b[:4] + (99).to_bytes(4, "little") + b[8:], "unknown index format version"),
        (lambda b: _rewritten(b, version=99), "unknown LeanVec model version"),
        (lambda b: _rewritten(b, kind="flat"), "not a LeanVec model"),
        (lambda b: _rewritten(b, variant="xyz"), "unknown LeanVec variant"),
        (lambda b: _rewritten(b, dim_out=DIM_OUT + 1), "needs"),
        (lambda b: b[:12] + b"}" + b[13:], "corrupt"),
    ],
)
def test_bad_bytes_raise_index_format_error(
    corrupt: Callable[[bytes], bytes], message: str
) -> None:
    blob = train_id(subspace_data(), DIM_OUT).to_bytes()
    with pytest.raises(IndexFormatError, match=message):
        LeanVecModel.from_bytes(corrupt(blob))


def test_lvq_8_bit_error_is_small_and_4_bit_error_is_larger() -> None:
    x = np.random.default_rng(3).normal(size=(300, DIM)).astype(np.float32)
    errors = {}
    for bits in (8, 4):
        decoded = lvq_decode(*lvq_encode(x, bits))
        assert decoded.dtype == np.float32
        errors[bits] = float(np.sum((decoded - x) ** 2) / np.sum(x**2))
    assert errors[8] < 1e-4
    assert errors[4] > 10 * errors[8]


@pytest.mark.parametrize("bits", [8, 4])
def test_lvq_codes_are_in_range_and_error_is_within_half_a_step(bits: int) -> None:
    x = np.random.default_rng(4).normal(size=(200, DIM)).astype(np.float32)
    codes, step, offset = lvq_encode(x, bits)
    assert [a.dtype.name for a in (codes, step, offset)] == ["uint8", "float32", "float32"]
    assert (codes.min(), codes.max()) == (0, 2**bits - 1)
    error = np.abs(lvq_decode(codes, step, offset) - x)
    assert (error <= step[:, None] * 0.5 + 1e-5).all()


def test_lvq_constant_row_decodes_exactly() -> None:
    x = np.full((2, 8), 3.5, dtype=np.float32)
    np.testing.assert_array_equal(lvq_decode(*lvq_encode(x, 8)), x)


@pytest.mark.parametrize("dim_out", [0, DIM + 1])
def test_dim_out_outside_the_input_dimension_is_rejected(dim_out: int) -> None:
    with pytest.raises(ValueError, match="dim_out"):
        train_id(subspace_data(), dim_out)


def test_nan_in_data_or_queries_is_rejected() -> None:
    data, queries, _ = out_of_distribution()
    poisoned = data.copy()
    poisoned[3, 5] = np.nan
    with pytest.raises(ValueError, match="data contains NaN"):
        train_id(poisoned, DIM_OUT)
    with pytest.raises(ValueError, match="queries contains NaN"):
        train_ood(data, np.vstack([queries, poisoned[3:4]]), DIM_OUT)


@pytest.mark.parametrize(
    "call",
    [
        lambda: train_id(np.zeros((0, DIM), dtype=np.float32), DIM_OUT),
        lambda: train_id(np.zeros(DIM, dtype=np.float32), DIM_OUT),
        lambda: train_ood(subspace_data(), np.ones((5, DIM + 1)), DIM_OUT),
        lambda: train_id(subspace_data(), DIM_OUT).project_queries(np.ones((2, DIM - 1))),
        lambda: lvq_encode(np.ones((2, 4)), 3),
        lambda: lvq_decode(np.zeros((2, 4), dtype=np.uint8), np.ones(3), np.ones(2)),
    ],
    ids=["empty", "1-d", "query-dim", "project-dim", "lvq-bits", "lvq-shapes"],
)
def test_bad_shapes_and_arguments_are_rejected(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()
