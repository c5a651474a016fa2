"""glibc's arena cap and heap thresholds (``server/engine/native_memory.py``): taken unless
the operator set them."""

from __future__ import annotations

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
