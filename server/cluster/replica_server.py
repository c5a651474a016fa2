"""One replica of one shard: a ``ShardServer`` that applies writes in sequence order.

A replicated shard numbers its writes (``server/cluster/oplog.py``); every replica
applies them in that order and records the last one it applied in ``replica.json``
beside its engine, so a reopened replica says how far it got. A write whose number is
not the next one is refused (``SequenceGap``): a replica never applies an operation
after a gap, so its data is always the shard's data as of its sequence number. A number
it already applied is skipped: writes are idempotent, and a replayed tail may overlap.

A replica's folder is on its own node's disk and is read by no one else: another
replica catches up from ``snapshot`` (the shard's archive as bytes, with its sequence
number), which the transport carries node to node (Ray's object store) to ``install``.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from server.cluster.shards import ShardCall, ShardServer
from server.errors import QuiverError

T = TypeVar("T")

SEQ_FILE = "replica.json"
LOCK_FILE = ".replica.lock"
LOCK_WAIT_S = 60.0
"""How long a replica waits for the process that had its folder to end."""

ReplicaSnapshot = tuple[int, bytes]
"""A shard snapshot archive as bytes, and the sequence number it holds the data of."""


class SequenceGap(Exception):
    """A write arrived out of order: the replica missed one and must catch up. Not a
    ``QuiverError``: the replica set treats it as a failed replica, not a client error."""


class ReplicaBusy(Exception):
    """Another process still holds the replica's folder."""


class ReplicaServer(ShardServer):
    """A shard engine plus the sequence number of the last write it applied."""

    def __init__(
        self, folder: str, name: str, config: dict[str, Any], idle_seal_s: float = 0.0
    ) -> None:
        self._lock = _lock_folder(Path(folder))
        super().__init__(folder, name, config, idle_seal_s)
        self._seq = _read_seq(self.folder)

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

    def _applied(self, seq: int) -> None:
        self._seq = seq
        _write_seq(self.folder, seq)

    def applied_seq(self) -> int:
        return self._seq

    def snapshot(self) -> ReplicaSnapshot:
        """This shard's archive and sequence number (the actor runs one call at a time,
        so no write lands between the two)."""
        work = self.folder / f".transfer-{uuid.uuid4().hex}"
        try:
            written = self.write_snapshot(str(work))
            return self._seq, (work / written.name).read_bytes()
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def install(self, snapshot: ReplicaSnapshot) -> int:
        """Replace this replica's data with ``snapshot`` (verified first by the engine's
        recovery); returns the sequence number it now holds."""
        seq, data = snapshot
        work = self.folder / f".transfer-{uuid.uuid4().hex}"
        work.mkdir(parents=True)
        try:
            archive = work / "shard.snapshot"
            archive.write_bytes(data)
            self.engine.recover(self.name, archive, None)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self._applied(seq)
        return seq


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
