"""Whether this process leaves sealed segments' HNSW graphs in their files.

A single server process copies a graph into its own memory when it loads a segment,
unless the vector is ``on_disk`` (today's behaviour, unchanged). With several worker
processes (``QUIVER_WORKERS`` > 1, ADR 0013) every worker, the owner included, maps the
graph's rows and links from the segment file instead (``HnswIndex.from_bytes(mapped=
True)``): the page cache holds the one copy all of them read, where copies would cost
a full index per worker. The supervisor switches it on once, before it forks, so every
worker (restarted ones too) inherits it.
"""

from __future__ import annotations

from index.registry import AnyIndex, index_from_bytes
from index.serialization import Buffer


class _Switch:
    on = False


def share_graphs(on: bool = True) -> None:
    """Map every sealed HNSW graph from its file from now on (``False``: copy again)."""
    _Switch.on = on


def graphs_shared() -> bool:
    return _Switch.on


def load_index(blob: Buffer) -> AnyIndex:
    """A saved index, its HNSW graph left in the file while graphs are shared."""
    return index_from_bytes(blob, map_graph=_Switch.on)
