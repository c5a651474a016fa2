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
import time
from pathlib import Path
from typing import Any

import pytest

from tests.api import test_bad_input, test_collections, test_points, test_query
from tests.helpers import indexing
from tests.helpers.api import Api, create_items, make_client, wait_green
from tests.helpers.api import upsert_vectors as upsert
from tests.helpers.data import out_of_distribution

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


def test_snapshots_of_sharded_collections_are_taken(api: Api, collection: str) -> None:
    """A bundle of the shards' snapshots (round trips: test_shard_and_full_snapshots.py)."""
    description = api.result("POST", f"/collections/{collection}/snapshots")
    assert api.result("GET", f"/collections/{collection}/snapshots") == [description]


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


def test_training_queries_reach_every_shard_and_retrain_it(api: Api) -> None:
    """LeanVec-OOD on a sharded collection: each shard learns from the uploaded sample."""
    data, train, _ = out_of_distribution()
    body = {
        "vectors": {"size": 64, "distance": "Dot"},
        "shard_number": 2,
        "optimizers_config": {"indexing_threshold": 300},
        "index": {"type": "leanvec", "dims": 16, "variant": "ood"},
    }
    api.result("PUT", "/collections/ood", body)
    upsert(api, "ood", data[:1000])
    # each shard's first build done first: a build still queued when the queries arrive
    # trains on them at once, and that shard never needs a rebuild (a flake under load)
    wait_green(api, "ood")
    path = "/collections/ood/leanvec/training-queries"
    answer = api.result("POST", path, {"vectors": train[:200].tolist()})
    assert answer == {"vector": "", "training_queries": 200, "retraining": True}
    assert api.result("GET", path)[""]["given"] == 200
    wait_green(api, "ood")
    info = api.result("GET", "/collections/ood")
    assert info["config"]["index"]["training_generation"] == 1
    jobs = api.result("GET", "/collections/ood/jobs")
    rebuilt = {job["shard"] for job in jobs if job["kind"] == "rebuild"}
    assert rebuilt == {0, 1}


def test_each_shard_seals_its_idle_tail(tmp_path: Path) -> None:
    """The server's ``idle_seal_s`` reaches the shard engines: after the writes stop,
    every shard indexes its exact-search tail (≥ a quarter of the threshold)."""
    with make_client(tmp_path, idle_seal_s=0.2) as client:
        api = Api(client)
        indexing.create(api, "tail", threshold=200, shard_number=2)
        indexing.upsert(api, "tail", indexing.data(700))  # ~350 a shard: one seal, a tail
        deadline = time.monotonic() + 30
        while wait_green(api, "tail")["indexed_vectors_count"] < 700:
            assert time.monotonic() < deadline, api.result("GET", "/collections/tail/segments")
            time.sleep(0.1)
