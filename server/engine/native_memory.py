"""Give freed heap memory back to the operating system after a big one-off job.

A segment build (in the build worker's thread) or a restart's reload allocates and
frees hundreds of megabytes: the graph's construction buffers, every stored point
read back from SQLite, the transient lists of a batch. glibc keeps such freed memory
in its per-thread arenas, so the process's anonymous memory stays near the job's peak
long after the job ended (issue 24 measured ~400 B a point of it on GloVe-50).
``malloc_trim(0)`` walks every arena and returns its free pages; it costs a few
milliseconds, so it runs once per job, never per request. Elsewhere than glibc
(musl, macOS) it is a no-op.

Trimming cannot return what glibc's arenas keep, so the server caps them before its
threads start (:func:`limit_heap_retention`): each thread that allocates (the build
worker, faiss's OpenMP threads, every thread of the request pool) would otherwise get
an arena of its own, up to 8 per core, each holding its free memory. With two arenas
the growth right after load and build on GloVe-50 390k went from 957 to 563 B a point
(one run each; at 100k runs scatter, 640-980), after a restart from 488 to 457-470 at
100k (bench/bench_memory.py, README "Memory per point"). A fixed mmap threshold
(128 KiB or 1 MiB) gained as much but no more, and would make every faiss search map and
unmap its visited table (one byte a point), so it is left to glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import cache
from typing import Any

MAX_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)


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


def limit_heap_retention() -> bool:
    """Cap glibc's arenas (see above) unless the operator set ``MALLOC_ARENA_MAX``;
    call before the process starts threads. True when glibc took it."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, MAX_ARENAS))
