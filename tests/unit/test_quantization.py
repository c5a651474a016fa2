"""Quantized two-stage backends: recall at default settings, query knobs, memory accounting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from index.base import SearchParams
from index.flat import exact_search
from index.metrics import Distance
from index.quantization import QUANTIZED_BACKENDS, QuantizationMethod, QuantizedParams
from index.registry import index_from_bytes
from tests.helpers.data import embeddings, recall

REFERENCE = Path(__file__).parents[2] / "bench" / "reference" / "quantization.json"
TOLERANCE = 0.02
METHODS: list[QuantizationMethod] = ["scalar", "product", "binary", "rabitq"]
pytestmark = pytest.mark.slow  # every method trained and built on 5,000 384-d vectors


def build(method: QuantizationMethod, xb: np.ndarray) -> Any:
    index = QUANTIZED_BACKENDS[method](xb.shape[1], Distance.COSINE, QuantizedParams())
    for start in range(0, len(xb), 2000):
        index.add(xb[start : start + 2000])
    return index


N_BASE, N_FIRST = 5000, 4000


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xb = embeddings(N_BASE)
    xq = embeddings(200, seed=12)
    truth, _ = exact_search(xb, xq, 10, Distance.COSINE)
    return xb, xq, truth


@pytest.fixture(scope="module")
def built(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[str, Any]:
    """Each method built once on the first N_FIRST rows, then grown by the rest after a
    round trip through bytes (as a merge extends a stored segment)."""
    xb = data[0]
    out: dict[str, Any] = {}
    for method in METHODS:
        first = build(method, xb[:N_FIRST])
        grown = index_from_bytes(first.to_bytes())
        grown.add(xb[N_FIRST:])
        out[method] = first
        out[f"{method}/grown"] = grown
    return out


@pytest.mark.parametrize("method", METHODS)
def test_recall_at_default_settings_matches_the_reference(
    method: QuantizationMethod,
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
    built: dict[str, Any],
) -> None:
    _, xq, truth = data
    found, _ = built[f"{method}/grown"].search(xq, 10)
    measured = recall(found, truth)
    reference = json.loads(REFERENCE.read_text())["recall_at_10_default"][method]
    assert measured >= 0.95
    assert abs(measured - reference) <= TOLERANCE, (measured, reference)


@pytest.mark.parametrize("method", METHODS)
def test_ignore_answers_from_the_originals_exactly(
    method: QuantizationMethod,
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
    built: dict[str, Any],
) -> None:
    xb, xq, _ = data
    exact_ids, exact_scores = exact_search(xb[:N_FIRST], xq, 10, Distance.COSINE)
    params = SearchParams(ignore_quantization=True)
    found, scores = built[method].search(xq, 10, params=params)
    np.testing.assert_array_equal(found, exact_ids)
    np.testing.assert_allclose(scores, exact_scores, rtol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_rescored_scores_are_exact_and_unrescored_are_approximate(
    method: QuantizationMethod,
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
    built: dict[str, Any],
) -> None:
    xb, xq, _ = data
    index = built[method]
    found, scores = index.search(xq, 10)
    exact = np.einsum("qkd,qd->qk", xb[found], xq)
    np.testing.assert_allclose(scores, exact, rtol=1e-4, atol=1e-5)
    rough_ids, rough = index.search(xq, 10, params=SearchParams(rescore=False))
    truth = np.einsum("qkd,qd->qk", xb[rough_ids], xq)
    assert np.abs(rough - truth).mean() < 0.25  # an estimate of the cosine, not garbage
    assert not np.allclose(rough, truth, atol=1e-6)  # and not the exact score


def test_more_oversampling_raises_recall(
    data: tuple[np.ndarray, np.ndarray, np.ndarray], built: dict[str, Any]
) -> None:
    _, xq, truth = data
    index = built["binary/grown"]
    recalls = [
        recall(index.search(xq, 10, params=SearchParams(oversampling=o))[0], truth)
        for o in (1, 4, 16)
    ]
    assert recalls[0] < recalls[1] <= recalls[2] + 0.01, recalls


@pytest.mark.parametrize("method", METHODS)
def test_memory_accounting_matches_the_stored_arrays(
    method: QuantizationMethod,
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
    built: dict[str, Any],
) -> None:
    """Reported codes + graph + trained model vs the bytes faiss writes for the primary
    index (its arrays, little else); originals vs their float32 size."""
    xb = data[0][:N_FIRST]
    index = built[method]
    stats = index.stats()
    primary = index._primary
    if method == "binary":
        written = faiss.serialize_index_binary(primary).size
    else:
        written = faiss.serialize_index(primary).size
    reported = stats.parts["codes"] + stats.parts["graph"] + stats.parts["model"]
    assert abs(reported - written) <= 0.10 * written, (reported, written)
    assert stats.parts["originals"] == xb.nbytes
    assert stats.parts["codes"] <= xb.nbytes / (4 if method == "scalar" else 8)


@pytest.mark.parametrize("method", METHODS)
def test_a_reloaded_index_answers_the_same(
    method: QuantizationMethod,
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
    built: dict[str, Any],
) -> None:
    xq = data[1]
    index = built[method]
    restored = index_from_bytes(index.to_bytes())
    before, after = index.search(xq, 10)[0], restored.search(xq, 10)[0]
    if method == "rabitq":  # faiss 1.15 restores RaBitQ distances to within ~1e-2
        assert (before == after).mean() >= 0.98
    else:
        np.testing.assert_array_equal(before, after)


def test_training_is_deterministic(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    xb, xq, _ = data  # 1,000 rows train PQ's 256 centroids as they would 2,000, in 1/3 the time
    first, second = build("product", xb[:1000]), build("product", xb[:1000])
    np.testing.assert_array_equal(first.search(xq, 10)[0], second.search(xq, 10)[0])
