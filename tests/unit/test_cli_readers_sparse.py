"""Parquet files with sparse vector columns (a struct of indices and values) pass
through the CLI reader to the bulk endpoint unchanged, beside dense columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from client.readers import ReadOptions, open_reader


def test_parquet_sparse_column_passes_through(tmp_path: Path) -> None:
    kind = pa.struct([("indices", pa.list_(pa.int64())), ("values", pa.list_(pa.float64()))])
    sparse = [{"indices": [3, 1], "values": [0.5, 2.0]}, None, {"indices": [], "values": []}]
    table = pa.table(
        {
            "id": pa.array([1, 2, 3]),
            "vector.dense": pa.array(np.ones((3, 2)).tolist(), pa.list_(pa.float64())),
            "vector.text": pa.array(sparse, kind),
            "city": ["a", "b", "c"],
        }
    )
    path = tmp_path / "s.parquet"
    pq.write_table(table, path)
    reader = open_reader(path, ReadOptions())
    assert reader.vector_sizes == {"dense": 2}
    batch = next(reader.batches(10))
    assert batch.schema.names == ["id", "vector.dense", "vector.text", "city"]
    assert batch.column("vector.text").to_pylist() == sparse
    assert pa.list_(pa.float32(), 2) == batch.schema.field("vector.dense").type
