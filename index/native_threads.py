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
on 2 threads against 52 µs on 1 (50,000 rows: 426 against 237 µs); from two queries up
the team breaks even or wins. An appendable segment answers every plain query by such a
scan, so under a stream of writes every single query paid it twice over.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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
    before = faiss.omp_get_max_threads()
    if before == 1:
        yield
        return
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
