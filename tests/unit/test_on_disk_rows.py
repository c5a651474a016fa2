"""``on_disk`` for the exact backends (``FlatIndex``) and the multi-vector tokens
(``MaxSimIndex``, MUVERA's re-ranking tokens): read back from a memory-mapped file, the
rows are zero-copy views of it, reported as mapped, with answers equal to the in-memory
index's; ``uint8`` tokens are stored one byte a value and score as float32 ones do."""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
import pytest

from index.faiss_mapping import Mapped, mapped_parts
from index.flat import FlatIndex, FlatParams
from index.hnsw_faiss import HnswIndex, HnswParams
from index.leanvec_index import LeanVecIndex, LeanVecParams
from index.metrics import Distance
from index.multivector import MaxSimIndex, MaxSimParams, Ragged
from index.muvera_index import MuveraIndex, MuveraIndexParams
from index.quantization import QUANTIZED_BACKENDS, QuantizedParams
from index.sparse import SparseIndex, SparseParams, SparseRows, SparseVector
from server.engine.collection.recovery import _index_of
from server.engine.config import VectorParams
from server.engine.segment import AppendableSegment, PointBatch
from server.storage.mapped_matrix import is_mapped

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


def address_inside(address: int, view: memoryview) -> bool:
    start = np.frombuffer(view, dtype=np.uint8).ctypes.data
    return start <= address < start + len(view)


PLACEMENTS = [  # (on_disk, graph_on_disk, always_ram) -> Qdrant's (graph, codes) mapped
    ((False, False, None), Mapped()),
    ((True, False, None), Mapped(codes=True)),
    ((True, False, False), Mapped(codes=True)),
    ((True, False, True), Mapped()),
    ((False, True, None), Mapped(graph=True)),
    ((True, True, True), Mapped(graph=True)),
    ((True, True, None), Mapped(graph=True, codes=True)),
]


@pytest.mark.parametrize("method", ["scalar", "binary"])
@pytest.mark.parametrize(("flags", "expected"), PLACEMENTS)
def test_quantized_codes_and_graph_follow_on_disk_hnsw_on_disk_and_always_ram(
    tmp_path: Path, method: str, flags: tuple[bool, bool, bool | None], expected: Mapped
) -> None:
    on_disk, graph_on_disk, always_ram = flags
    params = QuantizedParams(on_disk=on_disk, graph_on_disk=graph_on_disk, always_ram=always_ram)
    cls = QUANTIZED_BACKENDS[method]  # type: ignore[index]
    built = cls(DIM, Distance.EUCLID, params)
    built.add(ROWS)
    view = mapped(tmp_path / method, built.to_bytes())
    loaded = cls.from_bytes(view)
    binary = method == "binary"
    assert mapped_parts(loaded._primary, binary=binary) == expected
    links = int(loaded._primary.hnsw.neighbors.data())
    assert address_inside(links, view) == expected.graph
    parts, heap = loaded.stats().parts or {}, built.stats().parts or {}
    assert parts["codes"] + parts.get("codes_mapped", 0) == heap["codes"]
    assert (parts.get("codes_mapped", 0) > 0) == expected.codes
    assert (parts.get("graph_mapped", 0) > 0) == expected.graph
    assert parts["graph"] + parts.get("graph_mapped", 0) == heap["graph"]
    assert loaded.stats().memory_bytes == sum(
        v for k, v in parts.items() if not k.endswith("_mapped")
    )
    (ids, scores), (want_ids, want_scores) = loaded.search(QUERIES, 10), built.search(QUERIES, 10)
    assert np.array_equal(ids, want_ids) and np.array_equal(scores, want_scores)
    grown = cls.from_bytes(loaded.to_bytes())  # builds extend a copy read from bytes
    grown.add(ROWS[:3])
    assert grown.count == len(ROWS) + 3 and mapped_parts(grown._primary, binary=binary) == Mapped()


