"""One replica of one shard: a ``ShardServer`` that applies writes in sequence order.

A replicated shard numbers its writes (``server/cluster/oplog.py``); every replica
applies them in that order and records the last one it applied in ``replica.json``
beside its engine, so a reopened replica says how far it got. A write whose number is
not the next one is refused (``SequenceGap``): a replica never applies an operation
after a gap, so its data is always the shard's data as of its sequence number. A number
it already applied is skipped: writes are idempotent, and a replayed tail may overlap.

A replica's folder is on its own node's disk and is read by no one else: another
replica catches up from ``snapshot`` (the shard's files, ``shard_files.py``, with its
sequence number), which the transport carries node to node (Ray's object store) to
``install``, which opens them as a restart opens a replica's own folder. A catch-up
replays the logged writes after the snapshot's number in batches (``apply_batch``).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import suppress
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np

from server.cluster.shard_files import ShardFiles, place_files, read_files, swap_in
from server.cluster.shards import ShardCall, ShardServer, on_collection
from server.engine.collection import Collection
from server.engine.engine import Engine
from server.engine.sparse_vector import SparseRows
from server.errors import QuiverError
from server.storage.segment_store import fsync_dir

T = TypeVar("T")

SEQ_FILE = "replica.json"
COLLECTIONS = "collections"
"""The engine's root under its data folder (``Engine.root``)."""
LOCK_FILE = ".replica.lock"
LOCK_WAIT_S = 60.0
"""How long a replica waits for the process that had its folder to end."""

ReplicaSnapshot = tuple[int, ShardFiles]
"""A shard's files (``shard_files.py``), and the sequence number they hold the data of."""


class SequenceGap(Exception):
    """A write arrived out of order: the replica missed one and must catch up. Not a
    ``QuiverError``: the replica set treats it as a failed replica, not a client error."""


class ReplicaBusy(Exception):
    """Another process still holds the replica's folder."""


class ReplicaServer(ShardServer):
    """A shard engine plus the sequence number of the last write it applied."""

    def __init__(
        self,
        folder: str,
        name: str,
        config: dict[str, Any],
        idle_seal_s: float = 0.0,
        snapshot: ReplicaSnapshot | None = None,
    ) -> None:
        """``snapshot``: a new replica's data, placed in its folder before its engine
        first opens (``ray_replicas.ReplicaActor.open``'s ``to_install``), so the engine
        opens once, on the installed files, instead of empty and then again."""
        self._lock = _lock_folder(Path(folder))
        try:
            if snapshot is not None:
                _write_seq(Path(folder), 0)  # cut short, the next catch-up re-installs
                collections = Path(folder) / COLLECTIONS
                swap_in(collections, name, place_files(collections, name, snapshot[1]))
                fsync_dir(Path(folder))  # the new ``collections`` entry, before the number
            super().__init__(folder, name, config, idle_seal_s)
        except BaseException:
            self._lock.close()
            raise
        self._seq = _read_seq(self.folder)
        if snapshot is not None:
            self._applied(snapshot[0])

    def close(self) -> None:
        super().close()
        self._lock.close()

    def apply(self, seq: int, call: ShardCall[T]) -> T | None:
        """Write number ``seq``: run it if it is the next one (None if already applied)."""
        if seq <= self._seq:
            return None
        if seq != self._seq + 1:
            raise SequenceGap(f"write {seq} arrived after {self._seq}")
        try:
            answer = self.call(call)
        except QuiverError:  # a client error: every replica raises it alike
            self._applied(seq)
            raise
        self._applied(seq)  # any other failure leaves the number: the write is sent again
        return answer

    def apply_batch(self, ops: list[tuple[int, ShardCall[Any]]]) -> int:
        """Logged writes replayed in one call (a catch-up): runs of bulk upserts are
        merged into one engine write (one store transaction), the sequence file is
        written once. Returns the last number applied. A merged run that fails with a
        client error is applied one write at a time, as it first was, so the data ends
        the same; client errors are not raised (the first replica saw them already)."""
        fresh = [(seq, call) for seq, call in ops if seq > self._seq]
        if fresh and fresh[0][0] != self._seq + 1:
            raise SequenceGap(f"write {fresh[0][0]} arrived after {self._seq}")
        try:
            for run in _runs(fresh):
                self._apply_run([call for _, call in run])
                self._seq = run[-1][0]
        finally:
            if fresh:
                _write_seq(self.folder, self._seq)
        return self._seq

    def _apply_run(self, calls: list[ShardCall[Any]]) -> None:
        merged = _merged_upserts(calls)
        try:
            if merged is None:
                raise _NotMerged
            self.call(merged)
            return
        except (QuiverError, _NotMerged):
            pass  # an engine write changes nothing when it fails: apply them one by one
        for call in calls:
            with suppress(QuiverError):  # every replica raised it alike
                self.call(call)

    def _applied(self, seq: int) -> None:
        self._seq = seq
        _write_seq(self.folder, seq)

    def applied_seq(self) -> int:
        return self._seq

    def snapshot(self) -> ReplicaSnapshot:
        """This shard's files (``shard_files.py``) and sequence number (the actor runs
        one call at a time, so no write lands between the two)."""
        return self._seq, read_files(self.collection())

    def install(self, snapshot: ReplicaSnapshot) -> int:
        """Replace this replica's data with ``snapshot``'s files and open them as a
        restart does (``Collection.open`` checks them); returns the sequence number it
        now holds."""
        seq, files = snapshot
        collections = self.engine.root
        placed = place_files(collections, self.name, files)
        self._applied(0)  # a swap cut short leaves no known state: the next catch-up re-installs
        idle_seal_s = self.engine.idle_seal_s
        self.engine.close()
        try:
            swap_in(collections, self.name, placed)
        finally:
            self.engine = Engine(self.folder, idle_seal_s)  # the new folder, else the old one
        self._applied(seq)
        return seq


