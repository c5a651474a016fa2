"""``on_disk: true`` payload indexes answer exactly as the in-memory ones, and hold their
postings / values in file maps, not on the heap.

Both are built from the same payloads, then given the same appends, swap-removes and
edits (an appendable or sealed segment's life): entries, row flags, bounds of random
filters, facet counts and ordered reads must be equal throughout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.engine import payload_index, payload_index_disk
from server.engine.payload_index import PayloadIndexes, make_field_index
from server.engine.payload_index_disk import DISK_TYPES, mapped_bytes
from tests.property import test_payload_index_consistency as base

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

DISK_SCHEMA = {
    field: {"type": kind, "on_disk": True}
    for field, kind in base.SCHEMA.items()
    if kind in DISK_TYPES
}


def same_answers(disk: PayloadIndexes, memory: PayloadIndexes, rows: list[dict[str, Any]]) -> None:
    everything = np.ones(len(rows), dtype=bool)
    odd = np.arange(len(rows)) % 2 == 1
    for field in base.SCHEMA:
        base.same_index(disk.fields[field], memory.fields[field])
        on_disk, in_memory = disk.fields[field], memory.fields[field]
        for selected in (everything, odd):
            assert on_disk.value_counts(selected) == in_memory.value_counts(selected)
        for start in (None, 0, 1.5):
            for descending in (False, True):
                got = on_disk.ordered(start, descending)
                want = in_memory.ordered(start, descending)
                assert (got is None) == (want is None)
                if got is not None and want is not None:
                    assert got[0].tolist() == want[0].tolist()
                    pairs = zip(*map(list, got), strict=True)
                    assert sorted(pairs) == sorted(zip(*map(list, want), strict=True))
    for probe in base.PROBES:
        assert disk.bounds(probe, len(rows)) == memory.bounds(probe, len(rows))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    initial=st.lists(base.payloads, max_size=12),
    ops=base.operations,
    raw_filters=st.lists(base.random_filters, max_size=3),
    spill_at=st.sampled_from([2, 4096]),
)
def test_on_disk_indexes_answer_as_the_in_memory_ones(
    initial: list[dict[str, Any]],
    ops: list[tuple[Any, ...]],
    raw_filters: list[dict[str, Any]],
    spill_at: int,
) -> None:
    with (
        mock.patch.multiple(payload_index, _PENDING_SCAN=2, _COMPACT_AT=3),
        mock.patch.object(payload_index_disk, "_SPILL_AT", spill_at),
    ):
        disk = PayloadIndexes({**base.SCHEMA, **DISK_SCHEMA})
        memory = PayloadIndexes(base.SCHEMA)
        rows = list(initial)
        disk.build(rows)
        memory.build(rows)
        same_answers(disk, memory, rows)
        for op in ops:
            if op[0] != "query":
                base.apply(disk, list(rows), op)
                base.apply(memory, rows, op)
        same_answers(disk, memory, rows)
        for raw in raw_filters:
            flt = base.parse(raw)
            assert disk.bounds(flt, len(rows)) == memory.bounds(flt, len(rows))


SAMPLES: dict[str, Callable[[int], Any]] = {
    "keyword": lambda i: f"tenant-{i % 500}",
    "uuid": lambda i: f"00000000-0000-0000-0000-{i % 500:012d}",
    "bool": lambda i: i % 3 == 0,
    "integer": lambda i: i,
    "float": lambda i: i / 7,
    "datetime": lambda i: f"2024-01-01T00:00:{i % 60:02d}Z",
    "text": lambda i: f"word{i % 500} and shared words",
}


@pytest.mark.parametrize("kind", sorted(DISK_TYPES))
def test_an_on_disk_index_keeps_its_postings_off_the_heap(kind: str) -> None:
    rows = [{"x": SAMPLES[kind](i)} for i in range(20_000)]
    disk = make_field_index("x", {"type": kind, "on_disk": True})
    memory = make_field_index("x", kind)
    disk.build(rows)
    memory.build(rows)
    assert disk.entries() == memory.entries()
    assert mapped_bytes(*vars(disk).values()) >= 20_000 * 8  # the rows at least
    arrays = [value for value in vars(disk).values() if _big_array(value)]
    assert arrays and all(isinstance(array, np.memmap) for array in arrays)
    # what stays on the heap: the row flags (compressed bitmaps) and an empty delta
    assert disk.memory_bytes() < memory.memory_bytes() / 4


def _big_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.nbytes > 4096


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("b", [True, True]),
        ("k", ["a", "a", "b"]),
        ("u", [f"{'0' * 8}-0000-0000-0000-{'0' * 12}"] * 2),
    ],
)
def test_a_value_repeated_in_one_array_is_one_posting(field: str, values: list[Any]) -> None:
    """Hypothesis found it: the bulk maps listed ``[true, true]`` twice for one row."""
    rows = [{field: values}, {field: values[:1]}]
    disk = PayloadIndexes({**base.SCHEMA, **DISK_SCHEMA})
    memory = PayloadIndexes(base.SCHEMA)
    disk.build(rows)
    memory.build(rows)
    same_answers(disk, memory, rows)
