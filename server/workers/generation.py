"""The owner's write generation, shared with every worker without a system call.

An anonymous ``MAP_SHARED`` mapping made by the supervisor before it forks is the
same memory in every worker (restarted ones too, since they are forked from the
supervisor). Only the owner writes it; readers compare it with the generation their
view was loaded at before each read.
"""

from __future__ import annotations

import mmap
import struct
import threading

_FORMAT = "<Q"


class Generation:
    """A 64-bit counter in shared memory: the owner bumps it, readers read it."""

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, mmap.PAGESIZE)
        self._lock = threading.Lock()

    def read(self) -> int:
        value: int = struct.unpack_from(_FORMAT, self._memory, 0)[0]
        return value

    def bump(self) -> int:
        """Called by the owner (request threads and the build worker) after a change is
        durable and before anyone is told of it."""
        with self._lock:
            value = self.read() + 1
            struct.pack_into(_FORMAT, self._memory, 0, value)
            return value
