"""Give freed heap memory back to the operating system after a big one-off job.

A segment build (in the build worker's thread) or a restart's reload allocates and
frees hundreds of megabytes: the graph's construction buffers, every stored point
read back from SQLite, the transient lists of a batch. glibc keeps such freed memory
in its per-thread arenas, so the process's anonymous memory stays near the job's peak
long after the job ended (issue 24 measured ~400 B a point of it on GloVe-50).
``malloc_trim(0)`` walks every arena and returns its free pages; it costs a few
milliseconds, so it runs once per job, never per request. Elsewhere than glibc
(musl, macOS) it is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache
from typing import Any


@cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


def release_free_memory() -> bool:
    """Return the heap's free pages to the OS; True when glibc did so."""
    libc = _libc()
    return libc is not None and bool(libc.malloc_trim(0))
