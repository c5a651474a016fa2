"""Service and operations endpoints in Qdrant 1.19's shapes, each checked with
qdrant-client's own REST models and against a collection whose contents are known:
``/``, the probes, ``/telemetry``, ``/cluster``, ``/collections/{c}/cluster``,
``/collections/{c}/optimizations``, ``/issues`` and Qdrant's names on ``/metrics``."""

from __future__ import annotations

import os
import sys
import time
from importlib.metadata import version
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from qdrant_client.common.version_check import is_compatible
from qdrant_client.http import models

from server.api import host_telemetry
from server.cluster.shards import shard_of
from server.engine import build_worker, unindexed_fields
from server.engine.collection import Collection
from tests.helpers.api import Api, create_items, wait_green


def scrape(api: Api) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = api.client.get("/metrics").text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def indexed(api: Api, name: str = "built", points: int = 300) -> str:
    """A collection whose first ``points`` points were sealed and indexed by a build job."""
    body = {
        "vectors": {"size": 4, "distance": "Dot"},
        "optimizers_config": {"indexing_threshold": 100},
    }
    api.result("PUT", f"/collections/{name}", body)
    rng = np.random.default_rng(7)
    batch = [{"id": i, "vector": rng.random(4).tolist()} for i in range(points)]
    api.result("PUT", f"/collections/{name}/points?wait=true", {"points": batch})
    wait_green(api, name)
    return name


# -- version and probes -------------------------------------------------------


def test_root_is_qdrant_version_info_that_qdrant_client_accepts(api: Api) -> None:
    answer = api.client.get("/").json()
    info = models.VersionInfo.model_validate(answer)
    assert info.title.startswith("quiver")
    assert is_compatible(version("qdrant-client"), info.version)
    assert answer["quiver_version"]


def test_probes_answer_qdrants_plain_text_bodies(api: Api) -> None:
    for path, body in [
        ("/healthz", "healthz check passed"),
        ("/livez", "healthz check passed"),
        ("/readyz", "all shards are ready"),
    ]:
        response = api.client.get(path)
        assert (response.status_code, response.text) == (200, body)
        assert response.headers["content-type"].startswith("text/plain")


# -- telemetry ------------------------------------------------------------------


def test_telemetry_levels_parse_and_report_the_collection(api: Api, collection: str) -> None:
    for level in range(4):
        answer = api.result("GET", f"/telemetry?details_level={level}")
        telemetry = models.TelemetryData.model_validate(answer)
        assert telemetry.collections.number_of_collections == 1
    assert api.result("GET", "/telemetry")["collections"]["collections"] is None
    summary = api.result("GET", "/telemetry?details_level=1")["collections"]["collections"][0]
    assert summary["vectors"] == 10
    full = api.result("GET", "/telemetry?details_level=2")["collections"]["collections"][0]
    assert full["id"] == collection
    assert full["config"]["params"]["vectors"] == {"size": 4, "distance": "Dot"}
    [shard] = full["shards"]
    assert shard["local"]["num_points"] == 10
    assert shard["local"]["num_vectors_by_name"] == {"": 10}
    assert shard["replicate_states"] == {"0": "Active"}


def test_telemetry_counts_rest_responses_by_route_template_and_status(
    api: Api, collection: str
) -> None:
    query = {"query": [1.0, 0.0, 0.0, 0.0], "limit": 3}
    for _ in range(3):
        api.result("POST", f"/collections/{collection}/points/query", query)
    api.call("POST", "/collections/missing/points/query", query)
    responses = api.result("GET", "/telemetry")["requests"]["rest"]["responses"]
    route = responses["POST /collections/{name}/points/query"]
    assert (route["200"]["count"], route["200"]["fail_count"]) == (3, 0)
    assert (route["404"]["count"], route["404"]["fail_count"]) == (1, 1)
    assert 0 < route["200"]["min_duration_micros"] <= route["200"]["max_duration_micros"]
    stats = models.OperationDurationStatistics.model_validate(route["200"])
    assert stats.total_duration_micros is not None and stats.total_duration_micros > 0


def test_telemetry_anonymize_hides_collection_names(api: Api, collection: str) -> None:
    answer = api.result("GET", "/telemetry?details_level=2&anonymize=true")
    [entry] = answer["collections"]["collections"]
    assert entry["id"] != collection
    assert collection not in str(answer["collections"])


def test_telemetry_refuses_a_negative_details_level(api: Api) -> None:
    status, answer = api.get("/telemetry?details_level=-1")
    assert status == 422, answer


# -- cluster --------------------------------------------------------------------


def test_cluster_is_disabled_as_qdrant_without_distributed_mode(api: Api) -> None:
    answer = api.result("GET", "/cluster")
    assert models.ClusterStatusOneOf.model_validate(answer).status == "disabled"


def test_collection_cluster_of_a_single_node_collection_is_one_active_shard(
    api: Api, collection: str
) -> None:
    info = models.CollectionClusterInfo.model_validate(
        api.result("GET", f"/collections/{collection}/cluster")
    )
    assert info.shard_count == 1
    assert [(s.shard_id, s.points_count, s.state) for s in info.local_shards] == [
        (0, 10, models.ReplicaState.ACTIVE)
    ]
    assert info.remote_shards == [] and info.shard_transfers == []


