"""Every numba kernel in ``index/``, compiled into numba's disk cache in one call.

The CLI's warm-up child process (``QUIVER_WARM_UP``) and ``make test`` run this, so that
neither the first query of its kind nor each test worker waits for a cold compile; the
server process itself imports numba only when a query first needs a kernel (ADR 0015).
"""

from __future__ import annotations


def warm_up() -> None:
    """The custom-score graph walk's kernels and the grouped fill's."""
    from index import graph_walk, group_top

    graph_walk.warm_up()
    group_top.warm_up()
