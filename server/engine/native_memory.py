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

What trimming also cannot return is the top chunk of a thread's arena: ``malloc_trim``
shrinks only the main heap's top, and a thread arena gives its top back only past the
trim threshold, which glibc raises to twice its mmap threshold (up to 64 MiB) the first
time a big mmapped block is freed. So the build worker's arena kept tens of megabytes
free but resident after a build, which a restart did not hold. The server therefore
fixes the two (:func:`fix_heap_thresholds`): blocks from 32 MiB up are mapped (glibc's
own ceiling for the dynamic threshold, so faiss's visited tables still come from the
heap), and a top over 8 MiB is given back. On GloVe-50 100k the growth after the build
went from 659 to 521 B a point (after a restart: 537 and 545), one run each.

A top under 8 MiB stays resident, though, and a one-off job in a thread leaves one: a
reader worker (ADR 0013) that loaded its 390k view in a pool thread kept ~6 MiB of free
top in that thread's arena in about half of its starts (private memory 38 or 44 MiB,
measured with ``malloc_info`` through gdb). So :func:`release_free_memory` first gives
back the top of the calling thread's arena: it lowers the trim threshold for a moment
and frees a block carved from the top, which makes glibc trim that arena (its
``heap_trim``; ``malloc_trim`` never does that for a thread's arena). Callers run it in
the thread that did the job, so the arena they reach is the job's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import cache
from typing import Any

MAX_ARENAS = 2
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 8 << 20
TOP_PROBE = MMAP_THRESHOLD - (1 << 20)
"""Under the mmap threshold, so it comes from the arena, and larger than any free block
a bin could hand out instead, so it comes from the top."""
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8  # mallopt's numbers (malloc.h)
_THRESHOLD_VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")


class _Thresholds:
    fixed = False
    """Whether glibc took this module's thresholds: only then does a top trim know what
    to set the trim threshold back to."""


@cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not hasattr(libc, "malloc_trim"):
        return None
    libc.malloc.restype = ctypes.c_void_p  # not ctypes' default int: a pointer is 64 bits
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    return libc


def release_free_memory() -> bool:
    """Return the calling thread's arena top (see above) and every arena's free pages to
    the OS; True when glibc did either."""
    libc = _libc()
    if libc is None:
        return False
    trimmed_top = _release_arena_top(libc)
    return bool(libc.malloc_trim(0)) or trimmed_top


def _release_arena_top(libc: Any) -> bool:
    """Make glibc trim the top of the calling thread's arena: with the trim threshold at
    0 for a moment, a block freed into the top gives all of it back. Only while this
    module's thresholds are in force (an operator's are left alone). Other threads that
    free meanwhile trim their tops too, which costs them nothing but a later page fault."""
    if not _Thresholds.fixed:
        return False
    libc.mallopt(_M_TRIM_THRESHOLD, 0)
    try:
        block = libc.malloc(TOP_PROBE)
        libc.free(block)
    finally:
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return bool(block)


def limit_heap_retention() -> bool:
    """Cap glibc's arenas (see above) unless the operator set ``MALLOC_ARENA_MAX``, and
    fix its thresholds (:func:`fix_heap_thresholds`); call before the process starts
    threads. True when glibc took the arena cap."""
    fix_heap_thresholds()
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, MAX_ARENAS))


def fix_heap_thresholds() -> bool:
    """Map blocks from ``MMAP_THRESHOLD`` up and give back a heap top over
    ``TRIM_THRESHOLD`` (see above), unless the operator set either through glibc's
    environment variables. True when glibc took both."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    if any(name in os.environ for name in _THRESHOLD_VARIABLES):
        return False
    mapped = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    _Thresholds.fixed = mapped and bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _Thresholds.fixed
