"""The single-node API scenario, replayed on a collection created with ``shard_number: 3``.

Every test of ``test_points``, ``test_query``, ``test_bad_input`` and ``test_collections``
that runs on the ``collection`` fixture is collected here again, with that fixture
creating the same ten points in a sharded collection: the shards run inside the server
(no Ray; the Ray variant is ``tests/cluster/test_sharded_http.py``). So every answer the
single-node tests assert — hits, scores, payloads, pages, counts, errors that change
nothing — is asserted for the fan-out too.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from tests.api import test_bad_input, test_collections, test_points, test_query
from tests.api.conftest import Api, create_items

SHARDS = 3


def replayed_tests(*modules: Any) -> dict[str, Any]:
    """The ``collection``-fixture tests of ``modules``, keyed ``<module>__<test>``."""
    found = {}
    for module in modules:
        short = module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
        for name, func in vars(module).items():
            if name.startswith("test_") and "collection" in inspect.signature(func).parameters:
                found[f"test_{short}__{name.removeprefix('test_')}"] = func
    return found


REPLAYED = replayed_tests(test_points, test_query, test_bad_input, test_collections)
globals().update(REPLAYED)


@pytest.fixture
def collection(api: Api) -> str:
    """``tests/api/conftest.py``'s ten points, in three shards."""
    return create_items(api, shard_number=SHARDS)


def test_the_scenario_is_replayed() -> None:
    assert len(REPLAYED) >= 25


def test_points_are_spread_over_the_shards(api: Api, collection: str) -> None:
    info = api.result("GET", f"/collections/{collection}")
    assert info["config"]["params"]["shard_number"] == SHARDS
    assert info["points_count"] == 10
    counts = [shard["points_count"] for shard in info["shards"]]
    # The id hash happens to leave one shard empty with these ten ids, so the replayed
    # tests also cover a shard with nothing to answer.
    assert sorted(counts) == [0, 3, 7]


def test_snapshots_of_sharded_collections_are_refused(api: Api, collection: str) -> None:
    status, answer = api.post(f"/collections/{collection}/snapshots")
    assert status == 400
    assert "sharded" in answer["status"]["error"]


@pytest.mark.parametrize(
    ("extra", "code", "words"),
    [
        ({"shard_number": 65}, 422, "shard_number"),
        ({"sharding_method": "custom"}, 400, "sharding_method"),
    ],
)
def test_unsupported_sharding_is_refused(
    api: Api, extra: dict[str, Any], code: int, words: str
) -> None:
    body = {"vectors": {"size": 4, "distance": "Dot"}} | extra
    status, answer = api.put("/collections/other", body)
    assert status == code and words in answer["status"]["error"]
    assert api.result("GET", "/collections") == {"collections": []}
