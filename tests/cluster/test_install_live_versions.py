"""A new replica keeps the installed segments' rows by version, not by comparing vectors.

The source sends each sealed segment's live rows' versions beside its files
(``shard_files.read_files``); the new replica's engine keeps a row alive only where the
copied store holds its point at that version (``collection/recovery.py``), and sends
every other point, read from the store, to the appendable segment. These tests check
that it opens the same data as the source whatever happened to the points after their
segments were sealed, that a hint which does not match the store keeps nothing stale,
and that reopening the installed folder later still holds every write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from server.cluster.replica_server import ReplicaServer
from server.cluster.shard_files import read_files
from server.cluster.shards import ShardCall, ShardServer, on_collection, on_server
from server.engine.collection import Collection, recovery
from server.engine.requests import PointsSelection, SearchSpec
from server.storage.segment_store import LIVE_VERSIONS
from tests.cluster.test_replicas import DIM, SEALING, stored


def rows(ids: list[int], seed: int = 0) -> np.ndarray:
    return np.asarray(
        [np.random.default_rng(i + 1000 * seed).normal(size=DIM) for i in ids], dtype=np.float32
    )


def bulk(ids: list[int], seed: int = 0) -> ShardCall[Any]:
    return on_collection(
        Collection.bulk_upsert, ids, {"": rows(ids, seed)}, [{"n": i} for i in ids]
    )


def nearest(server: ReplicaServer, queries: np.ndarray) -> list[list[Any]]:
    specs = [SearchSpec(vector=q, using="", limit=5) for q in queries]
    return [
        [hit.id for hit in hits] for hits in server.call(on_collection(Collection.search, specs))
    ]


def changed_source(folder: Path) -> ReplicaServer:
    """A replica whose sealed segments no longer match every point: after the seals,
    some points got new vectors, some a new payload only, some were deleted."""
    source = ReplicaServer(str(folder), "c", SEALING)
    seq = 0
    for start in range(0, 400, 100):
        seq += 1
        source.apply(seq, bulk(list(range(start, start + 100))))
    assert source.call(on_server(ShardServer.wait_idle, 30.0))  # sealed and built
    edits: list[ShardCall[Any]] = [
        bulk(list(range(0, 30)), seed=1),  # new vectors: their sealed rows die
        on_collection(
            Collection.set_payload, {"edited": True}, PointsSelection(list(range(100, 130))), None
        ),
        on_collection(Collection.delete, PointsSelection(list(range(200, 220)))),
        bulk(list(range(400, 440))),  # the unsealed tail
    ]
    for call in edits:
        seq += 1
        source.apply(seq, call)
    return source


def test_an_installed_replica_keeps_live_rows_by_version_and_opens_the_sources_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = changed_source(tmp_path / "a")
    seq, files = source.snapshot()
    hints = [path for path in files if path.endswith("/" + LIVE_VERSIONS)]
    assert hints and len(hints) == len([p for p in files if p.endswith("manifest.json")])

    def compared(*args: Any) -> None:
        raise AssertionError("an installed segment's rows are kept by version")

    with monkeypatch.context() as patch:
        patch.setattr(recovery, "_holds", compared)
        target = ReplicaServer(str(tmp_path / "b"), "c", SEALING, snapshot=(seq, files))
    assert stored(target) == stored(source) and len(stored(target)) == 420
    assert {k: v.tolist() for k, v in target.collection().live_versions().items()} == {
        k: v.tolist() for k, v in source.collection().live_versions().items()
    }
    queries = rows(list(range(500, 520)), seed=2)
    assert nearest(target, queries) == nearest(source, queries)
    target.close()
    reopened = ReplicaServer(str(tmp_path / "b"), "c", SEALING)  # a restart of it
    reopened.apply(seq + 1, bulk(list(range(300, 310)), seed=3))
    source.apply(seq + 1, bulk(list(range(300, 310)), seed=3))
    assert stored(reopened) == stored(source)
    reopened.close()
    again = ReplicaServer(str(tmp_path / "b"), "c", SEALING)
    assert stored(again) == stored(source) and nearest(again, queries) == nearest(source, queries)
    for server in (source, again):
        server.close()


@pytest.mark.parametrize("shift", [1, -1])
def test_a_hint_that_does_not_match_the_store_keeps_no_row_and_loses_no_point(
    tmp_path: Path, shift: int
) -> None:
    """Versions off by one (a hint from another state): no row of those segments is
    kept, and every point comes back from the store into the appendable segment."""
    source = changed_source(tmp_path / "a")
    seq, files = source.snapshot()
    for path in [p for p in files if p.endswith("/" + LIVE_VERSIONS)]:
        versions = np.frombuffer(files[path], dtype="<i8")
        files[path] = np.where(versions >= 0, versions + shift, versions).view(np.uint8)
    installed = {int(p.split("/")[1]) for p in files if p.endswith("/" + LIVE_VERSIONS)}
    target = ReplicaServer(str(tmp_path / "b"), "c", SEALING, snapshot=(seq, files))
    live = target.collection().live_versions()  # the reinserted points seal anew
    assert installed and all(not (live[i] >= 0).any() for i in installed if i in live)
    assert stored(target) == stored(source) and len(stored(target)) == 420
    for server in (source, target):
        server.close()


def test_a_store_written_without_hints_is_opened_by_comparing_vectors(tmp_path: Path) -> None:
    """No live-versions file (a restart of a replica's own folder, a snapshot archive):
    the vectors are read and compared as before."""
    source = changed_source(tmp_path / "a")
    files = read_files(source.collection())
    assert any(p.endswith("/" + LIVE_VERSIONS) for p in files)
    bare = {p: d for p, d in files.items() if not p.endswith("/" + LIVE_VERSIONS)}
    target = ReplicaServer(str(tmp_path / "b"), "c", SEALING, snapshot=(source.applied_seq(), bare))
    assert stored(target) == stored(source)
    assert {k: v.tolist() for k, v in target.collection().live_versions().items()} == {
        k: v.tolist() for k, v in source.collection().live_versions().items()
    }
    for server in (source, target):
        server.close()
