"""``on_disk`` for the exact backends (``FlatIndex``) and the multi-vector tokens
(``MaxSimIndex``, MUVERA's re-ranking tokens): read back from a memory-mapped file, the
rows are zero-copy views of it, reported as mapped, with answers equal to the in-memory
index's; ``uint8`` tokens are stored one byte a value and score as float32 ones do."""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
import pytest

from index.flat import FlatIndex, FlatParams
from index.metrics import Distance
from index.multivector import MaxSimIndex, MaxSimParams, Ragged
from index.muvera_index import MuveraIndex, MuveraIndexParams
from index.quantization import QUANTIZED_BACKENDS, QuantizedParams
from index.sparse import SparseIndex, SparseParams, SparseRows, SparseVector

DIM = 8
RNG = np.random.default_rng(17)
ROWS = RNG.normal(size=(300, DIM)).astype(np.float32)
QUERIES = RNG.normal(size=(6, DIM)).astype(np.float32)


def mapped(path: Path, data: bytes) -> memoryview:
    path.write_bytes(data)
    with open(path, "rb") as handle:
        return memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))


def inside(array: np.ndarray, view: memoryview) -> bool:
    start = np.frombuffer(view, dtype=np.uint8).ctypes.data
    return bool(start <= array.ctypes.data < start + len(view))


def token_sets(seed: int, count: int, *, integers: bool = False, least: int = 0) -> Ragged:
    """``count`` sets of ``least``..5 tokens (normal, or integers 0..255)."""
    rng = np.random.default_rng(seed)
    sets = [rng.normal(size=(int(rng.integers(least, 6)), DIM)) for _ in range(count)]
    if integers:
        sets = [rng.integers(0, 256, size=s.shape) for s in sets]
    return Ragged.from_arrays([s.astype(np.float32) for s in sets], DIM)


def test_a_mapped_on_disk_flat_index_reads_its_rows_from_the_file(tmp_path: Path) -> None:
    built = FlatIndex(DIM, Distance.EUCLID, FlatParams(on_disk=True))
    built.add(ROWS)
    built.delete(np.array([3, 7]))
    view = mapped(tmp_path / "flat", built.to_bytes())
    loaded = FlatIndex.from_bytes(view)
    assert loaded.file_backed and inside(loaded.vectors(), view)
    parts = loaded.stats().parts or {}
    assert parts["vectors"] == 0 and parts["vectors_mapped"] == ROWS.nbytes
    assert loaded.stats().memory_bytes == parts["tombstones"] < ROWS.nbytes
    (ids, scores), (want_ids, want_scores) = loaded.search(QUERIES, 10), built.search(QUERIES, 10)
    assert np.array_equal(ids, want_ids) and np.array_equal(scores, want_scores)
    assert not np.isin([3, 7], ids).any()
    loaded.add(ROWS[:2])  # appending copies the rows back into the heap first
    assert not loaded.file_backed and loaded.vectors().shape == (302, DIM)
    assert np.array_equal(loaded.vectors()[:300], ROWS)


def test_a_flat_index_without_on_disk_or_from_bytes_holds_a_heap_copy(tmp_path: Path) -> None:
    plain = FlatIndex(DIM, Distance.DOT)
    plain.add(ROWS)
    assert not FlatIndex.from_bytes(mapped(tmp_path / "plain", plain.to_bytes())).file_backed
    disk = FlatIndex(DIM, Distance.DOT, FlatParams(on_disk=True))
    disk.add(ROWS)
    assert not FlatIndex.from_bytes(disk.to_bytes()).file_backed


@pytest.mark.parametrize("storage", ["float32", "float16", "uint8", "turbo4"])
def test_mapped_on_disk_tokens_answer_as_in_memory_ones(tmp_path: Path, storage: str) -> None:
    items = token_sets(1, 120, integers=storage == "uint8")
    queries = token_sets(2, 4, integers=storage == "uint8", least=1)
    params = MaxSimParams(storage, on_disk=True)  # type: ignore[arg-type]
    built = MaxSimIndex(DIM, Distance.DOT, params)
    built.add(items)
    view = mapped(tmp_path / "tokens", built.to_bytes())
    loaded = MaxSimIndex.from_bytes(view)
    assert loaded.file_backed and inside(loaded.stored().tokens, view)
    parts = loaded.stats().parts or {}
    assert parts["tokens"] == 0 and parts["tokens_mapped"] == built.stats().parts["tokens"]  # type: ignore[index]
    assert loaded.stats().memory_bytes == parts["tombstones"]
    (ids, scores), (want_ids, want_scores) = loaded.search(queries, 5), built.search(queries, 5)
    assert np.array_equal(ids, want_ids) and np.array_equal(scores, want_scores)
    assert loaded.same_rows(items).all()
    loaded.add(items.take(np.arange(3)))
    assert not loaded.file_backed and len(loaded) == 123