def test_leanvec_on_disk_maps_its_codes_and_graph(tmp_path: Path) -> None:
    params = LeanVecParams(dims=4, on_disk=True, graph_on_disk=True)
    built = LeanVecIndex(DIM, Distance.DOT, params)
    built.add(ROWS)
    loaded = LeanVecIndex.from_bytes(mapped(tmp_path / "leanvec", built.to_bytes()))
    assert mapped_parts(loaded._primary) == Mapped(graph=True, codes=True)
    parts = loaded.stats().parts or {}
    assert parts["codes"] == 0 and parts["codes_mapped"] == built.stats().parts["codes"]  # type: ignore[index]
    (ids, scores), (want_ids, want_scores) = loaded.search(QUERIES, 10), built.search(QUERIES, 10)
    assert np.array_equal(ids, want_ids) and np.array_equal(scores, want_scores)


def test_a_float_graph_on_disk_alone_maps_its_links_and_keeps_its_rows(tmp_path: Path) -> None:
    built = HnswIndex(DIM, Distance.EUCLID, HnswParams(graph_on_disk=True))
    built.add(ROWS)
    view = mapped(tmp_path / "hnsw", built.to_bytes())
    loaded = HnswIndex.from_bytes(view)
    assert loaded.rows_on_disk and mapped_parts(loaded._index) == Mapped(graph=True)
    assert not inside(loaded.vectors(), view)
    parts = loaded.stats().parts or {}
    assert parts["vectors"] == ROWS.nbytes and parts["vectors_mapped"] == 0
    assert parts["graph_mapped"] > 0
    (ids, scores), (want_ids, want_scores) = loaded.search(QUERIES, 10), built.search(QUERIES, 10)
    assert np.array_equal(ids, want_ids) and np.array_equal(scores, want_scores)


@pytest.mark.parametrize("inner", ["hnsw_sq8", "hnsw", "flat"])
def test_muvera_graph_on_disk_maps_its_encodings_index(tmp_path: Path, inner: str) -> None:
    items, queries = token_sets(9, 150), token_sets(10, 4, least=1)
    params = MuveraIndexParams(inner=inner, repetitions=4, graph_on_disk=True)  # type: ignore[arg-type]
    built = MuveraIndex(DIM, Distance.DOT, params)
    built.add(items)
    loaded = MuveraIndex.from_bytes(mapped(tmp_path / "muvera", built.to_bytes()))
    assert loaded.rows_on_disk and not loaded.tokens.file_backed
    parts = loaded.stats().parts or {}
    fde_mapped = sum(v for k, v in parts.items() if k.startswith("fde_") and k.endswith("_mapped"))
    assert fde_mapped > 0
    plain = MuveraIndex.from_bytes(built.to_bytes())  # from bytes: all in the heap
    assert loaded.stats().memory_bytes + fde_mapped <= plain.stats().memory_bytes
    (ids, scores), (want_ids, want_scores) = loaded.search(queries, 5), built.search(queries, 5)
    assert np.array_equal(ids, want_ids) and np.array_equal(scores, want_scores)


def dense_batch(rows: np.ndarray) -> PointBatch:
    count = len(rows)
    present = {"": np.ones(count, dtype=bool)}
    return PointBatch(list(range(count)), {"": rows}, present, [{} for _ in range(count)])


