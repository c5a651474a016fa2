"""TurboQuant: the fixed codebooks and rotation, and the backend built from them."""

from __future__ import annotations

import numpy as np
import pytest

from index.base import SearchParams
from index.flat import exact_search
from index.metrics import Distance, normalize_rows
from index.quantization import QuantizedParams, ScalarQuantizedIndex, TurboQuantizedIndex
from index.registry import index_from_bytes
from index.turbo import (
    TURBO_BITS,
    codebook,
    encode_storage,
    padded_dim,
    rotation,
    storage_cast,
)
from tests.helpers.data import recall

DIM = 24


def test_one_and_two_bit_codebooks_are_the_known_gaussian_lloyd_max_levels() -> None:
    """N(0, 1): one bit +-sqrt(2 / pi); two bits +-0.4528, +-1.5104 (Max, 1960)."""
    np.testing.assert_allclose(codebook(1, 1.0).ravel(), [-0.79788, 0.79788], atol=1e-4)
    np.testing.assert_allclose(
        codebook(1, 2.0).ravel(), [-1.5104, -0.4528, 0.4528, 1.5104], atol=1e-3
    )
    np.testing.assert_allclose(codebook(100, 1.0), codebook(1, 1.0) / 10, rtol=1e-6)


@pytest.mark.parametrize("bits", TURBO_BITS)
def test_codebooks_have_two_to_the_code_bits_sorted_distinct_levels(bits: float) -> None:
    levels = codebook(DIM, bits)
    per_code = 2 if bits == 1.5 else 1
    assert levels.shape == (2 ** int(bits * per_code), per_code)
    assert len(np.unique(levels, axis=0)) == len(levels)


def test_rotation_is_orthogonal_and_seeded() -> None:
    matrix = rotation(DIM + 1)
    np.testing.assert_allclose(matrix @ matrix.T, np.eye(DIM + 1), atol=1e-5)
    np.testing.assert_array_equal(matrix, rotation(DIM + 1))
    assert padded_dim(DIM + 1, 1.5) == DIM + 2 and padded_dim(DIM + 1, 4.0) == DIM + 1


def test_unknown_bit_width_is_refused() -> None:
    with pytest.raises(ValueError, match="turbo bits"):
        TurboQuantizedIndex(DIM, Distance.COSINE, QuantizedParams(turbo_bits=3.0))


def data(distance: Distance) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    xb = rng.normal(size=(1500, DIM + 1)).astype(np.float32)
    xq = rng.normal(size=(50, DIM + 1)).astype(np.float32)
    return (normalize_rows(xb), normalize_rows(xq)) if distance is Distance.COSINE else (xb, xq)


