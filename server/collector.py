"""Python's cyclic collector and what a server process imported at its start.

Importing the app (FastAPI, pydantic, numpy, faiss's wrappers, the routes and their
models) leaves ~90,000 container objects that live as long as the process. Each full
collection walks all of them: ~47 ms on this 2-core machine with the GIL held, so every
request in flight waits that long, and the collector runs one whenever enough new
objects have survived since the last (a stream of writes makes them). ``gc.freeze()``
moves the objects made so far out of its reach; they are still freed by reference
counting, only a cycle among them would never be collected, and the imports make none
that matter (a collection runs first).

Every start path calls :func:`freeze_imported` once the app is built and before the data
folder is opened, so the engine's own objects (collections, segments, replaced and
dropped as the data changes, some of them in cycles) stay collectable: the supervisor
before it forks its workers (the frozen objects also stay in the pages they share, ADR
0013), a single process before uvicorn starts, a restarted worker before it serves.
"""

from __future__ import annotations

import gc


def freeze_imported() -> int:
    """Collect, then freeze every object tracked so far; how many are now frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
