"""A payload index with ``on_disk: true`` answers every filter, count and facet as the
in-memory one does, through rewrites, deletes and sealing, and its segments' indexes
hold their postings in file maps."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np

from server.engine.collection import Collection
from server.engine.payload_index_disk import DiskIntegerIndex, DiskKeywordIndex
from tests.api import test_on_disk_payload as stored
from tests.helpers.api import Api, make_client, wait_green

POINTS = 300
NAMES = ("disk", "ram")


def _fill(api: Api) -> None:
    rng = random.Random(11)
    vectors = np.random.default_rng(11).standard_normal((POINTS, 4)).astype(np.float32)
    payloads = [stored._payload(rng, i) for i in range(POINTS)]
    for name, on_disk in zip(NAMES, (True, False), strict=True):
        body = {
            "vectors": {"size": 4, "distance": "Cosine"},
            "optimizers_config": {"indexing_threshold": 100},
        }
        api.result("PUT", f"/collections/{name}", body)
        for field, kind in (("city", "keyword"), ("n", "integer"), ("tags", "keyword")):
            schema = {"type": kind, "on_disk": on_disk}
            index = {"field_name": field, "field_schema": schema}
            api.result("PUT", f"/collections/{name}/index?wait=true", index)
        for first in range(0, POINTS, 100):
            points = [
                {"id": i, "vector": vectors[i].tolist(), "payload": payloads[i]}
                for i in range(first, first + 100)
            ]
            api.result("PUT", f"/collections/{name}/points?wait=true", {"points": points})
        stored._change(api, name)
        wait_green(api, name)


def _answers(api: Api, name: str) -> list[Any]:
    base = f"/collections/{name}/points"
    answers: list[Any] = []
    for flt in stored.FILTERS:
        body = {"filter": flt, "limit": 1000, "with_payload": True}
        answers.append(api.result("POST", f"{base}/scroll", body)["points"])
        answers.append(api.result("POST", f"{base}/count", {"filter": flt, "exact": True}))
    for key in ("city", "n", "tags"):
        facet = {"key": key, "limit": 100, "exact": True}
        answers.append(api.result("POST", f"/collections/{name}/facet", facet))
    order = {"limit": 50, "order_by": {"key": "n", "direction": "desc"}}
    answers.append([p["id"] for p in api.result("POST", f"{base}/scroll", order)["points"]])
    return answers


def test_on_disk_payload_indexes_answer_as_in_memory_ones(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        api = Api(client)
        _fill(api)
        disk, ram = _answers(api, "disk"), _answers(api, "ram")
        assert disk == ram
        assert all(disk[1 : 2 * len(stored.FILTERS) : 2])  # every filter counts something
        collection = client.app.state.engine.get("disk")
        assert isinstance(collection, Collection)
        segments = list(collection._segments)
        assert len(segments) > 1  # sealed ones and the appendable one
        fields = [segment.payload_indexes.fields for segment in segments]
        assert all(isinstance(f["city"], DiskKeywordIndex) for f in fields)
        assert all(isinstance(f["n"], DiskIntegerIndex) for f in fields)
        assert sum(f["city"].mapped_bytes() for f in fields) > 0  # type: ignore[attr-defined]
        info = api.result("GET", "/collections/disk")
        assert info["payload_schema"]["city"]["params"]["on_disk"] is True


def test_memory_cold_uses_the_disk_index_and_pinned_overrides_on_disk(tmp_path: Path) -> None:
    """A payload index's ``memory`` overrides its ``on_disk`` (Qdrant 1.19): ``cold``
    gets the file-mapped index, ``pinned`` the in-memory one beside ``on_disk: true``."""
    with make_client(tmp_path) as client:
        api = Api(client)
        api.result("PUT", "/collections/c", {"vectors": {"size": 4, "distance": "Dot"}})
        schemas = {"city": {"type": "keyword", "memory": "cold"},
                   "n": {"type": "integer", "memory": "pinned", "on_disk": True}}  # fmt: skip
        for field, schema in schemas.items():
            index = {"field_name": field, "field_schema": schema}
            api.result("PUT", "/collections/c/index?wait=true", index)
        points = [
            {"id": i, "vector": [1.0, 0.0, 0.0, float(i)], "payload": {"city": "ab"[i % 2], "n": i}}
            for i in range(20)
        ]
        api.result("PUT", "/collections/c/points?wait=true", {"points": points})
        must = [{"key": "city", "match": {"value": "b"}}, {"key": "n", "range": {"gte": 10}}]
        flt = {"must": must}
        count = api.result("POST", "/collections/c/points/count", {"filter": flt, "exact": True})
        assert count["count"] == 5
        collection = client.app.state.engine.get("c")
        assert isinstance(collection, Collection)
        fields = [segment.payload_indexes.fields for segment in collection._segments]
        assert all(isinstance(f["city"], DiskKeywordIndex) for f in fields)
        assert not any(isinstance(f["n"], DiskIntegerIndex) for f in fields)
        info = api.result("GET", "/collections/c")
        assert info["payload_schema"]["city"]["params"]["memory"] == "cold"
