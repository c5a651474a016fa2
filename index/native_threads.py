"""How native thread pools share the CPUs in one process.

faiss runs its loops on OpenMP threads (and its own OpenMP-threaded OpenBLAS). numpy
ships a second OpenBLAS with a pthread pool whose threads keep spinning for a while
after each call. The two-stage backends alternate between them on every batch — a faiss
graph walk, then numpy's query projection and re-ranking — and on 2 cores each pool's
spinning threads slowed the other: a 100 x 384 by 384 x 96 product took 0.04 ms alone
and ~5 ms right after a faiss search, and LeanVec ran at 6.8k queries/s with numpy's
BLAS on 2 threads against 23.9k on 1 (HNSW 14k). numpy's products here are small, so
one thread loses nothing; faiss keeps every core.
"""

from __future__ import annotations

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
