"""A growable matrix in a memory-mapped scratch file: rows of an ``on_disk`` vector that
no segment file holds yet (the appendable tail, exact segments sealed from it).

Qdrant keeps an ``on_disk`` vector's rows in mmap'ed storage from the first write. Here
the point store (the log) stays the truth, and these rows are only a copy that must not
sit in the heap: an unlinked file in the collection's folder (``O_TMPFILE`` where the
file system has it), mapped shared and read-write, so the kernel writes dirty pages back
to the disk and may drop clean ones under memory pressure. Nothing of it outlives the
process: a restart rebuilds these rows from the point store, a crash leaves no file.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from pathlib import Path

import numpy as np


class MappedMatrix:
    """``(capacity, width)`` rows of ``dtype`` in a scratch file; ``resize`` grows the
    file and maps it again (rows kept, new ones zero), so views taken before a resize
    must not be written to after it."""

    def __init__(self, folder: Path, width: int, dtype: np.dtype, capacity: int) -> None:
        # open as long as the matrix lives: the mapping is its only reason to exist
        self._file = tempfile.TemporaryFile(dir=folder, prefix=".rows-")  # noqa: SIM115
        self.width = width
        self.dtype = np.dtype(dtype)
        self.array = np.zeros((0, width), dtype=self.dtype)
        self.resize(capacity)

    def resize(self, capacity: int) -> np.ndarray:
        """The rows, now ``capacity`` of them (the file only ever grows)."""
        row_bytes = self.width * self.dtype.itemsize
        size = max(capacity * row_bytes, mmap.PAGESIZE)  # an empty mapping is refused
        os.ftruncate(self._file.fileno(), max(size, self._size()))
        mapped = mmap.mmap(self._file.fileno(), size)
        rows = np.frombuffer(mapped, dtype=self.dtype, count=capacity * self.width)
        self.array = rows.reshape(capacity, self.width)
        return self.array

    def _size(self) -> int:
        return os.fstat(self._file.fileno()).st_size

    @classmethod
    def holding(cls, folder: Path, rows: np.ndarray) -> np.ndarray:
        """A mapped copy of ``rows`` (the heap copy can then be dropped)."""
        matrix = cls(folder, rows.shape[1], rows.dtype, len(rows))
        matrix.array[:] = rows
        return matrix.array[: len(rows)]


def is_mapped(array: np.ndarray) -> bool:
    """Whether ``array``'s memory is a view of a memory-mapped file."""
    base: object = array
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    return isinstance(base, mmap.mmap)