@pytest.mark.parametrize("datatype", ["float32", "float16"])
def test_an_on_disk_tail_and_the_exact_segment_sealed_from_it_keep_rows_mapped(
    tmp_path: Path, datatype: str
) -> None:
    rows = ROWS.astype(datatype).astype(np.float32)
    types = {"": datatype}
    disk = AppendableSegment({"": (DIM, Distance.EUCLID)}, mapped={"": tmp_path}, datatypes=types)  # type: ignore[dict-item]
    ram = AppendableSegment({"": (DIM, Distance.EUCLID)}, datatypes=types)  # type: ignore[dict-item]
    for segment in (disk, ram):
        segment.upsert(dense_batch(rows), 1)
        segment.delete(5)  # moves the last row into the hole, in the file too
    assert is_mapped(disk.columns[""].data) and not is_mapped(ram.columns[""].data)
    assert disk.bookkeeping_bytes()["vectors"] == 0 < disk.bookkeeping_bytes()["vectors_mapped"]
    want_ids, want_scores = ram.search("", QUERIES, 10, None)
    ids, scores = disk.search("", QUERIES, 10, None)
    assert np.array_equal(ids, want_ids) and np.array_equal(scores, want_scores)
    sealed = disk.freeze().indexes[""]
    assert isinstance(sealed, FlatIndex) and sealed.file_backed and is_mapped(sealed.vectors())
    assert (sealed.stats().parts or {})["vectors_mapped"] == (len(rows) - 1) * DIM * 4
    ids, scores = sealed.search(QUERIES, 10)
    assert np.array_equal(ids, want_ids) and np.array_equal(scores, want_scores)


def test_an_exact_segment_restored_for_an_on_disk_vector_maps_its_rows(tmp_path: Path) -> None:
    """After a restart an exact segment (no index file) is rebuilt from the point store:
    for an ``on_disk`` vector into a mapped scratch file."""
    params = VectorParams(size=DIM, distance=Distance.EUCLID, on_disk=True)
    mapped_index, exact = _index_of(None, params, dense_batch(ROWS), "", tmp_path)
    heap_index, _ = _index_of(None, params, dense_batch(ROWS), "")
    assert exact and isinstance(mapped_index, FlatIndex) and mapped_index.file_backed
    assert is_mapped(mapped_index.vectors()) and not is_mapped(heap_index.vectors())  # type: ignore[union-attr]
    (ids, scores), (want_ids, want_scores) = (
        mapped_index.search(QUERIES, 10),
        heap_index.search(QUERIES, 10),  # type: ignore[union-attr]
    )
    assert np.array_equal(ids, want_ids) and np.array_equal(scores, want_scores)


def test_on_disk_tail_tokens_and_their_exact_segment_stay_mapped(tmp_path: Path) -> None:
    items, queries = token_sets(11, 120), token_sets(12, 4, least=1)
    ids = list(range(len(items)))
    batch = PointBatch(ids, {}, {"m": items.lengths > 0}, [{} for _ in ids], {"m": items})
    disk = AppendableSegment({}, multi_params={"m": (DIM, Distance.DOT)}, mapped={"m": tmp_path})
    ram = AppendableSegment({}, multi_params={"m": (DIM, Distance.DOT)})
    for segment in (disk, ram):
        segment.upsert(batch, 1)
        segment.delete(3)  # leaves the buffer out of row order: the next view repacks it
    want_ids, want_scores = ram.search("m", queries, 5, None)
    ids_found, scores = disk.search("m", queries, 5, None)
    assert np.array_equal(ids_found, want_ids) and np.array_equal(scores, want_scores)
    assert is_mapped(disk.token_columns["m"].data) and not is_mapped(ram.token_columns["m"].data)
    assert disk.bookkeeping_bytes()["vectors"] == 0 < disk.bookkeeping_bytes()["vectors_mapped"]
    sealed = disk.freeze().indexes["m"]
    assert isinstance(sealed, MaxSimIndex) and sealed.file_backed
    assert is_mapped(sealed.stored().tokens) and is_mapped(sealed.stored().offsets)
    ids_found, scores = sealed.search(queries, 5)
    assert np.array_equal(ids_found, want_ids) and np.array_equal(scores, want_scores)
    params = VectorParams(size=DIM, distance=Distance.DOT, on_disk=True,
                          multivector_config={"comparator": "max_sim"})  # fmt: skip
    restored, exact = _index_of(None, params, batch, "m", tmp_path)
    assert exact and isinstance(restored, MaxSimIndex) and is_mapped(restored.stored().tokens)
    assert np.array_equal(restored.search(queries, 5)[0], MaxSimIndex.over(
        items, Distance.DOT, MaxSimParams()).search(queries, 5)[0])  # fmt: skip
