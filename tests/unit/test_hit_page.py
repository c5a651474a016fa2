"""A batch's bare hits as columns (``results.HitPage``) and how they are written
(``render.py``, ``envelope.to_json``): the same hits and the same JSON as hit objects."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from server.api import render
from server.api.envelope import to_json
from server.engine.results import HitColumns, HitPage, ScoredPoint

COLUMNS = HitColumns(
    ids=[7, "b5a5e3a8-0f7c-4a5e-9a57-3cd3d1b0c3f1", 3, 12, 5],
    versions=[4, 0, 9, 2, 2],
    scores=np.array([0.9, 0.15, -1.5, 3e-8, 0.0], dtype=np.float32),
)


def hits(start: int, stop: int) -> list[ScoredPoint]:
    return [
        ScoredPoint(COLUMNS.ids[i], COLUMNS.versions[i], float(COLUMNS.scores[i]), None, None)
        for i in range(start, stop)
    ]


def test_a_page_reads_as_the_list_of_its_hits() -> None:
    page = HitPage(COLUMNS, 1, 4)
    expected = hits(1, 4)
    assert len(page) == 3
    assert list(page) == expected
    assert [page[i] for i in range(-3, 3)] == expected + expected
    assert page[1:] == expected[1:] and page[::-1] == expected[::-1]
    with pytest.raises(IndexError):
        page[3]
    assert list(HitPage(COLUMNS, 2, 2)) == [] and not HitPage(COLUMNS, 2, 2)


def test_a_page_is_written_as_its_hits_would_be() -> None:
    for start, stop in [(0, 5), (1, 4), (3, 3)]:
        page = HitPage(COLUMNS, start, stop)
        from_columns = render.scored_points(page)
        from_hits = render.scored_points(hits(start, stop))
        assert to_json(from_columns) == to_json(from_hits)
    assert b'"score":0.15,' in to_json(render.scored_points(HitPage(COLUMNS, 1, 2)))


def test_a_batch_of_pages_is_written_in_one_pass_as_page_by_page() -> None:
    pages = [HitPage(COLUMNS, 0, 2), HitPage(COLUMNS, 2, 2), HitPage(COLUMNS, 2, 5)]
    lists = render.scored_point_lists(pages)
    assert lists == [render.scored_points(page) for page in pages]
    other = HitColumns([1], [1], np.array([1.0], dtype=np.float32))
    mixed: list[object] = [pages[0], HitPage(other, 0, 1), hits(0, 1)]
    assert render.scored_point_lists(mixed) == [render.scored_points(p) for p in mixed]  # type: ignore[arg-type]


def test_keys_other_than_strings_are_still_written() -> None:
    assert to_json({"a": np.float32(0.5), 3: [np.int64(2)]}) == b'{"a":0.5,"3":[2]}'
    assert to_json({"a": 1}) == orjson.dumps({"a": 1})
    with pytest.raises(TypeError):
        to_json({"a": object()})
