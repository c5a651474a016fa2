"""A score exactly equal to ``score_threshold``, in every place that applies one
(``server/engine/score_threshold.py``): a nearest search (``collection/search.py``), a
custom score (``recommend.py``), fusion and formula stages (``multistage.py``). Each
answer must equal qdrant-client's local mode, and the boundary point must be in or out
as local mode's rule says: out for a metric or custom score (strictly past, the metric
saying which side), in for a fused or formula score (``>=``)."""

from __future__ import annotations

from typing import Any

import pytest
from qdrant_client import QdrantClient, models

from tests.helpers.api import Api

# integer coordinates: every dot product and squared distance is exact in float32
POINTS = {1: [3.0, 0.0], 2: [2.0, 0.0], 3: [1.0, 0.0], 4: [0.0, 1.0], 5: [0.0, 2.0]}
NEAREST = [1.0, 0.0]


def _bodies() -> list[tuple[str, str, dict[str, Any], int, bool]]:
    """(case, distance, query body, boundary point, is it kept); the threshold of each is
    exactly the boundary point's score."""
    fused = {"prefetch": [{"query": NEAREST, "limit": 5}], "limit": 5}
    return [
        ("nearest dot", "Dot", {"query": NEAREST, "score_threshold": 2.0}, 2, False),
        ("nearest euclid", "Euclid", {"query": NEAREST, "score_threshold": 1.0}, 2, False),
        (
            "sum_scores",
            "Dot",
            {
                "query": {"recommend": {"positive": [[1.0, 0.0]], "strategy": "sum_scores"}},
                "score_threshold": 2.0,
            },
            2,
            False,
        ),
        (
            "formula",
            "Dot",
            fused | {"query": {"formula": "$score"}, "score_threshold": 2.0},
            2,
            True,
        ),
        ("rrf", "Dot", fused | {"query": {"fusion": "rrf"}, "score_threshold": 1 / 3}, 2, True),
    ]


def _quiver(api: Api, distance: str, body: dict[str, Any]) -> list[Any]:
    api.result("PUT", "/collections/t", {"vectors": {"size": 2, "distance": distance}})
    points = [{"id": i, "vector": v} for i, v in POINTS.items()]
    api.result("PUT", "/collections/t/points?wait=true", {"points": points})
    return [p["id"] for p in api.result("POST", "/collections/t/points/query", body)["points"]]


def _local(distance: str, body: dict[str, Any]) -> list[Any]:
    client = QdrantClient(":memory:")
    metric = models.Distance.DOT if distance == "Dot" else models.Distance.EUCLID
    client.create_collection("t", vectors_config=models.VectorParams(size=2, distance=metric))
    client.upsert("t", [models.PointStruct(id=i, vector=v) for i, v in POINTS.items()])
    request = models.QueryRequest.model_validate(body)
    answer = client.query_batch_points("t", [request])[0]
    return [point.id for point in answer.points]


@pytest.mark.parametrize(
    ("distance", "body", "boundary", "kept"),
    [case[1:] for case in _bodies()],
    ids=[case[0] for case in _bodies()],
)
def test_a_score_equal_to_the_threshold_is_treated_as_local_mode_does(
    api: Api, distance: str, body: dict[str, Any], boundary: int, kept: bool
) -> None:
    expected = _local(distance, body)
    assert (boundary in expected) == kept
    assert _quiver(api, distance, body) == expected
