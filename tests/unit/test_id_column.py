"""``IdColumn`` (a sealed segment's ids as arrays) answers as the list and dict it
replaced: the id of a row, the rows of an id, and scroll's sort keys."""

from __future__ import annotations

import uuid

import numpy as np

from server.engine.id_column import IdColumn
from server.engine.point_ids import PointId
from server.engine.segment import sort_key

UUIDS = [str(uuid.UUID(int=(n * 0x9E3779B97F4A7C15) << 40)) for n in range(1, 6)]
MIXED: list[PointId] = [5, UUIDS[0], 3, 2**64 - 1, UUIDS[1], 3, 0, UUIDS[2], UUIDS[0]]


def test_rows_read_back_the_ids_they_were_given() -> None:
    column = IdColumn(MIXED)
    assert [column[row] for row in range(len(MIXED))] == MIXED
    assert list(column) == MIXED
    assert column.take([3, 1, 0]) == [MIXED[3], MIXED[1], MIXED[0]]


def test_rows_of_an_id_are_every_row_holding_it_and_none_for_others() -> None:
    column = IdColumn(MIXED)
    for point_id in set(MIXED):
        expected = [row for row, held in enumerate(MIXED) if held == point_id]
        assert column.rows_of(point_id).tolist() == expected
    assert column.rows_of(4).tolist() == []
    assert column.rows_of(UUIDS[4]).tolist() == []
    assert IdColumn([1, 2]).rows_of(UUIDS[0]).tolist() == []


def test_sort_keys_match_the_point_id_order() -> None:
    column = IdColumn(MIXED)
    kind, hi, lo = column.sort_keys(np.arange(len(MIXED)))
    keys = list(zip(kind.tolist(), hi.tolist(), lo.tolist(), strict=True))
    assert keys == [sort_key(point_id) for point_id in MIXED]


def test_integer_ids_cost_about_twenty_bytes_a_row() -> None:
    column = IdColumn(list(range(10_000, 0, -1)))
    assert column.nbytes <= 20 * 10_000 + 64
    assert column.take([0, 9_999]) == [10_000, 1]


def test_ids_already_ascending_cost_eight_bytes_a_row_and_still_look_up() -> None:
    ids: list[PointId] = [0, 2, 2, 7, 9]
    column = IdColumn(ids)
    assert column.nbytes == 8 * len(ids)
    assert column.order.tolist() == [0, 1, 2, 3, 4]
    assert column.rows_of(2).tolist() == [1, 2]
    assert column.rows_of(3).tolist() == []
    rows, counts = column.int_rows([9, 2, 4])
    assert rows.tolist()[:2] == [4, 1]
    assert counts.tolist() == [1, 2, 0]


def test_a_column_gathered_from_sort_keys_is_the_column_of_those_ids() -> None:
    """A build gathers its rows' ids from its sources' columns as arrays (issue 24)."""
    first, second = IdColumn(MIXED), IdColumn([9, UUIDS[3], 1])
    rows = np.array([8, 0, 4, 2])
    joined = IdColumn.joined([first.sort_keys(rows), second.sort_keys(np.arange(3))])
    expected = [MIXED[8], MIXED[0], MIXED[4], MIXED[2], 9, UUIDS[3], 1]
    assert list(joined) == expected
    for point_id in set(expected):
        want = [row for row, held in enumerate(expected) if held == point_id]
        assert joined.rows_of(point_id).tolist() == want
    assert list(joined.subset(np.array([6, 1, 5, 0]))) == [1, 5, UUIDS[3], UUIDS[0]]
    assert list(joined.texts(chunk=2)) == [str(i) for i in expected]
    assert list(IdColumn.joined([])) == []
    ascending = IdColumn.joined([IdColumn([1, 2]).sort_keys(np.arange(2))])
    assert ascending.nbytes == 16  # integer ids in key order: no lookup arrays
