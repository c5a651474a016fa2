"""The exact sparse inverted index against a dense numpy reference."""

from __future__ import annotations

import numpy as np
import pytest

from index.sparse import SparseIndex, SparseRows, SparseVector, idf


def _random_rows(rng: np.random.Generator, n: int, vocab: int = 50) -> list[SparseVector | None]:
    out: list[SparseVector | None] = []
    for _ in range(n):
        size = int(rng.integers(0, 6))
        terms = rng.choice(vocab, size=size, replace=False)
        out.append(SparseVector.of(terms, rng.normal(size=size)) if size else None)
    return out


def _dense(items: list[SparseVector | None], vocab: int = 50) -> np.ndarray:
    matrix = np.zeros((len(items), vocab))
    for i, item in enumerate(items):
        if item is not None:
            matrix[i, item.indices] = item.values
    return matrix


def _reference(
    items: list[SparseVector | None], query: SparseVector, allowed: np.ndarray, k: int
) -> tuple[list[int], list[float]]:
    scores = _dense(items) @ _dense([query])[0]
    overlap = np.array(
        [it is not None and bool(np.isin(it.indices, query.indices).any()) for it in items]
    )
    rows = np.flatnonzero(overlap & allowed)
    order = sorted(rows.tolist(), key=lambda r: (-scores[r], r))[:k]
    return order, [float(scores[r]) for r in order]


@pytest.mark.parametrize("fraction", [1.0, 0.05])
def test_search_matches_dense_reference(fraction: float) -> None:
    rng = np.random.default_rng(1)
    items = _random_rows(rng, 300)
    index = SparseIndex()
    index.add(SparseRows.of(items[:120]))
    index.add(SparseRows.of(items[120:]))
    dead = rng.choice(300, size=40, replace=False)
    index.delete(dead)
    allowed = rng.random(300) < fraction
    for _ in range(10):
        query = SparseVector.of(rng.choice(50, 4, replace=False), rng.normal(size=4))
        ids, scores = index.search([query], 7, allowed=allowed)
        mask = allowed.copy()
        mask[dead] = False
        want_rows, want_scores = _reference(items, query, mask, 7)
        got = [int(r) for r in ids[0] if r >= 0]
        assert got == want_rows
        np.testing.assert_allclose(scores[0, : len(got)], want_scores, rtol=1e-5, atol=1e-6)


def test_zero_product_overlap_is_a_hit_and_no_overlap_is_not() -> None:
    index = SparseIndex()
    index.add(SparseRows.of([SparseVector.of([1], [0.0]), SparseVector.of([2], [1.0])]))
    ids, scores = index.search([SparseVector.of([1], [3.0])], 5)
    assert ids[0].tolist() == [0, -1, -1, -1, -1]
    assert scores[0, 0] == 0.0


def test_document_frequencies_follow_deletes() -> None:
    index = SparseIndex()
    rows = [SparseVector.of([1, 2], [1, 1]), SparseVector.of([2], [1]), SparseVector.of([3], [1])]
    index.add(SparseRows.of(rows))
    terms = np.array([2, 1, 9], dtype=np.uint32)
    assert index.document_frequencies(terms).tolist() == [2, 1, 0]
    index.delete(np.array([0, 0]))
    assert index.document_frequencies(terms).tolist() == [1, 0, 0]
    index.delete(np.array([0]))  # again: already gone, counts stay
    assert index.document_frequencies(terms).tolist() == [1, 0, 0]
    allowed = np.array([True, False, True])
    assert index.document_frequencies(terms, allowed).tolist() == [0, 0, 0]
    assert index.live_count() == 2


