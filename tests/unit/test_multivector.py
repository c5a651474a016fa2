"""Exact MaxSim storage and search (index/multivector.py), checked against plain loops."""

from __future__ import annotations

import numpy as np
import pytest

import index.multivector as multivector
from index.datatypes import to_turbo
from index.metrics import Distance
from index.multivector import (
    MaxSimIndex,
    MaxSimParams,
    Ragged,
    exact_maxsim,
    maxsim_pairs,
    top_of,
)
from index.registry import create_index, create_multi_index, index_from_bytes, is_multi_vector
from index.serialization import IndexFormatError
from tests.helpers.data import reference_chamfer

DIM = 8


def sets(seed: int, lengths: tuple[int, ...]) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, DIM)).astype(np.float32) for n in lengths]


def reference_top(
    queries: list[np.ndarray], docs: list[np.ndarray], k: int, allowed: set[int]
) -> list[list[int]]:
    out = []
    for query in queries:
        scored = [(-reference_chamfer(query, docs[d]), d) for d in sorted(allowed) if len(docs[d])]
        out.append([d for _, d in sorted(scored)[:k]])
    return out


def test_ragged_take_concat_and_lengths() -> None:
    items = sets(0, (2, 0, 3, 1))
    ragged = Ragged.from_arrays(items, DIM)
    assert ragged.lengths.tolist() == [2, 0, 3, 1] and len(ragged) == 4
    picked = ragged.take(np.array([3, 0, 1]))
    assert picked.lengths.tolist() == [1, 2, 0]
    np.testing.assert_array_equal(picked.item(1), items[0])
    masked = ragged[np.array([False, True, True, False])]
    np.testing.assert_array_equal(masked.item(1), items[2])
    both = Ragged.concat([ragged, picked], DIM)
    assert both.lengths.tolist() == [2, 0, 3, 1, 1, 2, 0]


@pytest.mark.parametrize("chunk", [None, 5])
def test_exact_maxsim_equals_brute_force(
    monkeypatch: pytest.MonkeyPatch, chunk: int | None
) -> None:
    if chunk is not None:  # a few tokens per GEMM, a few query tokens per pass
        monkeypatch.setattr(multivector, "_MIN_SCAN_TOKENS", chunk)
        monkeypatch.setattr(multivector, "_SCAN_SCORES", chunk)
        monkeypatch.setattr(multivector, "_QUERY_TOKENS_PER_PASS", 3)
    docs = sets(1, (3, 1, 5, 2, 0, 4, 6, 2))
    queries = sets(2, (1, 4, 2))
    ids, scores = exact_maxsim(Ragged.from_arrays(queries, DIM), Ragged.from_arrays(docs, DIM), 4)
    assert ids.tolist() == reference_top(queries, docs, 4, set(range(len(docs))))
    for q, row in enumerate(ids):
        expected = [reference_chamfer(queries[q], docs[d]) for d in row]
        np.testing.assert_allclose(scores[q], expected, rtol=1e-5)


def test_index_honours_allowed_rows_deletes_and_empty_rows() -> None:
    docs = sets(3, (3, 0, 5, 2, 4, 1, 2))
    queries = sets(4, (2, 3))
    index = MaxSimIndex(DIM, Distance.DOT)
    index.add(Ragged.from_arrays(docs[:4], DIM))
    index.add(Ragged.from_arrays(docs[4:], DIM))
    index.delete(np.array([2]))
    allowed = np.array([True, True, True, False, True, True, True])
    ids, scores = index.search(Ragged.from_arrays(queries, DIM), 10, allowed=allowed)
    assert ids[:, :4].tolist() == reference_top(queries, docs, 4, {0, 4, 5, 6})
    assert (ids[:, 4:] == -1).all() and np.isneginf(scores[:, 4:]).all()


def test_rescore_ranks_candidates_and_skips_padding() -> None:
    docs = sets(5, (3, 1, 5, 2))
    queries = sets(6, (2, 3))
    index = MaxSimIndex(DIM, Distance.COSINE)
    index.add(Ragged.from_arrays(docs, DIM))
    candidates = np.array([[3, -1, 1], [-1, -1, -1]])
    ids, scores = index.rescore(Ragged.from_arrays(queries, DIM), candidates, 3)
    expected = {d: reference_chamfer(queries[0], docs[d]) for d in (1, 3)}
    best = sorted(expected, key=lambda d: -expected[d])
    assert ids.tolist() == [[*best, -1], [-1, -1, -1]]
    np.testing.assert_allclose(scores[0, :2], [expected[d] for d in best], rtol=1e-5)
    assert np.isneginf(scores[1]).all()


def test_pairs_and_top_of_agree_with_exact_search() -> None:
    docs = Ragged.from_arrays(sets(7, (4, 2, 6, 3, 5)), DIM)
    queries = Ragged.from_arrays(sets(8, (3, 1)), DIM)
    every = np.tile(np.arange(5), (2, 1))
    ids, scores = top_of(every, maxsim_pairs(queries, docs, every), 3)
    exact_ids, exact_scores = exact_maxsim(queries, docs, 3)
    assert ids.tolist() == exact_ids.tolist()
    np.testing.assert_allclose(scores, exact_scores, rtol=1e-6)


