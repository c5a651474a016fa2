"""Snapshots against a real server: consistent while writes continue, and usable from
qdrant-client (create, list, recover from a location or an upload, delete)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient, models

from tests.helpers.process import result

pytestmark = pytest.mark.integration

DIM = 8
BATCH = 40


def vector_of(point_id: int) -> list[float]:
    return [float(point_id), float(point_id % 7), 1.0, *([0.5] * (DIM - 3))]


def scroll_all(client: httpx.Client, name: str) -> list[dict[str, Any]]:
    body = {"limit": 100_000, "with_payload": True, "with_vector": True}
    points: list[dict[str, Any]] = result(
        client.post(f"/collections/{name}/points/scroll", json=body)
    )["points"]
    return points


class Writer(threading.Thread):
    """Upserts batch after batch (ids ``k * BATCH ...``, payload ``{"batch": k}``), each
    one request and so one transaction, recording the batches acknowledged."""

    def __init__(self, url: str, name: str) -> None:
        super().__init__(daemon=True)
        self.url, self.name = url, name
        self.acked: list[int] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=60) as client:
                batch = 0
                while not self.stop.is_set():
                    points = [
                        {"id": i, "vector": vector_of(i), "payload": {"batch": batch}}
                        for i in range(batch * BATCH, (batch + 1) * BATCH)
                    ]
                    path = f"/collections/{self.name}/points?wait=true"
                    result(client.put(path, json={"points": points}))
                    self.acked.append(batch)
                    batch += 1
        except BaseException as exc:  # reported by the test
            self.error = exc

    def wait_for(self, batches: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < batches:
            assert self.error is None, self.error
            assert time.monotonic() < deadline, f"writer stuck at {len(self.acked)} batches"
            time.sleep(0.01)


def whole_batches(points: list[dict[str, Any]]) -> int:
    """The number of batches the points hold, asserting they are batches 0..m-1 whole,
    each point with the vector it was written with."""
    by_batch: dict[int, set[int]] = {}
    for point in points:
        assert point["vector"] == vector_of(point["id"])
        by_batch.setdefault(point["payload"]["batch"], set()).add(point["id"])
    count = len(by_batch)
    assert sorted(by_batch) == list(range(count))
    for batch, ids in by_batch.items():
        assert ids == set(range(batch * BATCH, (batch + 1) * BATCH)), f"batch {batch} split"
    assert len(points) == count * BATCH
    return count


def test_snapshot_taken_during_writes_holds_whole_batches(module_server_url: str) -> None:
    with httpx.Client(base_url=module_server_url, timeout=60) as client:
        body = {
            "vectors": {"size": DIM, "distance": "Euclid"},
            "optimizers_config": {"indexing_threshold": 200, "default_segment_number": 2},
        }
        result(client.put("/collections/live", json=body))
        writer = Writer(module_server_url, "live")
        writer.start()
        try:
            taken = []
            for _ in range(3):
                writer.wait_for(len(writer.acked) + 5)
                before = len(writer.acked)
                name = result(client.post("/collections/live/snapshots"))["name"]
                taken.append((name, before, len(writer.acked)))
            writer.wait_for(len(writer.acked) + 3)
        finally:
            writer.stop.set()
            writer.join(timeout=60)
        assert writer.error is None, writer.error

        for position, (name, before, after) in enumerate(taken):
            target = f"restored{position}"
            result(client.put(f"/collections/{target}/snapshots/recover", json={"location": name}))
            batches = whole_batches(scroll_all(client, target))
            # every batch acknowledged before the request is in; at most one in flight after
            assert before <= batches <= after + 1
        assert whole_batches(scroll_all(client, "live")) == len(writer.acked)
        count = result(client.post("/collections/live/points/count", json={"exact": True}))
        assert count == {"count": len(writer.acked) * BATCH}


def test_qdrant_client_creates_lists_recovers_and_deletes(
    module_server_url: str, tmp_path: Path
) -> None:
    client = QdrantClient(url=module_server_url, prefer_grpc=False, timeout=30)
    params = models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    client.create_collection("qc", vectors_config=params)
    client.create_payload_index("qc", "tag", models.PayloadSchemaType.KEYWORD)
    points = [
        models.PointStruct(id=i, vector=vector_of(i), payload={"tag": f"t{i % 3}"})
        for i in range(1, 30)
    ]
    client.upsert("qc", points=points, wait=True)
    description = client.create_snapshot("qc")
    assert description is not None
    assert [s.name for s in client.list_snapshots("qc")] == [description.name]

    data = httpx.get(f"{module_server_url}/collections/qc/snapshots/{description.name}").content
    archive = tmp_path / "qc.snapshot"
    archive.write_bytes(data)
    with archive.open("rb") as handle:
        client.http.snapshots_api.recover_from_uploaded_snapshot(
            "qc_uploaded",
            wait=True,
            priority=models.SnapshotPriority.SNAPSHOT,
            checksum=description.checksum,
            snapshot=handle,
        )
    # a location may only name a file in the server's snapshots folder (issue 18)
    served = next(tmp_path.parent.glob(f"quiver*/data/snapshots/qc/{description.name}"))
    assert client.recover_snapshot("qc_by_path", location=served.as_uri()) is True
    assert client.recover_snapshot("qc_by_name", location=description.name) is True

    def records(name: str) -> list[Any]:
        found, _ = client.scroll(name, limit=100, with_payload=True, with_vectors=True)
        return sorted(((r.id, r.payload, r.vector) for r in found), key=lambda r: str(r[0]))

    expected = records("qc")
    for name in ("qc_uploaded", "qc_by_path", "qc_by_name"):
        assert records(name) == expected
        info = client.get_collection(name)
        assert info.payload_schema == client.get_collection("qc").payload_schema
    assert client.delete_snapshot("qc", description.name) is True
    assert client.list_snapshots("qc") == []
