"""glibc's arena cap and heap thresholds (``server/engine/native_memory.py``): taken unless
the operator set them."""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import pytest

from server.engine import native_memory


@pytest.mark.skipif(native_memory._libc() is None, reason="not glibc: nothing to cap")
def test_the_arena_cap_is_taken_by_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert native_memory.limit_heap_retention() is True


def test_an_operators_malloc_arena_max_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert native_memory.limit_heap_retention() is False


@pytest.mark.skipif(native_memory._libc() is None, reason="not glibc: nothing to fix")
def test_the_heap_thresholds_are_fixed_unless_the_operator_set_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in native_memory._THRESHOLD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert native_memory.fix_heap_thresholds() is True
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert native_memory.fix_heap_thresholds() is False


def _resident_kib_over(start: int, end: int) -> int:
    """Resident KiB of the mappings that overlap ``[start, end)`` (an arena's heap, which
    glibc's growth and trimming may split into several mappings)."""
    total, overlapping = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and not fields[0].endswith(":"):
            low, high = (int(bound, 16) for bound in fields[0].split("-"))
            overlapping = low < end and start < high
        elif overlapping and fields[0] == "Rss:":
            total += int(fields[1])
    return total


@pytest.mark.skipif(native_memory._libc() is None, reason="not glibc: no arenas to trim")
def test_a_threads_free_arena_top_is_given_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """A job's buffers freed into its thread's arena top (under the 8 MiB trim threshold,
    so glibc keeps them) stop being resident once the thread releases free memory:
    ``malloc_trim`` alone leaves a thread arena's top as it is."""
    for name in native_memory._THRESHOLD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert native_memory.fix_heap_thresholds() is True
    libc = native_memory._libc()
    size = 6 << 20
    resident: dict[str, int] = {}

    def job() -> None:
        native_memory.release_free_memory()
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)  # the job's buffers: every page touched
        libc.free(block)
        resident["before"] = _resident_kib_over(block, block + size)
        native_memory.release_free_memory()
        resident["after"] = _resident_kib_over(block, block + size)

    worker = threading.Thread(target=job)
    worker.start()
    worker.join()
    assert resident["before"] - resident["after"] >= (size >> 10) * 3 // 4, resident
