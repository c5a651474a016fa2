"""The ``quiver import`` readers on small generated files: what each row becomes, how
files are cut into batches, resuming at a row, and the errors for bad files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from client.errors import FileFormatError
from client.readers import (
    JsonlReader,
    MatrixReader,
    NdjsonChunk,
    ParquetReader,
    ReadOptions,
    detect_format,
    open_reader,
)


def _matrix(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)


def _vectors(batch: pa.RecordBatch, column: str = "vector") -> np.ndarray:
    array = batch.column(column)
    return np.asarray(array.flatten().to_numpy(), dtype=np.float32).reshape(len(array), -1)


def _ids(batches: list[pa.RecordBatch]) -> list[int]:
    return [i for b in batches for i in b.column("id").to_pylist()]


def _write_fvecs(path: Path, matrix: np.ndarray) -> None:
    dims = np.full((len(matrix), 1), matrix.shape[1], dtype="<i4")
    records = np.hstack([dims.view("<f4"), matrix.astype("<f4")])
    records.tofile(path)


# -- .npy -------------------------------------------------------------------------------------


def test_npy_rows_become_ids_from_the_offset_and_float32_vectors(tmp_path: Path) -> None:
    matrix = _matrix(25, 4).astype(np.float64)
    np.save(tmp_path / "v.npy", matrix)
    reader = open_reader(tmp_path / "v.npy", ReadOptions(id_offset=1000))
    batches = list(reader.batches(10))
    assert (reader.rows, reader.vector_sizes) == (25, {"": 4})
    assert [b.num_rows for b in batches] == [10, 10, 5]
    assert list(range(1000, 1025)) == _ids(batches)
    assert pa.list_(pa.float32(), 4) == batches[0].schema.field("vector").type
    assert pa.int64() == batches[0].schema.field("id").type
    np.testing.assert_array_equal(
        matrix.astype(np.float32), np.vstack([_vectors(b) for b in batches])
    )


def test_npy_is_memory_mapped(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", _matrix(5, 3))
    reader = open_reader(tmp_path / "v.npy", ReadOptions())
    assert isinstance(reader, MatrixReader)
    assert isinstance(reader._matrix, np.memmap)


def test_npy_skip_resumes_at_that_row(tmp_path: Path) -> None:
    matrix = _matrix(25, 4)
    np.save(tmp_path / "v.npy", matrix)
    batches = list(open_reader(tmp_path / "v.npy", ReadOptions()).batches(10, skip=13))
    assert [b.num_rows for b in batches] == [10, 2]
    assert list(range(13, 25)) == _ids(batches)
    np.testing.assert_array_equal(matrix[13:], np.vstack([_vectors(b) for b in batches]))


def test_npy_skip_past_the_end_yields_nothing(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", _matrix(5, 4))
    assert list(open_reader(tmp_path / "v.npy", ReadOptions()).batches(10, skip=5)) == []


def test_npy_vector_name_fills_a_named_vector_column(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", _matrix(3, 2))
    reader = open_reader(tmp_path / "v.npy", ReadOptions(vector_name="image"))
    batch = next(reader.batches(10))
    assert reader.vector_sizes == {"image": 2}
    assert batch.schema.names == ["id", "vector.image"]


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros(5, dtype=np.float32), "expected a 2-D matrix"),
        (np.zeros((2, 3, 4), dtype=np.float32), "expected a 2-D matrix"),
        (np.array([["a", "b"]]), "expected a float matrix"),
        (np.array([[1, None]], dtype=object), "not a readable .npy"),
    ],
)
def test_npy_that_is_not_a_float_matrix_is_refused(
    tmp_path: Path, array: np.ndarray, message: str
) -> None:
    np.save(tmp_path / "v.npy", array, allow_pickle=True)
    with pytest.raises(FileFormatError, match=message):
        open_reader(tmp_path / "v.npy", ReadOptions())


def test_file_that_is_not_npy_is_refused(tmp_path: Path) -> None:
    (tmp_path / "v.npy").write_bytes(b"hello, not numpy")
    with pytest.raises(FileFormatError, match=r"not a readable \.npy"):
        open_reader(tmp_path / "v.npy", ReadOptions())


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="no such file"):
        open_reader(tmp_path / "nothing.npy", ReadOptions())


def test_negative_id_offset_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", _matrix(2, 2))
    with pytest.raises(FileFormatError, match="id-offset"):
        open_reader(tmp_path / "v.npy", ReadOptions(id_offset=-1))


def test_format_comes_from_the_extension_or_the_flag(tmp_path: Path) -> None:
    assert detect_format(Path("a.NDJSON")) == "jsonl"
    assert detect_format(Path("a.pq")) == "parquet"
    assert detect_format(Path("a.bin"), "npy") == "npy"
    with pytest.raises(FileFormatError, match=r"unknown file type '\.csv'"):
        detect_format(Path("a.csv"))


# -- .fvecs -----------------------------------------------------------------------------------


def test_fvecs_records_become_rows(tmp_path: Path) -> None:
    matrix = _matrix(12, 5)
    _write_fvecs(tmp_path / "v.fvecs", matrix)
    reader = open_reader(tmp_path / "v.fvecs", ReadOptions(id_offset=7))
    batches = list(reader.batches(5, skip=2))
    assert (reader.rows, reader.vector_sizes) == (12, {"": 5})
    assert [b.num_rows for b in batches] == [5, 5]
    assert list(range(9, 19)) == _ids(batches)
    np.testing.assert_array_equal(matrix[2:], np.vstack([_vectors(b) for b in batches]))


def test_truncated_fvecs_is_refused(tmp_path: Path) -> None:
    _write_fvecs(tmp_path / "v.fvecs", _matrix(3, 4))
    data = (tmp_path / "v.fvecs").read_bytes()
    (tmp_path / "v.fvecs").write_bytes(data[:-4])
    with pytest.raises(FileFormatError, match="not a multiple of the record size 20"):
        open_reader(tmp_path / "v.fvecs", ReadOptions())


def test_fvecs_record_with_another_dimension_is_refused_when_read(tmp_path: Path) -> None:
    _write_fvecs(tmp_path / "v.fvecs", _matrix(4, 3))
    records = np.fromfile(tmp_path / "v.fvecs", dtype="<i4").reshape(4, 4)
    records[2, 0] = 9
    records.tofile(tmp_path / "v.fvecs")
    reader = open_reader(tmp_path / "v.fvecs", ReadOptions())
    with pytest.raises(FileFormatError, match="record 2 says dimension 9"):
        list(reader.batches(10))


@pytest.mark.parametrize("content", [b"", b"\x01\x00", b"\x00\x00\x00\x00" * 3])
def test_fvecs_without_a_sane_first_record_is_refused(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "v.fvecs").write_bytes(content)
    with pytest.raises(FileFormatError):
        open_reader(tmp_path / "v.fvecs", ReadOptions())


# -- .parquet ---------------------------------------------------------------------------------


def _parquet(path: Path, table: pa.Table, row_group_size: int = 1000) -> Path:
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def _table(rows: int, dim: int = 3) -> pa.Table:
    matrix = _matrix(rows, dim).astype(np.float64)
    return pa.table(
        {
            "id": pa.array(np.arange(rows) * 10, pa.int32()),
            "vector": pa.array(matrix.tolist(), pa.list_(pa.float64())),
            "city": [f"city-{i % 3}" for i in range(rows)],
            "rank": pa.array(range(rows), pa.int16()),
        }
    )


def test_parquet_maps_id_vector_and_payload_columns(tmp_path: Path) -> None:
    table = _table(7)
    reader = open_reader(_parquet(tmp_path / "p.parquet", table), ReadOptions())
    batch = next(reader.batches(100))
    assert (reader.rows, reader.vector_sizes) == (7, {"": 3})
    assert batch.schema.names == ["id", "vector", "city", "rank"]
    assert pa.int64() == batch.schema.field("id").type
    assert pa.list_(pa.float32(), 3) == batch.schema.field("vector").type
    assert [i * 10 for i in range(7)] == batch.column("id").to_pylist()
    assert table.column("city").to_pylist() == batch.column("city").to_pylist()
    expected = np.asarray(table.column("vector").to_pylist(), dtype=np.float32)
    np.testing.assert_array_equal(expected, _vectors(batch))


def test_parquet_without_id_column_uses_row_numbers_from_the_offset(tmp_path: Path) -> None:
    table = _table(5).drop_columns(["id"])
    path = _parquet(tmp_path / "p.parquet", table)
    batches = list(open_reader(path, ReadOptions(id_offset=100)).batches(2))
    assert _ids(batches) == [100, 101, 102, 103, 104]


def test_parquet_named_id_and_vector_columns(tmp_path: Path) -> None:
    table = _table(4).rename_columns(["key", "emb", "city", "rank"])
    path = _parquet(tmp_path / "p.parquet", table)
    reader = open_reader(path, ReadOptions(id_column="key", vector_column="emb"))
    batch = next(reader.batches(10))
    assert batch.schema.names == ["id", "vector", "city", "rank"]
    assert batch.column("id").to_pylist() == [0, 10, 20, 30]


def test_parquet_skip_crosses_row_groups(tmp_path: Path) -> None:
    path = _parquet(tmp_path / "p.parquet", _table(50), row_group_size=8)
    reader = open_reader(path, ReadOptions())
    whole = _ids(list(reader.batches(6)))
    for skip in (0, 5, 8, 13, 16, 49):
        batches = list(reader.batches(6, skip=skip))
        assert whole[skip:] == _ids(batches), skip
        assert all(b.num_rows <= 6 for b in batches)
    assert list(reader.batches(6, skip=50)) == []


def test_parquet_uuid_string_ids_pass_through(tmp_path: Path) -> None:
    uuids = ["550e8400-e29b-41d4-a716-446655440000", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"]
    table = pa.table({"id": pa.array(uuids, pa.large_string()), "vector": [[1.0], [2.0]]})
    batch = next(open_reader(_parquet(tmp_path / "p.parquet", table), ReadOptions()).batches(9))
    assert (pa.string(), uuids) == (batch.schema.field("id").type, batch.column("id").to_pylist())


def test_parquet_fixed_size_list_vectors(tmp_path: Path) -> None:
    matrix = _matrix(4, 2)
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), 2)
    table = pa.table({"vector": vectors})
    reader = open_reader(_parquet(tmp_path / "p.parquet", table), ReadOptions())
    assert reader.vector_sizes == {"": 2}
    np.testing.assert_array_equal(matrix, _vectors(next(reader.batches(10))))


def test_parquet_vector_dot_name_columns_are_named_vectors(tmp_path: Path) -> None:
    table = pa.table({"vector.text": [[1.0, 2.0]], "vector.image": [[1.0, 2.0, 3.0]], "k": [1]})
    reader = open_reader(_parquet(tmp_path / "p.parquet", table), ReadOptions())
    batch = next(reader.batches(10))
    assert reader.vector_sizes == {"text": 2, "image": 3}
    assert batch.schema.names == ["id", "vector.text", "vector.image", "k"]


def test_parquet_payload_struct_is_spread_and_special_types_become_json_values(
    tmp_path: Path,
) -> None:
    when = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    table = pa.table(
        {
            "vector": [[1.0]],
            "payload": pa.array([{"a": 1, "b": "x"}]),
            "seen": pa.array([when], pa.timestamp("s", "UTC")),
            "day": pa.array([dt.date(2024, 5, 6)]),
            "tag": pa.array(["red"]).dictionary_encode(),
        }
    )
    batch = next(open_reader(_parquet(tmp_path / "p.parquet", table), ReadOptions()).batches(9))
    row = batch.to_pylist()[0]
    assert {k: row[k] for k in ("a", "b", "seen", "day")} == {
        "a": 1,
        "b": "x",
        "seen": "2024-05-06T07:08:09.000Z",
        "day": "2024-05-06",
    }
    assert row["tag"] == "red"


def test_parquet_payload_json_string_column_is_kept(tmp_path: Path) -> None:
    table = pa.table({"vector": [[1.0]], "payload": [orjson.dumps({"k": [1, 2]}).decode()]})
    batch = next(open_reader(_parquet(tmp_path / "p.parquet", table), ReadOptions()).batches(9))
    assert orjson.loads(batch.column("payload")[0].as_py()) == {"k": [1, 2]}


def test_parquet_payload_columns_selects_fields(tmp_path: Path) -> None:
    path = _parquet(tmp_path / "p.parquet", _table(3))
    batch = next(open_reader(path, ReadOptions(payload_columns=["rank"])).batches(9))
    assert batch.schema.names == ["id", "vector", "rank"]
    batch = next(open_reader(path, ReadOptions(payload_columns=[])).batches(9))
    assert batch.schema.names == ["id", "vector"]


def test_parquet_null_vector_stays_null_for_the_server_to_reject(tmp_path: Path) -> None:
    table = pa.table({"vector": pa.array([[1.0, 2.0], None, [3.0, 4.0]])})
    batch = next(open_reader(_parquet(tmp_path / "p.parquet", table), ReadOptions()).batches(9))
    assert batch.column("vector").to_pylist() == [[1.0, 2.0], None, [3.0, 4.0]]
    assert pa.list_(pa.float32(), 2) == batch.schema.field("vector").type


def test_parquet_vector_of_another_length_names_its_row(tmp_path: Path) -> None:
    table = pa.table({"vector": [[1.0, 2.0]] * 5 + [[1.0]]})
    reader = open_reader(_parquet(tmp_path / "p.parquet", table), ReadOptions())
    with pytest.raises(FileFormatError, match="row 5: column 'vector' holds a vector of 1"):
        list(reader.batches(3))


@pytest.mark.parametrize(
    ("table", "options", "message"),
    [
        (pa.table({"emb": [[1.0]]}), ReadOptions(), "no vector column 'vector'"),
        (pa.table({"vector": ["a"]}), ReadOptions(), "must be a list of numbers"),
        (pa.table({"vector": [[1.0]]}), ReadOptions(id_column="key"), "no id column 'key'"),
        (pa.table({"id": [1.5], "vector": [[1.0]]}), ReadOptions(), "integers or UUID"),
        (pa.table({"vector": [[1.0]], "raw": [b"x"]}), ReadOptions(), "holds bytes"),
        (pa.table({"vector": [[1.0]], "payload": [1]}), ReadOptions(), "'payload' must hold"),
        (pa.table({"vector": [[1.0]]}), ReadOptions(payload_columns=["x"]), "no payload columns"),
        (
            pa.table({"vector": pa.array([None], pa.list_(pa.float32()))}),
            ReadOptions(),
            "holds no vector",
        ),
    ],
)
def test_bad_parquet_columns_are_refused(
    tmp_path: Path, table: pa.Table, options: ReadOptions, message: str
) -> None:
    path = _parquet(tmp_path / "p.parquet", table)
    with pytest.raises(FileFormatError, match=message):
        list(open_reader(path, options).batches(10))


def test_file_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    (tmp_path / "p.parquet").write_text("id,vector\n")
    with pytest.raises(FileFormatError, match="not a readable Parquet file"):
        ParquetReader(tmp_path / "p.parquet", ReadOptions())


# -- .jsonl -----------------------------------------------------------------------------------


def _jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines))
    return path


def test_jsonl_lines_are_sent_verbatim_with_their_line_numbers(tmp_path: Path) -> None:
    lines = [
        orjson.dumps({"id": i, "vector": [i, 0.5], "payload": {"i": i}}).decode() for i in range(5)
    ]
    path = _jsonl(tmp_path / "p.jsonl", [lines[0], "", lines[1], "  ", *lines[2:]])
    reader = open_reader(path, ReadOptions())
    chunks = list(reader.batches(2))
    assert (reader.rows, reader.vector_sizes) == (5, {"": 2})
    assert all(isinstance(c, NdjsonChunk) for c in chunks)
    assert [c.line_numbers for c in chunks] == [[1, 3], [5, 6], [7]]
    assert [(line + "\n").encode() for line in lines] == [x for c in chunks for x in c.lines]


def test_jsonl_skip_counts_points_not_blank_lines(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "p.jsonl",
        ['{"id":1,"vector":[1]}', "", '{"id":2,"vector":[2]}', '{"id":3,"vector":[3]}'],
    )
    chunks = list(JsonlReader(path).batches(10, skip=1))
    assert [c.line_numbers for c in chunks] == [[3, 4]]


def test_jsonl_chunk_slices_keep_line_numbers(tmp_path: Path) -> None:
    chunk = NdjsonChunk([b"a\n", b"b\n", b"c\n"], [1, 2, 4])
    assert NdjsonChunk([b"b\n", b"c\n"], [2, 4]) == chunk.slice(1, 5)


def test_jsonl_named_vector_sizes_come_from_the_first_point(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "p.jsonl", ['{"id": 1, "vector": {"a": [1, 2], "m": [[1], [2]]}}'])
    assert JsonlReader(path).vector_sizes == {"a": 2}


@pytest.mark.parametrize(
    ("first", "message"),
    [
        ("{not json", "line 2 is not JSON"),
        ('{"id": 1}', "line 2 is not a point"),
        ("[1]", "not a point"),
    ],
)
def test_jsonl_with_a_bad_first_point_is_refused(tmp_path: Path, first: str, message: str) -> None:
    path = _jsonl(tmp_path / "p.jsonl", ["", first, '{"id": 1, "vector": [1]}'])
    with pytest.raises(FileFormatError, match=message):
        open_reader(path, ReadOptions())


def test_empty_jsonl_has_no_rows(tmp_path: Path) -> None:
    reader = open_reader(_jsonl(tmp_path / "p.ndjson", []), ReadOptions())
    assert (reader.rows, reader.vector_sizes, list(reader.batches(5))) == (0, {}, [])


def test_batch_rows_must_be_positive(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", _matrix(2, 2))
    with pytest.raises(ValueError, match="batch_rows"):
        list(open_reader(tmp_path / "v.npy", ReadOptions()).batches(0))
