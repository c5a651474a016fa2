"""A shard's bounded operation log: the writes a lagging replica replays to catch up.

Every write to a replicated shard gets the next number of the shard's operation
sequence (``server/cluster/replica_set.py``) and is kept here, newest last. A replica
that was last at sequence ``s`` catches up with ``since(s)``; when the log no longer
reaches back to ``s`` it needs a snapshot of the shard first (``None``).

**Durable.** The log is kept in the front's data folder as well as in memory, so a
front that restarts (after a crash, too) still has it: a replica that lagged then
catches up from the log, and a write that only a lost replica had applied is still
there to replay to the others. Each write is appended before it is sent to any
replica and fsynced before it is acknowledged (``sync``: concurrent writers share one
fsync). On disk the log is a run of segment files ``<first seq>.log``, each a magic
line and then records ``<length u32><crc32 u32><pickle of (seq, call)>``; a torn or
corrupt record ends the log there (a crash cut the append short), and so does one that
no longer unpickles (a shard call renamed by an upgrade).

**Bounded.** At most ``capacity`` operations and ``max_bytes`` of them (pickled) are
kept; the oldest go first. A segment file is removed once every operation in it is
older than the oldest one kept, so the disk holds at most one segment more than memory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import struct
import threading
import zlib
from collections import deque
from pathlib import Path
from typing import Any, BinaryIO

from server.cluster.shards import ShardCall
from server.errors import StorageError
from server.storage.segment_store import fsync_dir

log = logging.getLogger(__name__)

DEFAULT_CAPACITY = 10_000
"""Operations kept per shard: a replica that missed more is rebuilt from a snapshot."""
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
"""Bytes of operations kept per shard (bulk loads are large operations)."""
SEGMENTS_PER_LOG = 8
"""A segment holds about 1/8 of the bound, so the disk keeps at most 1/8 extra."""
MAGIC = b"QUIVER-OPLOG 1\n"
_HEADER = struct.Struct("<II")

Operation = tuple[int, ShardCall[Any]]


class OpLog:
    """Sequence-numbered operations in ``folder``, the oldest dropped past the bounds.
    Opening a folder that holds a log continues it (``first_seq`` is where an empty
    log starts)."""

    def __init__(
        self,
        folder: Path,
        first_seq: int = 0,
        capacity: int = DEFAULT_CAPACITY,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.folder = folder
        self.capacity, self.max_bytes = capacity, max_bytes
        self.last_seq = first_seq
        """The newest operation's sequence (``first_seq`` while the log is empty)."""
        self._ops: deque[tuple[int, ShardCall[Any], int]] = deque()
        self._bytes = 0
        self._segments: list[tuple[int, Path]] = []  # (first seq, file), oldest first
        self._file: BinaryIO | None = None
        self._in_segment = (0, 0)  # operations and bytes in the open segment
        self._synced_seq = first_seq
        self._sync_lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)
        self._load()

    # -- writing -----------------------------------------------------------

    def append(self, call: ShardCall[Any]) -> int:
        """Give ``call`` the next sequence number and keep it (written, not yet fsynced:
        ``sync`` before acknowledging). The caller serialises appends (the shard's lock)."""
        seq = self.last_seq + 1
        data = pickle.dumps((seq, call), protocol=pickle.HIGHEST_PROTOCOL)
        self._write(seq, data)
        self.last_seq = seq
        self._keep(seq, call, len(data))
        return seq

    def sync(self) -> None:
        """Make every operation appended so far durable; a writer that finds its
        operation already covered by another writer's fsync does not fsync again."""
        wanted = self.last_seq
        with self._sync_lock:
            if self._synced_seq >= wanted or self._file is None:
                return
            done = self.last_seq
            try:
                os.fsync(self._file.fileno())
            except OSError as error:
                raise StorageError(f"operation log not synced: {error}") from error
            self._synced_seq = done

    def reset(self, seq: int) -> None:
        """Forget every operation and start empty at ``seq`` (the replicas are past
        what the log holds: a reopened front whose log lost its tail)."""
        with self._sync_lock:
            self._close_file()
            for _, path in self._segments:
                path.unlink(missing_ok=True)
            self._segments.clear()
            self._ops.clear()
            self._bytes = 0
            self.last_seq = self._synced_seq = seq

    def close(self) -> None:
        with self._sync_lock:
            self._close_file()

    # -- reading -----------------------------------------------------------

    def since(self, seq: int) -> list[Operation] | None:
        """The operations after ``seq``, in order; None when some were dropped already."""
        if seq >= self.last_seq:
            return []
        oldest = self._ops[0][0] if self._ops else self.last_seq + 1
        if seq + 1 < oldest:
            return None
        return [(s, call) for s, call, _ in self._ops if s > seq]

    def __len__(self) -> int:
        return len(self._ops)

    # -- bounds ------------------------------------------------------------

    def _keep(self, seq: int, call: ShardCall[Any], size: int) -> None:
        self._ops.append((seq, call, size))
        self._bytes += size
        while len(self._ops) > 1 and (
            len(self._ops) > self.capacity or self._bytes > self.max_bytes
        ):
            self._bytes -= self._ops.popleft()[2]
        self._drop_old_segments()

    def _drop_old_segments(self) -> None:
        """Remove the segments whose operations are all older than the oldest kept."""
        oldest = self._ops[0][0]
        while len(self._segments) > 1 and self._segments[1][0] <= oldest:
            self._segments.pop(0)[1].unlink(missing_ok=True)

    # -- files -------------------------------------------------------------

    def _write(self, seq: int, data: bytes) -> None:
        ops, size = self._in_segment
        full = ops >= max(1, self.capacity // SEGMENTS_PER_LOG) or (
            size >= self.max_bytes // SEGMENTS_PER_LOG
        )
        if self._file is None or full:
            self._open_segment(seq)
        assert self._file is not None
        record = _HEADER.pack(len(data), zlib.crc32(data)) + data
        start = self._file.tell()
        try:
            self._file.write(record)
            self._file.flush()  # in the page cache: a killed front loses nothing
        except OSError as error:  # a part written would end the log at the next reopen
            with contextlib.suppress(OSError):
                self._file.truncate(start)
            raise StorageError(f"operation log not written: {error}") from error
        ops, size = self._in_segment
        self._in_segment = (ops + 1, size + len(record))

    def _open_segment(self, first_seq: int) -> None:
        """A new segment starting at ``first_seq`` (the previous one fsynced and closed)."""
        with self._sync_lock:
            if self._file is not None:
                os.fsync(self._file.fileno())
            self._close_file()
            path = self.folder / f"{first_seq:020d}.log"
            self._file = open(path, "ab")  # noqa: SIM115 - kept open, closed by close()
            self._file.write(MAGIC)
            self._segments.append((first_seq, path))
            self._in_segment = (0, len(MAGIC))
        fsync_dir(self.folder)

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _load(self) -> None:
        """Read the segments back, oldest first; a bad record ends the log there."""
        paths = sorted(self.folder.glob("*.log"))
        for index, path in enumerate(paths):
            records, good_size = _read_segment(path)
            self._segments.append((int(path.stem), path))
            for seq, call, size in records:
                self.last_seq = seq
                self._keep(seq, call, size)
            if good_size < path.stat().st_size:
                log.warning("operation log cut at a torn record", extra={"file": str(path)})
                os.truncate(path, good_size)
                for later in paths[index + 1 :]:
                    later.unlink()
                break
        self._synced_seq = self.last_seq
        if not self._ops:  # nothing kept: the files only held a magic line
            for _, path in self._segments:
                path.unlink()
            self._segments.clear()


def _read_segment(path: Path) -> tuple[list[tuple[int, ShardCall[Any], int]], int]:
    """A segment's records and the length of its readable part."""
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):  # the magic line itself was torn
            return [], 0
        raise StorageError(f"{path} is not a Quiver operation log of a known version")
    records, at = [], len(MAGIC)
    while at + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, at)
        body = data[at + _HEADER.size : at + _HEADER.size + length]
        if len(body) < length or zlib.crc32(body) != crc:
            break
        try:
            seq, call = pickle.loads(body)
        except Exception:  # a call renamed by an upgrade: the log ends here
            log.warning("operation log record not readable", extra={"file": str(path)})
            break
        records.append((seq, call, length))
        at += _HEADER.size + length
    return records, at