@pytest.mark.parametrize("distance", [Distance.COSINE, Distance.DOT, Distance.EUCLID])
@pytest.mark.parametrize("bits", TURBO_BITS)
def test_codes_rank_well_and_rescoring_reaches_high_recall(distance: Distance, bits: float) -> None:
    xb, xq = data(distance)
    truth, _ = exact_search(xb, xq, 10, distance)
    index = TurboQuantizedIndex(DIM + 1, distance, QuantizedParams(turbo_bits=bits))
    index.add(xb)
    assert recall(index.search(xq, 10)[0], truth) >= 0.95
    rough = recall(index.search(xq, 10, params=SearchParams(rescore=False))[0], truth)
    assert rough >= {1.0: 0.2, 1.5: 0.3, 2.0: 0.4, 4.0: 0.8, 8.0: 0.95}[bits], rough
    coded = padded_dim(DIM + 1 + (distance is Distance.DOT), bits)  # Dot: + the norm's slack
    assert index.stats().parts["codes"] == len(xb) * -(-coded * bits // 8)


def test_dot_codes_carry_each_rows_own_norm() -> None:
    """Rows whose norms spread 1..20 (one scale for all would code the short ones
    coarsely): the codes alone still rank by the true inner product."""
    rng = np.random.default_rng(6)
    xb = rng.normal(size=(1500, DIM)) * rng.uniform(1, 20, size=(1500, 1))
    xb, xq = xb.astype(np.float32), rng.normal(size=(50, DIM)).astype(np.float32)
    truth, _ = exact_search(xb, xq, 10, Distance.DOT)
    index = TurboQuantizedIndex(DIM, Distance.DOT, QuantizedParams(turbo_bits=4.0))
    index.add(xb)
    found, estimate = index.search(xq, 10, params=SearchParams(rescore=False))
    assert recall(found, truth) >= 0.8
    true = np.einsum("qkd,qd->qk", xb[found], xq)
    assert np.abs(estimate - true).mean() < 0.1 * np.abs(true).mean()


def test_a_reloaded_index_answers_the_same_and_keeps_growing() -> None:
    xb, xq = data(Distance.DOT)
    index = TurboQuantizedIndex(DIM + 1, Distance.DOT, QuantizedParams(turbo_bits=1.5))
    index.add(xb[:1000])
    reloaded = index_from_bytes(index.to_bytes())
    assert reloaded._rotation is index._rotation  # one matrix per dimension in memory
    unscored = SearchParams(rescore=False)
    np.testing.assert_array_equal(
        reloaded.search(xq, 10, params=unscored)[0], index.search(xq, 10, params=unscored)[0]
    )
    reloaded.add(xb[1000:])
    truth, _ = exact_search(xb, xq, 10, Distance.DOT)
    assert recall(reloaded.search(xq, 10)[0], truth) >= 0.95


# -- datatype turbo4: the stored vector is its code ---------------------------------


def turbo4_rows(distance: Distance) -> tuple[np.ndarray, np.ndarray]:
    """Rows with norms spread 1..5 (Dot / Euclid keep each norm as the code's scale)."""
    rng = np.random.default_rng(11)
    xb = (rng.normal(size=(1500, DIM)) * rng.uniform(1, 5, size=(1500, 1))).astype(np.float32)
    xq = rng.normal(size=(50, DIM)).astype(np.float32)
    return (normalize_rows(xb), normalize_rows(xq)) if distance is Distance.COSINE else (xb, xq)


def test_turbo4_cast_keeps_each_norm_and_codes_back_to_itself() -> None:
    xb, _ = turbo4_rows(Distance.DOT)
    cast = storage_cast(xb, 4)
    np.testing.assert_allclose(np.linalg.norm(cast, axis=1), np.linalg.norm(xb, axis=1), rtol=1e-5)
    np.testing.assert_array_equal(encode_storage(cast, 4)[0], encode_storage(xb, 4)[0])
    cosine = np.einsum("ij,ij->i", normalize_rows(xb), normalize_rows(cast))
    assert cosine.min() > 0.98
    assert encode_storage(xb, 4)[0].shape == (len(xb), DIM // 2)  # two codes a byte


@pytest.mark.parametrize("distance", [Distance.COSINE, Distance.DOT, Distance.EUCLID])
def test_turbo4_storage_holds_codes_only_and_scores_the_stored_values(distance: Distance) -> None:
    xb, xq = turbo4_rows(distance)
    cast = storage_cast(xb, 4)
    params = QuantizedParams(turbo_bits=4.0, storage="turbo4")
    index = TurboQuantizedIndex(DIM, distance, params)
    index.add(cast)
    parts = index.stats().parts
    assert parts["originals"] == parts["originals_mapped"] == 0
    assert parts["stored_codes"] == len(xb) * (DIM // 2 + 4)  # 4-bit codes + a float32 norm
    np.testing.assert_allclose(index.vectors(), cast, atol=1e-5)
    found, scores = index.search(xq, 10)
    truth, _ = exact_search(cast, xq, 10, distance)
    assert recall(found, truth) >= 0.95
    exact = exact_search(cast, xq, 10, distance)[1]
    np.testing.assert_allclose(scores[:, 0], exact[:, 0], rtol=1e-4, atol=1e-4)
    assert recall(found, exact_search(xb, xq, 10, distance)[0]) >= 0.8


def test_turbo4_storage_reloads_the_same_codes() -> None:
    xb, xq = turbo4_rows(Distance.EUCLID)
    index = TurboQuantizedIndex(DIM, Distance.EUCLID, QuantizedParams(storage="turbo4"))
    index.add(storage_cast(xb, 4))
    reloaded = index_from_bytes(index.to_bytes())
    np.testing.assert_array_equal(reloaded.vectors(), index.vectors())
    np.testing.assert_array_equal(reloaded.search(xq, 10)[0], index.search(xq, 10)[0])
    assert reloaded.same_rows(storage_cast(xb, 4)).all()


def test_storage_as_codes_is_turbo_only() -> None:
    with pytest.raises(ValueError, match="only turbo quantization"):
        ScalarQuantizedIndex(DIM, Distance.DOT, QuantizedParams(storage="turbo4"))
