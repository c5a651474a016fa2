"""How native thread pools share the CPUs in one process.

faiss runs its loops on OpenMP threads (and its own OpenMP-threaded OpenBLAS). numpy
ships a second OpenBLAS with a pthread pool whose threads keep spinning for a while
after each call. The two-stage backends alternate between them on every batch — a faiss
graph walk, then numpy's query projection and re-ranking — and on 2 cores each pool's
spinning threads slowed the other: a 100 x 384 by 384 x 96 product took 0.04 ms alone
and ~5 ms right after a faiss search, and LeanVec ran at 6.8k queries/s with numpy's
BLAS on 2 threads against 23.9k on 1 (HNSW 14k). numpy's products here are small, so
one thread loses nothing; faiss keeps every core.

Except for one query scanned exactly: faiss splits a single query's scan of the rows
over its OpenMP team, and waking the team costs more than it saves. On 2 cores one
query against 10,000 rows of 50 dimensions took 147 µs of wall time and 191 µs of CPU
on 2 threads against 52 µs on 1 (50,000 rows: 426 against 237 µs); two queries come out
about even (10,000 rows: 114 against 98 µs; 50,000: 297 against 466) and from four up the
team wins (152 against 197 µs). An appendable segment answers every plain query by such a
scan, so under a stream of writes every single query paid it twice over.

Setting the count is three calls per query, so they must be cheap: faiss's own wrappers
let go of the GIL on every call and then wait to take it back (~26 µs a call beside one
busy Python thread, ~1 µs through ``ctypes.PyDLL``, which keeps it). So the count is read
and set through faiss's OpenMP runtime itself, found by threadpoolctl.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import faiss
from threadpoolctl import ThreadpoolController


def single_threaded_numpy_blas() -> int:
    """Limit numpy's own BLAS (not faiss's) to one thread; returns how many libraries
    were limited. Call once per process, before the first search."""
    limited = 0
    for library in ThreadpoolController().lib_controllers:
        if library.user_api == "blas" and "numpy" in library.filepath:
            library.set_num_threads(1)
            limited += 1
    return limited


@contextmanager
def one_native_thread() -> Iterator[None]:
    """Run faiss's OpenMP loops inside the block on the calling thread alone.

    OpenMP keeps the thread count per calling thread (libgomp and LLVM's libomp alike
    give every thread outside a team its own copy), so concurrent searches on other
    threads, a batch among them, keep their whole team."""
    get_count, set_count = openmp_count()
    before = get_count()
    if before == 1:
        yield
        return
    set_count(1)
    try:
        yield
    finally:
        set_count(before)


@cache
def openmp_count() -> tuple[Callable[[], int], Callable[[int], None]]:
    """The calling thread's OpenMP count in faiss's runtime: its getter and setter,
    holding the GIL (see above); faiss's own wrappers where that runtime is not found
    or does not answer as faiss does."""
    fallback = (faiss.omp_get_max_threads, faiss.omp_set_num_threads)
    runtime = _faiss_openmp()
    if runtime is None:
        return fallback
    get_count, set_count = runtime.omp_get_max_threads, runtime.omp_set_num_threads
    get_count.restype, get_count.argtypes = ctypes.c_int, []
    set_count.restype, set_count.argtypes = None, [ctypes.c_int]
    before = faiss.omp_get_max_threads()
    set_count(before + 1)
    agrees = faiss.omp_get_max_threads() == before + 1 == get_count()
    faiss.omp_set_num_threads(before)
    return (get_count, set_count) if agrees else fallback


def _faiss_openmp() -> Any:
    """faiss's OpenMP library, already loaded with faiss, opened again without
    releasing the GIL on calls; None when threadpoolctl finds none that is faiss's."""
    for library in ThreadpoolController().lib_controllers:
        if library.user_api == "openmp" and "faiss" in library.filepath:
            try:
                return ctypes.PyDLL(library.filepath)
            except OSError:
                return None
    return None
