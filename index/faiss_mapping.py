"""Reading a saved faiss HNSW index with its links, its codes, both or neither left in
the memory-mapped file it was read from.

faiss keeps an HNSW index's bulk in two ``MaybeOwnedVector`` arrays: the graph's links
(``hnsw.neighbors``) and the stored rows or codes (``storage.codes``, ``xb`` for binary
indexes). Read through a ``ZeroCopyIOReader`` with ``IO_FLAG_MMAP_IFC`` both are views
of the file; a plain ``deserialize_index`` copies both into the heap. faiss has no flag
for one of the two, so a split read takes the part to keep in the heap from a plain
read and hands it the mapped part (an HNSW struct assigned from a mapped index keeps the
view: ``MaybeOwnedVector``'s copy of a view is a view). The plain read costs a transient
heap copy of the index while loading; what stays is as asked.

Which part a backend maps is its params' business (Qdrant's ``on_disk``,
``hnsw_config.on_disk`` and ``always_ram``); this module only does what it is told and
says, per index, what is mapped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

from index.serialization import Buffer

_FAISS: Any = faiss


@dataclass(frozen=True, slots=True)
class Mapped:
    """Which bulk parts of a faiss HNSW index stay in the file: its links, its codes."""

    graph: bool = False
    codes: bool = False

    @property
    def any(self) -> bool:
        return self.graph or self.codes


def read_hnsw(blob: Buffer, mapped: Mapped, *, binary: bool = False) -> Any:
    """A faiss HNSW index (``IndexBinaryHNSW`` with ``binary``) from its serialised
    bytes, the ``mapped`` parts left in ``blob`` when it is a view of a memory-mapped file
    (the caller keeps ``blob`` alive as long as the index); otherwise all in the heap."""
    if not (mapped.any and isinstance(blob, memoryview)):
        return _plain(blob, binary)
    in_file = _zero_copy(blob, binary)
    if mapped.graph and mapped.codes:
        return in_file
    owned = _plain(blob, binary)
    if mapped.graph:  # codes owned, links the file's
        owned.hnsw = in_file.hnsw
        return owned
    in_file.hnsw = owned.hnsw  # codes the file's, links copied into the heap
    return in_file


def mapped_parts(index: Any, *, binary: bool = False) -> Mapped:
    """What of ``index`` is read in place from a file rather than held in the heap."""
    neighbors = index.hnsw.neighbors
    codes = _codes(index, binary)
    return Mapped(
        graph=neighbors.size() > 0 and not neighbors.is_owned,
        codes=codes.size() > 0 and not codes.is_owned,
    )


def _codes(index: Any, binary: bool) -> Any:
    if binary:
        return _FAISS.downcast_IndexBinary(index.storage).xb
    return _FAISS.downcast_index(index.storage).codes


def _plain(blob: Buffer, binary: bool) -> Any:
    data = np.frombuffer(blob, dtype=np.uint8)
    if binary:
        return _FAISS.deserialize_index_binary(data)
    return _FAISS.deserialize_index(data)


def _zero_copy(blob: memoryview, binary: bool) -> Any:
    data = np.frombuffer(blob, dtype=np.uint8)
    reader = _FAISS.ZeroCopyIOReader(_FAISS.swig_ptr(data), data.size)
    if binary:
        return _FAISS.read_index_binary(reader, _FAISS.IO_FLAG_MMAP_IFC)
    return _FAISS.read_index(reader, _FAISS.IO_FLAG_MMAP_IFC)
