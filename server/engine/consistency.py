"""Qdrant's read ``consistency`` parameter: how many replicas of a shard a read asks,
and which of their answers it keeps.

Qdrant's values: a number ``n`` (ask ``n`` replicas, keep the points all of them
returned), ``majority`` (ask more than half, keep what all returned), ``quorum`` (ask
every replica, keep what more than half returned) and ``all`` (ask every replica, keep
what all returned). The route's value travels to the replica sets
(``server/cluster/replica_set.py``) in ``READ_CONSISTENCY``, a context variable set in
the worker thread that runs the read, so no collection method needs one more argument;
a single-node collection ignores it, as Qdrant does without replicas.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

from server.errors import BadRequest

Kind = Literal["factor", "majority", "quorum", "all"]


@dataclass(frozen=True, slots=True)
class ReadConsistency:
    kind: Kind
    factor: int = 1

    def replicas_to_ask(self, active: int) -> int:
        """How many of the ``active`` replicas the read asks (at least one)."""
        if self.kind == "factor":
            return self.factor
        if self.kind == "majority":
            return active // 2 + 1
        return active

    def votes_needed(self, asked: int) -> int:
        """How many of the ``asked`` answers must hold a point for it to be kept."""
        return asked // 2 + 1 if self.kind == "quorum" else asked


READ_CONSISTENCY: ContextVar[ReadConsistency | None] = ContextVar("read_consistency", default=None)
"""The consistency of the read the current thread runs (None: one replica)."""


_NAMED = {
    "majority": ReadConsistency("majority"),
    "quorum": ReadConsistency("quorum"),
    "all": ReadConsistency("all"),
}


def parse_consistency(raw: object) -> ReadConsistency | None:
    """A query-string or body value; None when absent. Anything else is a 400."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, str) and raw in _NAMED:
        return _NAMED[raw]
    text = str(raw)
    if text.isdigit() and int(text) >= 1:
        return ReadConsistency("factor", int(text))
    raise BadRequest(
        f"Bad request: consistency must be a positive number, 'majority', 'quorum' or 'all', "
        f"got {raw!r}"
    )
