"""live_rows: the batched id -> live row lookup grouped search reads payloads with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from server.engine.collection.row_lookup import live_rows
from server.engine.id_column import IdColumn
from server.engine.point_ids import PointId
from server.engine.segment_set import AnySegment


@dataclass
class _Segment:
    """What live_rows reads of a sealed segment: ids, live rows, the one-point lookup."""

    ids: IdColumn
    live: np.ndarray

    def live_mask(self) -> np.ndarray:
        return self.live

    def row_of(self, point_id: PointId) -> int | None:
        rows = [int(r) for r in self.ids.rows_of(point_id) if self.live[r]]
        return rows[0] if rows else None


def _segment(ids: list[PointId], dead: list[int]) -> AnySegment:
    live = np.ones(len(ids), dtype=bool)
    live[dead] = False
    return cast(AnySegment, _Segment(IdColumn(ids), live))


def _expected(
    segment: AnySegment, ids: list[PointId]
) -> tuple[list[tuple[PointId, int]], list[PointId]]:
    found = [(i, segment.row_of(i)) for i in ids]
    return [(i, r) for i, r in found if r is not None], [i for i, r in found if r is None]


def test_integer_ids_match_the_point_by_point_lookup() -> None:
    # row 1 (id 7) is a dead older copy of id 7, live again at row 4; id 9 is deleted
    segment = _segment([5, 7, 9, 2, 7, 11], dead=[1, 2])
    asked: list[PointId] = [7, 9, 11, 3, 2, 5, 100, 0]
    assert live_rows(segment, asked) == _expected(segment, asked)
    assert live_rows(segment, asked)[0] == [(7, 4), (11, 5), (2, 3), (5, 0)]


def test_uuid_and_mixed_ids_fall_back_to_row_of() -> None:
    uid = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"
    segment = _segment([1, uid, 3], dead=[2])
    asked: list[PointId] = [uid, 3, 1, "00000000-0000-0000-0000-000000000001"]
    assert live_rows(segment, asked) == ([(uid, 1), (1, 0)], [3, asked[3]])
