"""``GET /metrics``: Prometheus text with request, planner, build and collection metrics."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.api import Api, create_items, make_client, wait_green


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


def test_a_slow_collection_stats_call_does_not_block_other_requests(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scrape's stats call is held until another request has been answered: on the
    event loop that request could not run, and the held call would time out."""
    collection = api.client.app.state.engine.get(create_items(api))
    info = collection.info
    entered, released = threading.Event(), threading.Event()
    held_until_released: list[bool] = []

    def slow_info() -> Any:
        entered.set()
        held_until_released.append(released.wait(timeout=5))
        return info()

    monkeypatch.setattr(collection, "info", slow_info)
    scraped: list[int] = []
    scrape_thread = threading.Thread(
        target=lambda: scraped.append(api.client.get("/metrics").status_code)
    )
    scrape_thread.start()
    try:
        assert entered.wait(timeout=10)
        assert api.client.get("/healthz").status_code == 200
        assert api.result("POST", "/collections/items/points/count", {})["count"] == 10
    finally:
        released.set()
        scrape_thread.join(timeout=10)
    assert held_until_released == [True]
    assert scraped == [200]