def test_round_trip_bytes_and_items() -> None:
    rng = np.random.default_rng(2)
    items = _random_rows(rng, 50)
    index = SparseIndex()
    index.add(SparseRows.of(items))
    index.delete(np.array([3, 7]))
    again = SparseIndex.from_bytes(index.to_bytes())
    query = SparseVector.of([1, 2, 3, 4], [1.0, -1.0, 0.5, 2.0])
    for a, b in zip(index.search([query], 10), again.search([query], 10), strict=True):
        np.testing.assert_array_equal(a, b)
    picked = again.items(np.array([5, 0]))
    for got, i in zip([picked.item(0), picked.item(1)], [5, 0], strict=True):
        want = items[i]
        assert got.indices.tolist() == ([] if want is None else want.indices.tolist())
    assert again.stats().memory_bytes > 0


def test_vector_bytes_and_sorting() -> None:
    vector = SparseVector.of([9, 2, 5], [1.0, 2.0, 3.0])
    assert vector.indices.tolist() == [2, 5, 9]
    assert vector.values.tolist() == [2.0, 3.0, 1.0]
    back = SparseVector.from_bytes(vector.to_bytes())
    assert back.indices.tolist() == [2, 5, 9] and back.values.tolist() == [2.0, 3.0, 1.0]


def test_idf_formula() -> None:
    got = idf(np.array([0, 1, 10]), 10)
    want = [np.log((10 - d + 0.5) / (d + 0.5) + 1) for d in (0, 1, 10)]
    np.testing.assert_allclose(got, want)


def test_selective_filter_scores_only_its_candidates() -> None:
    """A small allowed set is scored by slicing its rows: the posting lists (a pass over
    every row) are never built."""
    rng = np.random.default_rng(3)
    items = _random_rows(rng, 1000)
    index = SparseIndex()
    index.add(SparseRows.of(items))
    allowed = np.zeros(1000, dtype=bool)
    allowed[rng.choice(1000, 20, replace=False)] = True
    query = SparseVector.of([1, 2, 3], [1.0, 1.0, 1.0])
    ids, _ = index.search([query], 5, allowed=allowed)
    assert index.stats().parts is not None and "postings" not in index.stats().parts
    assert all(allowed[r] for r in ids[0] if r >= 0)
    index.search([query], 5)
    assert "postings" in (index.stats().parts or {})


def test_large_term_ids_sort_and_score() -> None:
    """Terms above 2^16 take the second radix pass; rows stay ascending per term."""
    big = [70_000, 5, 2**32 - 1, 65_536]
    index = SparseIndex()
    index.add(
        SparseRows.of([SparseVector.of(big, [1, 2, 3, 4]), SparseVector.of([5, 2**32 - 1], [1, 1])])
    )
    ids, scores = index.search([SparseVector.of([2**32 - 1, 70_000], [2.0, 1.0])], 3)
    assert ids[0].tolist() == [0, 1, -1]
    assert scores[0, :2].tolist() == [7.0, 2.0]
    assert index.document_frequencies(np.array([5, 65_536, 2**32 - 1], np.uint32)).tolist() == [
        2,
        1,
        2,
    ]


def test_appends_after_the_postings_are_scored_as_a_tail_then_folded_in() -> None:
    """Searches and frequencies between appends equal a freshly built index's, whether
    the new rows are still a tail or the postings were rebuilt over them."""
    rng = np.random.default_rng(4)
    items = _random_rows(rng, 6000)
    grown, terms = SparseIndex(), np.arange(50, dtype=np.uint32)
    query = SparseVector.of([1, 4, 9, 16], [1.0, 2.0, -1.0, 0.5])
    for start, stop in [(0, 3000), (3000, 3100), (3100, 3200), (3200, 6000)]:
        grown.add(SparseRows.of(items[start:stop]))
        grown.delete(np.array([start + 1]))
        fresh = SparseIndex()
        fresh.add(SparseRows.of(items[:stop]))
        fresh.delete(np.array([s + 1 for s in (0, 3000, 3100, 3200) if s < stop]))
        for a, b in zip(grown.search([query], 20), fresh.search([query], 20), strict=True):
            np.testing.assert_array_equal(a, b)
        assert (
            grown.document_frequencies(terms).tolist() == fresh.document_frequencies(terms).tolist()
        )