def test_float16_storage_is_close_and_not_lossless() -> None:
    docs = Ragged.from_arrays(sets(9, (3, 4, 2, 5)), DIM)
    queries = Ragged.from_arrays(sets(10, (2,)), DIM)
    full, half = (
        MaxSimIndex(DIM, Distance.DOT),
        MaxSimIndex(DIM, Distance.DOT, MaxSimParams("float16")),
    )
    full.add(docs)
    half.add(docs)
    assert full.lossless and not half.lossless
    np.testing.assert_allclose(half.search(queries, 4)[1], full.search(queries, 4)[1], rtol=2e-2)
    assert half.stats().parts["tokens"] * 2 == full.stats().parts["tokens"]
    assert half.same_rows(docs).all()


def test_turbo4_storage_holds_codes_and_scores_the_decoded_tokens() -> None:
    """turbo4 tokens take ``dim / 2 + 4`` bytes (codes and a norm) and score exactly as
    float32 MaxSim over the tokens coded and decoded one by one (``to_turbo``); the
    decoded tokens code back to the same codes, so ``same_rows`` holds for them."""
    given = sets(20, (3, 4, 2, 5, 1))
    decoded = [to_turbo(tokens, "turbo4") for tokens in given]
    docs = Ragged.from_arrays(decoded, DIM)
    queries = Ragged.from_arrays(sets(21, (2, 3)), DIM)
    index = MaxSimIndex(DIM, Distance.DOT, MaxSimParams("turbo4"))
    index.add(docs)
    assert not index.lossless
    assert index.stats().parts["tokens"] == len(docs.tokens) * (DIM // 2 + 4)  # type: ignore[index]
    np.testing.assert_allclose(index.items().tokens, docs.tokens, rtol=1e-5, atol=1e-6)
    ids, scores = index.search(queries, 4)
    want_ids, want_scores = exact_maxsim(queries, docs, 4)
    assert ids.tolist() == want_ids.tolist()
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5)
    changed = [*decoded[:2], decoded[2] + 0.5, *decoded[3:]]
    same = index.same_rows(Ragged.from_arrays(changed, DIM))
    assert same.tolist() == [True, True, False, True, True]
    restored = index_from_bytes(index.to_bytes())
    assert isinstance(restored, MaxSimIndex) and restored.params == index.params
    np.testing.assert_array_equal(restored.items().tokens, index.items().tokens)
    candidates = np.array([[2, 0, -1], [4, 1, 3]])
    rescored = restored.rescore(queries, candidates, 2)[0].tolist()
    assert rescored == top_of(candidates, maxsim_pairs(queries, docs, candidates), 2)[0].tolist()


def test_same_rows_finds_changed_and_resized_sets() -> None:
    items = sets(11, (3, 4, 2))
    index = MaxSimIndex(DIM, Distance.DOT)
    index.add(Ragged.from_arrays(items, DIM))
    changed = [items[0], items[1].copy(), items[2]]
    changed[1][2, 0] += 1.0
    assert index.same_rows(Ragged.from_arrays(changed, DIM)).tolist() == [True, False, True]
    resized = [items[0], items[1][:2], items[2]]
    assert index.same_rows(Ragged.from_arrays(resized, DIM)).tolist() == [True, False, True]


def test_serialisation_round_trip_keeps_sets_and_tombstones() -> None:
    docs = Ragged.from_arrays(sets(12, (3, 0, 4, 2)), DIM)
    index = MaxSimIndex(DIM, Distance.COSINE, MaxSimParams("float16"))
    index.add(docs)
    index.delete(np.array([3]))
    restored = index_from_bytes(index.to_bytes())
    assert isinstance(restored, MaxSimIndex) and restored.params == index.params
    queries = Ragged.from_arrays(sets(13, (2,)), DIM)
    assert restored.search(queries, 4)[0].tolist() == index.search(queries, 4)[0].tolist()
    np.testing.assert_array_equal(restored.items().tokens, index.items().tokens)
    with pytest.raises(IndexFormatError):
        MaxSimIndex.from_bytes(index.to_bytes()[:-40])


def test_euclidean_multi_vectors_are_refused() -> None:
    with pytest.raises(ValueError, match="Cosine and Dot"):
        MaxSimIndex(DIM, Distance.EUCLID)


def test_multi_vector_backends_say_what_they_can_do() -> None:
    maxsim = create_multi_index("maxsim", DIM, Distance.DOT)
    muvera = create_multi_index("muvera", DIM, Distance.DOT)
    dense = create_index("flat", DIM, Distance.DOT)
    assert [is_multi_vector(i) for i in (maxsim, muvera, dense)] == [True, True, False]
    assert (maxsim.approximate, muvera.approximate) == (False, True)
    assert not maxsim.maps_originals and not muvera.maps_originals
