"""``on_disk_payload: true`` keeps payloads in the point store, not per point in memory;
every answer must equal the one the same collection gives with payloads in memory,
through payload rewrites, deletes, sealing and a restart."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np

from server.engine.collection import Collection
from server.engine.payload_column import MemoryPayloads, StoredPayloads
from tests.helpers.api import Api, make_client, wait_green

POINTS = 300
NAMES = ("disk", "ram")


def _payload(rng: random.Random, i: int) -> dict[str, Any]:
    return {
        "city": rng.choice(["Berlin", "Paris", "Oslo"]),
        "n": rng.randint(0, 50),
        "tags": rng.sample(["a", "b", "c", "d"], rng.randint(0, 3)),
        "note": rng.choice(["red fox", "lazy dog", "quick brown fox", None]),
        "meta": {"rank": i % 7, "flag": i % 2 == 0},
    }


def _fill(api: Api) -> None:
    rng = random.Random(7)
    vectors = np.random.default_rng(7).standard_normal((POINTS, 4)).astype(np.float32)
    payloads = [_payload(rng, i) for i in range(POINTS)]
    for name, on_disk in zip(NAMES, (True, False), strict=True):
        body = {
            "vectors": {"size": 4, "distance": "Cosine"},
            "on_disk_payload": on_disk,
            "optimizers_config": {"indexing_threshold": 100},
        }
        api.result("PUT", f"/collections/{name}", body)
        index = {"field_name": "city", "field_schema": "keyword"}
        api.result("PUT", f"/collections/{name}/index?wait=true", index)
        for first in range(0, POINTS, 100):
            points = [
                {"id": i, "vector": vectors[i].tolist(), "payload": payloads[i]}
                for i in range(first, first + 100)
            ]
            api.result("PUT", f"/collections/{name}/points?wait=true", {"points": points})
        _change(api, name)
        wait_green(api, name)


def _change(api: Api, name: str) -> None:
    """Payload rewrites of every kind, deletes and overwrites, sealed rows included."""
    base = f"/collections/{name}/points"
    by_city = {"must": [{"key": "city", "match": {"value": "Oslo"}}]}
    api.result("POST", f"{base}/payload?wait=true", {"payload": {"x": 1}, "filter": by_city})
    api.result("PUT", f"{base}/payload?wait=true", {"payload": {"city": "Rome"}, "points": [3, 4]})
    api.result("POST", f"{base}/payload/delete?wait=true", {"keys": ["note"], "points": [5, 250]})
    api.result("POST", f"{base}/payload/clear?wait=true", {"points": [6]})
    api.result("POST", f"{base}/delete?wait=true", {"points": [7, 8, 150]})
    point = {"id": 9, "vector": [1.0, 0.0, 0.0, 0.0], "payload": {"city": "Paris", "n": 99}}
    api.result("PUT", f"{base}?wait=true", {"points": [point]})


FILTERS: list[dict[str, Any]] = [
    {"must": [{"key": "n", "range": {"gte": 10, "lt": 30}}]},
    {"must": [{"key": "note", "match": {"text": "fox"}}]},
    {
        "must": [
            {"key": "city", "match": {"value": "Paris"}},
            {"key": "tags", "match": {"any": ["a"]}},
        ]
    },
    {"should": [{"key": "meta.flag", "match": {"value": True}}, {"key": "x", "is_empty": False}]},
    {
        "must_not": [{"key": "note", "is_null": True}],
        "must": [{"key": "meta.rank", "range": {"lt": 3}}],
    },
]


def _answers(api: Api) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for name in NAMES:
        base = f"/collections/{name}/points"
        every = {"limit": 1000, "with_payload": True, "with_vector": False}
        answers: list[Any] = [api.result("POST", f"{base}/scroll", every)["points"]]
        for flt in FILTERS:
            body = {"filter": flt, "limit": 1000, "with_payload": True}
            answers.append(api.result("POST", f"{base}/scroll", body)["points"])
            answers.append(api.result("POST", f"{base}/count", {"filter": flt, "exact": True}))
        answers.append(
            api.result("POST", base, {"ids": [1, 2, 3, 6, 9, 250], "with_payload": True})
        )
        query = {
            "query": [1.0, 0.5, 0.0, 0.0],
            "limit": 5,
            "with_payload": True,
            "filter": FILTERS[0],
        }
        answers.append(api.result("POST", f"{base}/query", query)["points"])
        out[name] = answers
    return out


def test_stored_payloads_answer_as_payloads_in_memory_across_a_restart(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        api = Api(client)
        _fill(api)
        before = _answers(api)
        assert before["disk"] == before["ram"]
        assert len(before["disk"][0]) == POINTS - 3
        assert all(before["disk"][1::2])  # every filter selects something
    with make_client(tmp_path) as client:
        api = Api(client)
        for name in NAMES:
            wait_green(api, name)
        after = _answers(api)
    assert after["disk"] == before["disk"]
    assert after["ram"] == before["ram"]


def test_only_indexed_keys_of_stored_payloads_stay_in_memory(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        api = Api(client)
        _fill(api)
        engine = client.app.state.engine
        for name, kind in (("disk", StoredPayloads), ("ram", MemoryPayloads)):
            collection = engine.get(name)
            assert isinstance(collection, Collection)
            segments = list(collection._segments)
            assert len(segments) > 1  # sealed ones and the appendable one
            for segment in segments:
                assert isinstance(segment.payloads, kind)
                kept = segment.payloads.kept_all()
                if kind is StoredPayloads:
                    assert all(set(payload) <= {"city"} for payload in kept)
