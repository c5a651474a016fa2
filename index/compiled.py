"""Every numba kernel in ``index/``, compiled into numba's disk cache in one call.

The CLI's warm-up child process (``QUIVER_WARM_UP``) and ``make test`` run this, so that
neither the first query of its kind nor each test worker waits for a cold compile; the
server process itself imports numba only when a query first needs a kernel (ADR 0015).

``python -m index.compiled writable`` (or ``read-only``) compiles one writability of the
graph walk only (the grouped fill's kernel goes with ``writable``): ``make test`` runs the
two in parallel processes, each about half of a cold warm-up, then ``warm_up()`` once more,
which loads both from the cache and compiles again only what a race between the two
writers of numba's cache index may have dropped.
"""

from __future__ import annotations

import sys

WRITABILITIES = {"writable": (True,), "read-only": (False,)}


def warm_up(writabilities: tuple[bool, ...] = (True, False), grouped: bool = True) -> None:
    """The custom-score graph walk's kernels and the grouped fill's."""
    from index import graph_walk, group_top

    graph_walk.warm_up(writabilities)
    if grouped:
        group_top.warm_up()


def main(argv: list[str]) -> None:
    """Warm up the writabilities named on the command line (all when none is)."""
    chosen = tuple(flag for name in argv for flag in WRITABILITIES[name])
    warm_up(chosen or (True, False), grouped=not chosen or True in chosen)


if __name__ == "__main__":
    main(sys.argv[1:])
