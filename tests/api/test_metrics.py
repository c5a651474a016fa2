"""``GET /metrics``: Prometheus text with request, planner, build and collection metrics."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.api import Api, make_client, wait_green


def scrape(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_by_route_template_and_status(api: Api) -> None:
    body = {
        "vectors": {"size": 3, "distance": "Dot"},
        "optimizers_config": {"indexing_threshold": 100},
    }
    api.result("PUT", "/collections/m", body)
    points = [{"id": i, "vector": np.random.default_rng(i).random(3).tolist()} for i in range(250)]
    api.result("PUT", "/collections/m/points?wait=true", {"points": points})
    wait_green(api, "m")
    for _ in range(3):
        api.result("POST", "/collections/m/points/query", {"query": [1.0, 0.0, 0.0], "limit": 5})
    api.call("POST", "/collections/missing/points/query", {"query": [1.0, 0.0, 0.0]})
    samples = scrape(api)
    route = "/collections/{name}/points/query"
    assert value(samples, "quiver_requests_total", route=route, method="POST", status="200") == 3
    assert value(samples, "quiver_requests_total", route=route, method="POST", status="404") == 1
    assert value(samples, "quiver_request_duration_seconds_count", route=route, method="POST") == 4
    assert not any("collections/m/" in labels for _, labels in samples for labels in [str(labels)])
    assert value(samples, "quiver_collection_points", collection="m") == 250
    assert value(samples, "quiver_collection_segments", collection="m") >= 2
    plans = sum(v for (name, _), v in samples.items() if name == "quiver_search_plans_total")
    assert plans >= 3
    built = sum(
        v for (name, labels), v in samples.items()
        if name == "quiver_index_build_duration_seconds_count" and ("state", "done") in labels
    )  # fmt: skip
    assert built >= 1


def test_metrics_need_the_api_key_when_one_is_set(tmp_path: Path) -> None:
    with make_client(tmp_path, api_key="secret") as client:
        assert client.get("/metrics").status_code == 401
        response = client.get("/metrics", headers={"api-key": "secret"})
        assert response.status_code == 200
        assert re.search(r"^# TYPE quiver_requests_total counter$", response.text, re.M)
