"""A shard's bounded operation log: the writes a lagging replica replays to catch up.

Every write to a replicated shard gets the next number of the shard's operation
sequence (``server/cluster/replica_set.py``) and is kept here, newest last, until the
log holds more than ``capacity`` operations. A replica that was last at sequence ``s``
catches up with ``since(s)``; when the log no longer reaches back to ``s`` it needs a
snapshot of the shard first (``None``). The log lives in the front's memory only: a
restarted front starts an empty one at the replicas' highest sequence, so a replica
that lags then is rebuilt from a snapshot.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from server.cluster.shards import ShardCall

DEFAULT_CAPACITY = 10_000
"""Operations kept per shard: a replica that missed more is rebuilt from a snapshot."""

Operation = tuple[int, ShardCall[Any]]


class OpLog:
    """Sequence-numbered operations, the oldest dropped past ``capacity``."""

    def __init__(self, first_seq: int = 0, capacity: int = DEFAULT_CAPACITY) -> None:
        self.last_seq = first_seq
        """The newest operation's sequence (``first_seq`` while the log is empty)."""
        self._ops: deque[Operation] = deque(maxlen=capacity)

    def append(self, call: ShardCall[Any]) -> int:
        """Give ``call`` the next sequence number and keep it."""
        self.last_seq += 1
        self._ops.append((self.last_seq, call))
        return self.last_seq

    def since(self, seq: int) -> list[Operation] | None:
        """The operations after ``seq``, in order; None when some were dropped already."""
        if seq >= self.last_seq:
            return []
        oldest = self._ops[0][0] if self._ops else self.last_seq + 1
        if seq + 1 < oldest:
            return None
        return [op for op in self._ops if op[0] > seq]

    def __len__(self) -> int:
        return len(self._ops)