def test_collection_cluster_of_a_sharded_collection_counts_each_shards_points(api: Api) -> None:
    create_items(api, shard_number=3)
    info = models.CollectionClusterInfo.model_validate(
        api.result("GET", "/collections/items/cluster")
    )
    expected = [sum(1 for i in range(1, 11) if shard_of(i, 3) == s) for s in range(3)]
    assert info.shard_count == 3
    assert [s.points_count for s in info.local_shards] == expected
    assert {s.state for s in info.local_shards} == {models.ReplicaState.ACTIVE}


def test_collection_cluster_of_a_missing_collection_is_404(api: Api) -> None:
    assert api.get("/collections/missing/cluster")[0] == 404


# -- optimizations --------------------------------------------------------------


def test_optimizations_report_finished_builds_and_idle_segments(api: Api) -> None:
    name = indexed(api)
    path = f"/collections/{name}/optimizations?with=queued,completed,idle_segments"
    answer = models.OptimizationsResponse.model_validate(api.result("GET", path))
    assert answer.running == [] and answer.queued == []
    assert answer.summary.queued_optimizations == 0
    assert answer.completed
    build = next(o for o in answer.completed if o.optimizer == "indexing")
    assert build.status == models.TrackerStatusOneOf.DONE
    assert sum(s.points_count for s in build.segments) == build.progress.total
    assert build.progress.done == build.progress.total
    segments = api.result("GET", f"/collections/{name}/segments")
    assert answer.summary.idle_segments == len(segments)
    assert sorted(s.points_count for s in answer.idle_segments or []) == sorted(
        s["points"] for s in segments
    )
    assert sum(s["points"] for s in segments) == 300


def test_optimizations_without_with_leave_the_optional_lists_out(api: Api, collection: str) -> None:
    answer = api.result("GET", f"/collections/{collection}/optimizations")
    assert set(answer) == {"summary", "running"}
    limited = api.result(
        "GET", f"/collections/{collection}/optimizations?with=completed&completed_limit=0"
    )
    assert limited["completed"] == []


def test_optimizations_refuse_an_unknown_with_value(api: Api, collection: str) -> None:
    status, answer = api.get(f"/collections/{collection}/optimizations?with=queued,everything")
    assert status == 400
    assert "everything" in answer["status"]["error"]


# -- issues ---------------------------------------------------------------------


def test_issues_list_is_empty_while_nothing_is_wrong(api: Api, collection: str) -> None:
    assert api.result("GET", "/issues") == {"issues": []}
    assert api.result("DELETE", "/issues") is True


def test_too_many_sparse_collections_is_an_issue_until_cleared(api: Api) -> None:
    body = {"vectors": {"size": 2, "distance": "Dot"}}
    for i in range(31):
        api.result("PUT", f"/collections/c{i}", body)
    [issue] = api.result("GET", "/issues")["issues"]
    assert issue["id"] == "/TOO_MANY_COLLECTIONS"
    assert set(issue) == {"id", "description", "solution", "timestamp"}
    assert "refactor" in issue["solution"]
    assert api.result("GET", "/issues")["issues"] == [issue]  # first seen, not re-stamped
    assert api.result("DELETE", "/issues") is True
    assert api.result("GET", "/issues")["issues"] == []
    api.result("DELETE", "/collections/c0")
    assert api.result("GET", "/issues")["issues"] == []  # the condition ended
    api.result("PUT", "/collections/c0", body)
    assert [i["id"] for i in api.result("GET", "/issues")["issues"]] == ["/TOO_MANY_COLLECTIONS"]


def test_a_collection_whose_builds_failed_for_good_is_an_issue(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Collection, "run_task", broken)
    monkeypatch.setattr(build_worker, "RETRY_BASE_S", 0.01)
    name = "broken"
    body = {
        "vectors": {"size": 4, "distance": "Dot"},
        "optimizers_config": {"indexing_threshold": 10},
    }
    api.result("PUT", f"/collections/{name}", body)
    batch = [{"id": i, "vector": [float(i), 1, 0, 0]} for i in range(30)]
    api.result("PUT", f"/collections/{name}/points?wait=true", {"points": batch})
    deadline = time.monotonic() + 30
    while api.result("GET", f"/collections/{name}")["status"] != "red":
        assert time.monotonic() < deadline, "the collection never turned red"
        time.sleep(0.05)
    [issue] = api.result("GET", "/issues")["issues"]
    assert issue["id"] == f"/{name}/OPTIMIZATION_FAILED"
    assert "disk on fire" in issue["description"]


# -- metrics under Qdrant's names ------------------------------------------------


