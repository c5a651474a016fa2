"""Strict mode's read and write rate limits: one token bucket per collection and kind.

Qdrant's ``read_rate_limit`` / ``write_rate_limit`` are operations per minute: the
bucket holds that many tokens, starts full (a burst is allowed) and refills evenly,
``rate / 60`` tokens a second. An operation costs tokens (``strict_mode.py`` says
how many); one that costs more than the bucket can ever hold is refused for good, one
that costs more than it holds now is refused with the seconds to wait.

Buckets live beside the collection handle (a weak map: a dropped collection takes its
buckets along) and are rebuilt, full, when the configured rate changes, as Qdrant
rebuilds its limiters on a config update.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from server.errors import RateLimited

Kind = Literal["Read", "Write"]


@dataclass
class TokenBucket:
    """``per_minute`` tokens at most, refilled at ``per_minute / 60`` a second."""

    per_minute: int
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    checked: float = field(init=False)
    lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.tokens = float(self.per_minute)
        self.checked = self.clock()

    def take(self, cost: int, kind: Kind) -> None:
        """Consume ``cost`` tokens, or raise ``RateLimited`` (429) and consume none."""
        if cost > self.per_minute:
            raise RateLimited(
                f"{kind} rate limit exceeded, request larger than rate limiter capacity, "
                "please try to split your request",
                retry_after=None,
            )
        with self.lock:
            now = self.clock()
            rate = self.per_minute / 60.0
            self.tokens = min(float(self.per_minute), self.tokens + (now - self.checked) * rate)
            self.checked = now
            if self.tokens >= cost:
                self.tokens -= cost
                return
            available = self.tokens
        wait = math.ceil((cost - available) / rate)
        raise RateLimited(
            f"{kind} rate limit exceeded: Operation requires {cost} tokens but only "
            f"{available:.1f} were available. Retry after {wait}s",
            retry_after=wait,
        )


class RateLimits:
    """The buckets of every open collection, keyed by its handle."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: weakref.WeakKeyDictionary[object, dict[Kind, TokenBucket]] = (
            weakref.WeakKeyDictionary()
        )

    def take(self, owner: object, kind: Kind, per_minute: int, cost: int) -> None:
        """Charge ``cost`` to ``owner``'s ``kind`` bucket of ``per_minute`` tokens."""
        self._bucket(owner, kind, per_minute).take(max(1, cost), kind)

    def _bucket(self, owner: object, kind: Kind, per_minute: int) -> TokenBucket:
        with self._lock:
            buckets = self._buckets.setdefault(owner, {})
            bucket = buckets.get(kind)
            if bucket is None or bucket.per_minute != per_minute:
                bucket = buckets[kind] = TokenBucket(per_minute)
            return bucket


LIMITS = RateLimits()
"""The process's buckets (one server process owns the data folder)."""
