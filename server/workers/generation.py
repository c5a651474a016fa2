"""The owner's write generation, shared with every worker without a system call.

A ``MAP_SHARED`` mapping of a memory file (``memfd``) made by the supervisor before
it forks is the same memory in every worker; a worker the keeper starts again after
a crash (``keeper.py``, by ``exec``, which drops mappings) maps the same file from its
inherited descriptor. Only the owner writes it; readers compare it with the
generation their view was loaded at before each read.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading

_FORMAT = "<Q"


class Generation:
    """A 64-bit counter in shared memory: the owner bumps it, readers read it."""

    def __init__(self, fd: int | None = None) -> None:
        """A new counter at 0, or the one in the memory file ``fd`` (inherited)."""
        if fd is None:
            fd = os.memfd_create("quiver-generation", 0)  # no close-on-exec: see above
            os.ftruncate(fd, mmap.PAGESIZE)
            os.set_inheritable(fd, True)
        self.fd = fd
        self._memory = mmap.mmap(fd, mmap.PAGESIZE)
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
