"""The appendable segment's ragged token column: writes, overwrites, moves, repacking."""

from __future__ import annotations

import numpy as np

from index.metrics import Distance
from index.multivector import Ragged
from server.engine.segment import TokenColumn

DIM = 3


def sets(seed: int, lengths: list[int]) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, DIM)).astype(np.float32) for n in lengths]


def test_overwrites_and_moves_repack_to_the_rows_current_sets() -> None:
    column = TokenColumn(DIM, Distance.DOT)
    column.reserve(4)
    first = sets(0, [2, 3, 1, 4])
    column.write(np.arange(4), Ragged.from_arrays(first, DIM), np.ones(4, bool), 0)
    assert column.packed
    view = column.view(4)
    assert [len(view.item(i)) for i in range(4)] == [2, 3, 1, 4]
    replacement = sets(1, [5])
    column.write(np.array([1]), Ragged.from_arrays(replacement, DIM), np.ones(1, bool), 4)
    assert not column.packed
    column.move(3, 0)  # delete row 0: the last row moves into its place
    view = column.view(3)
    assert column.packed and column.used == 4 + 5 + 1
    expected = [first[3], replacement[0], first[2]]
    for row, tokens in enumerate(expected):
        np.testing.assert_array_equal(view.item(row), tokens)
        np.testing.assert_array_equal(column.row(row), tokens)
    assert column.present[:4].tolist() == [True, True, True, False]


def test_an_absent_set_is_an_empty_row() -> None:
    column = TokenColumn(DIM, Distance.DOT)
    column.reserve(2)
    items = [sets(2, [2])[0], np.zeros((0, DIM), np.float32)]
    column.write(np.arange(2), Ragged.from_arrays(items, DIM), np.array([True, False]), 0)
    view = column.view(2)
    assert view.lengths.tolist() == [2, 0] and column.present[:2].tolist() == [True, False]


def test_a_view_taken_before_a_repack_stays_valid() -> None:
    column = TokenColumn(DIM, Distance.DOT)
    column.reserve(2)
    items = sets(3, [2, 2])
    column.write(np.arange(2), Ragged.from_arrays(items, DIM), np.ones(2, bool), 0)
    before = column.view(2)
    column.write(np.array([0]), Ragged.from_arrays(sets(4, [1]), DIM), np.ones(1, bool), 2)
    column.view(2)  # repacks into new arrays
    np.testing.assert_array_equal(before.item(0), items[0])
    np.testing.assert_array_equal(before.item(1), items[1])