def test_uint8_tokens_take_one_byte_a_value_and_score_as_float32() -> None:
    items, queries = token_sets(3, 80, integers=True), token_sets(4, 5, integers=True, least=1)
    wide = MaxSimIndex(DIM, Distance.DOT)
    narrow = MaxSimIndex(DIM, Distance.DOT, MaxSimParams("uint8"))
    wide.add(items)
    narrow.add(items)
    assert narrow.stats().parts["tokens"] * 4 == wide.stats().parts["tokens"]  # type: ignore[index]
    (ids, scores), (want_ids, want_scores) = narrow.search(queries, 7), wide.search(queries, 7)
    assert np.array_equal(ids, want_ids) and np.array_equal(scores, want_scores)
    assert np.array_equal(narrow.items().tokens, items.tokens)
    restored = MaxSimIndex.from_bytes(narrow.to_bytes())
    assert np.array_equal(restored.search(queries, 7)[0], want_ids)


def test_muvera_on_disk_maps_its_reranking_tokens(tmp_path: Path) -> None:
    items, queries = token_sets(5, 150), token_sets(6, 4, least=1)
    params = MuveraIndexParams(inner="flat", repetitions=4, on_disk=True)
    built = MuveraIndex(DIM, Distance.DOT, params)
    built.add(items)
    loaded = MuveraIndex.from_bytes(mapped(tmp_path / "muvera", built.to_bytes()))
    assert loaded.rows_on_disk and loaded.tokens.file_backed
    parts = loaded.stats().parts or {}
    assert parts["tokens"] == 0 and parts["tokens_mapped"] > 0
    assert (
        loaded.stats().memory_bytes
        == built.stats().memory_bytes - parts["tokens_mapped"] - parts["offsets_mapped"]
    )
    (ids, scores), (want_ids, want_scores) = loaded.search(queries, 5), built.search(queries, 5)
    assert np.array_equal(ids, want_ids) and np.array_equal(scores, want_scores)


def test_two_stage_memory_leaves_out_the_mapped_originals(tmp_path: Path) -> None:
    cls = QUANTIZED_BACKENDS["scalar"]
    built = cls(DIM, Distance.EUCLID, QuantizedParams())
    built.add(ROWS)
    loaded = cls.from_bytes(mapped(tmp_path / "sq", built.to_bytes()))
    parts = loaded.stats().parts or {}
    assert parts["originals_mapped"] == ROWS.nbytes and parts["originals"] == 0
    assert loaded.stats().memory_bytes == sum(parts.values()) - ROWS.nbytes


def sparse_rows(seed: int, count: int) -> SparseRows:
    rng = np.random.default_rng(seed)
    vectors = []
    for _ in range(count):
        terms = rng.choice(500, size=int(rng.integers(1, 12)), replace=False)
        vectors.append(SparseVector.of(terms, rng.random(len(terms)).astype(np.float32)))
    return SparseRows.of(vectors)


def test_a_mapped_on_disk_sparse_index_reads_rows_and_postings_from_the_file(
    tmp_path: Path,
) -> None:
    rows, queries = sparse_rows(7, 400), sparse_rows(8, 5)
    built = SparseIndex(params=SparseParams(on_disk=True))
    built.add(rows)
    built.delete(np.array([2, 9]))
    view = mapped(tmp_path / "sparse", built.to_bytes())
    loaded = SparseIndex.from_bytes(view)
    plain = SparseIndex.from_bytes(built.to_bytes())  # from bytes: heap copies
    assert inside(loaded.rows().indices, view) and inside(loaded._posting_lists().rows, view)
    parts = loaded.stats().parts or {}
    assert parts["rows"] == 0 and parts["rows_mapped"] > 0 and parts["postings_mapped"] > 0
    assert "rows_mapped" not in (plain.stats().parts or {})
    assert loaded.stats().memory_bytes < plain.stats().memory_bytes
    items = [queries.item(i) for i in range(len(queries))]
    (ids, scores), (want_ids, want_scores) = loaded.search(items, 10), plain.search(items, 10)
    assert np.array_equal(ids, want_ids) and np.array_equal(scores, want_scores)
    terms = np.arange(500, dtype=np.uint32)
    assert np.array_equal(loaded.document_frequencies(terms), plain.document_frequencies(terms))
    loaded.delete(np.array([5]))  # df lives on the heap: deletes still count
    plain.delete(np.array([5]))
    assert np.array_equal(loaded.document_frequencies(terms), plain.document_frequencies(terms))
    loaded.add(rows.slice(0, 3))
    assert len(loaded) == 403 and "rows_mapped" not in (loaded.stats().parts or {})