def test_metrics_carry_qdrants_names_with_true_values(api: Api, collection: str) -> None:
    api.result("POST", f"/collections/{collection}/points/query", {"query": [1, 0, 0, 0]})
    samples = scrape(api)

    def value(metric: str, **labels: str) -> float:
        return samples[(metric, frozenset(labels.items()))]

    assert value("collections_total") == 1
    assert value("collections_vector_total") == 10
    assert value("collection_points", id=collection) == 10
    assert value("collection_vectors", collection=collection, vector="") == 10
    assert value("cluster_enabled") == 0
    assert value("app_info", name="quiver", version=version("quiver")) == 1
    labels = {"method": "POST", "endpoint": "/collections/{name}/points/query", "status": "200"}
    assert value("rest_responses_total", **labels) == 1
    assert value("rest_responses_fail_total", **labels) == 0
    assert value("rest_responses_avg_duration_seconds", **labels) > 0
    assert value("quiver_collection_points", collection=collection) == 10  # Quiver's own stay


def test_collections_vector_total_counts_points_holding_each_named_vector(api: Api) -> None:
    body = {
        "vectors": {"dense": {"size": 2, "distance": "Dot"}},
        "sparse_vectors": {"words": {}},
    }
    api.result("PUT", "/collections/mixed", body)
    points: list[dict[str, Any]] = [
        {"id": 1, "vector": {"dense": [1, 0], "words": {"indices": [1], "values": [1.0]}}},
        {"id": 2, "vector": {"dense": [0, 1]}},
    ]
    api.result("PUT", "/collections/mixed/points?wait=true", {"points": points})
    samples = scrape(api)
    assert (
        samples[("collection_vectors", frozenset({("collection", "mixed"), ("vector", "dense")}))]
        == 2
    )
    assert (
        samples[("collection_vectors", frozenset({("collection", "mixed"), ("vector", "words")}))]
        == 1
    )
    assert samples[("collections_vector_total", frozenset())] == 3


# -- host telemetry and paths ----------------------------------------------------


def test_telemetry_system_reports_this_hosts_cores_memory_and_disk(api: Api) -> None:
    answer = api.result("GET", "/telemetry?details_level=1")
    system = models.TelemetryData.model_validate(answer).app.system
    assert system is not None
    assert system.cores == host_telemetry.usable_cores()
    assert 1 <= system.cores <= (os.cpu_count() or 1)
    assert system.ram_size == host_telemetry.usable_memory_bytes() // 1024
    assert system.ram_size > 64 * 1024  # more than 64 MiB, in KiB
    assert system.disk_size is not None and system.disk_size > 0
    assert system.cpu_endian is not None and system.cpu_endian.value == sys.byteorder
    assert "system" not in api.result("GET", "/telemetry")["app"]  # level 0: counts only


@pytest.mark.parametrize("path", ["/collections/", "/collections/items/", "/aliases/"])
def test_a_trailing_slash_is_an_unknown_route_as_in_qdrant(
    api: Api, collection: str, path: str
) -> None:
    response = api.client.get(path, follow_redirects=False)
    assert response.status_code == 404
    assert response.json()["status"] == {"error": f"Not found: GET {path}"}


def test_a_slow_search_filtering_an_unindexed_key_is_an_issue_until_indexed(
    api: Api, collection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Qdrant's ``UnindexedField`` issue, with its ready-made index request."""
    query = {
        "query": [1.0, 0.0, 0.0, 0.0],
        "filter": {"must": [{"key": "city", "match": {"value": "Berlin"}}]},
    }
    api.result("POST", f"/collections/{collection}/points/query", query)
    assert api.result("GET", "/issues")["issues"] == []  # fast: under Qdrant's 300 ms
    monkeypatch.setattr(unindexed_fields, "SLOW_SEARCH_S", -1.0)  # every search is slow
    api.result("POST", f"/collections/{collection}/points/query", query)
    [issue] = api.result("GET", "/issues")["issues"]
    assert issue["id"] == f"{collection}/UNINDEXED_FIELD/city"
    assert issue["description"] == (
        f"Unindexed field 'city' is slowing down queries in collection '{collection}'"
    )
    action = issue["solution"]["immediate"]["action"]
    assert (action["method"], action["uri"]) == ("PUT", f"/collections/{collection}/index")
    assert action["body"] == {"field_name": "city", "field_schema": "keyword"}
    api.result("PUT", f"/collections/{collection}/index?wait=true", action["body"])
    assert api.result("GET", "/issues")["issues"] == []  # solved by the index


def test_a_range_on_an_unindexed_key_offers_a_choice_of_index_types(
    api: Api, collection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unindexed_fields, "SLOW_SEARCH_S", -1.0)
    flt = {"must": [{"key": "n", "range": {"gte": 3}}, {"is_empty": {"key": "tags"}}]}
    api.result(
        "POST", f"/collections/{collection}/points/query", {"query": [1.0] * 4, "filter": flt}
    )
    [issue] = api.result("GET", "/issues")["issues"]  # is_empty suggests no index
    choice = issue["solution"]["immediate_choice"]
    assert [c["action"]["body"]["field_schema"] for c in choice] == ["float", "integer"]
    assert api.result("DELETE", "/issues") is True
    assert api.result("GET", "/issues")["issues"] == []
