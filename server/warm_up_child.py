"""The warm-up child process (``QUIVER_WARM_UP``): it fills numba's disk cache with every
kernel (``index/compiled.py``) and dies with the server that started it.

A cold compile takes ~10 s on a quiet machine and minutes on a loaded one; a server
killed with ``kill -9`` must not leave it running, so the child asks the kernel for
SIGKILL when its parent goes (Linux's ``PR_SET_PDEATHSIG``; elsewhere it simply runs to
the end) and leaves at once if the parent was already gone before it asked.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <sys/prctl.h>


def main(parent: int) -> None:
    _die_with_parent(parent)
    from index.compiled import warm_up

    warm_up()


def _die_with_parent(parent: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the server died before the request above
        sys.exit(0)


if __name__ == "__main__":
    main(int(sys.argv[1]))