class _NotMerged(Exception):
    """A run of writes that cannot be one engine write."""


def _runs(ops: list[tuple[int, ShardCall[Any]]]) -> list[list[tuple[int, ShardCall[Any]]]]:
    """Consecutive writes grouped: bulk upserts together, every other write alone."""
    runs: list[list[tuple[int, ShardCall[Any]]]] = []
    for op in ops:
        if runs and _is_bulk(op[1]) and _is_bulk(runs[-1][-1][1]):
            runs[-1].append(op)
        else:
            runs.append([op])
    return runs


def _is_bulk(call: ShardCall[Any]) -> bool:
    return call.method is Collection.bulk_upsert and not call.on_server and not call.kwargs


def _merged_upserts(calls: list[ShardCall[Any]]) -> ShardCall[Any] | None:
    """One bulk upsert doing what ``calls`` (bulk upserts) do in order: the later of two
    rows with one id wins, as ``bulk_upsert`` keeps an id's last row. None when their
    vectors are not all dense matrices under the same names."""
    if len(calls) == 1:
        return calls[0]
    names = set(calls[0].args[1])
    matrices = [call.args[1] for call in calls]
    if any(set(m) != names or not all(isinstance(v, np.ndarray) for v in m.values())
           for m in matrices):  # fmt: skip
        return None
    ids = [i for call in calls for i in call.args[0]]
    joined: dict[str, np.ndarray | SparseRows] = {
        name: np.concatenate([m[name] for m in matrices]) for name in names
    }
    payloads = [p for call in calls for p in call.args[2]]
    return on_collection(Collection.bulk_upsert, ids, joined, payloads)


def _lock_folder(folder: Path) -> BinaryIO:
    """Hold the folder's lock for as long as this replica lives. A front that died
    takes its replica actors with it, but Ray may still be ending them when the
    restarted front starts new ones on the same folders: the new one waits."""
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / LOCK_FILE, "ab")  # noqa: SIM115 - held until close()
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                raise ReplicaBusy(f"replica folder {folder} is held by another process") from None
            time.sleep(0.1)


def _read_seq(folder: Path) -> int:
    try:
        seq: int = json.loads((folder / SEQ_FILE).read_text())["seq"]
    except FileNotFoundError:
        return 0
    return seq


def _write_seq(folder: Path, seq: int) -> None:
    """Replaced atomically, not fsynced: a number that lags after a crash only makes
    the front replay writes this replica already holds, which it skips or repeats
    harmlessly (writes are idempotent)."""
    temp = folder / f".{SEQ_FILE}.tmp"
    temp.write_text(json.dumps({"seq": seq}))
    os.replace(temp, folder / SEQ_FILE)
