"""A full-text payload index with ``on_disk: true`` keeps its token postings in file maps
(``payload_index_disk.DiskTextIndex``) and answers every text, text_any and phrase
filter as the in-memory index does, through rewrites, deletes, sealing and a restart."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np

from server.engine.collection import Collection
from server.engine.payload_index_disk import DiskTextIndex
from tests.helpers.api import Api, make_client, wait_green

POINTS = 300
WORDS = [
    *("alpha", "beta", "gamma", "delta", "quick", "brown", "fox"),
    *("lazy", "dog", "runs", "ran", "sleeping", "cats"),
]
MATCHES: list[dict[str, Any]] = [
    {"text": "fox"},
    {"text": "lazy dog"},
    {"text": "running"},
    {"text_any": "gamma cats"},
    {"phrase": "quick brown"},
    {"phrase": "dog runs"},
    {"text": "absent"},
]
SCHEMA = {"type": "text", "stemmer": {"type": "snowball", "language": "english"}}


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 7)))


def fill(api: Api) -> None:
    rng = random.Random(23)
    vectors = np.random.default_rng(23).standard_normal((POINTS, 4)).astype(np.float32)
    texts = [sentence(rng) for _ in range(POINTS)]
    for name, on_disk in (("disk", True), ("ram", False)):
        body = {
            "vectors": {"size": 4, "distance": "Cosine"},
            "optimizers_config": {"indexing_threshold": 100},
        }
        api.result("PUT", f"/collections/{name}", body)
        schema = SCHEMA | {"on_disk": on_disk, "phrase_matching": True}
        index = {"field_name": "text", "field_schema": schema}
        api.result("PUT", f"/collections/{name}/index?wait=true", index)
        points = [
            {"id": i, "vector": vectors[i].tolist(), "payload": {"text": texts[i]}}
            for i in range(POINTS)
        ]
        api.result("PUT", f"/collections/{name}/points?wait=true", {"points": points})
        rewrite = {"payload": {"text": "quick brown fox"}, "points": list(range(0, 60, 3))}
        api.result("POST", f"/collections/{name}/points/payload?wait=true", rewrite)
        gone = {"points": list(range(1, 90, 4))}
        api.result("POST", f"/collections/{name}/points/delete?wait=true", gone)
        wait_green(api, name)


def answers(api: Api, name: str) -> list[Any]:
    out: list[Any] = []
    for match in MATCHES:
        flt = {"must": [{"key": "text", "match": match}]}
        body = {"filter": flt, "limit": 1000, "with_payload": False}
        found = api.result("POST", f"/collections/{name}/points/scroll", body)["points"]
        out.append(sorted(p["id"] for p in found))
    return out


def mapped_text_bytes(api: Api, client: Any) -> int:
    collection = client.app.state.engine.get("disk")
    assert isinstance(collection, Collection)
    fields = [segment.payload_indexes.fields["text"] for segment in collection._segments]
    assert len(fields) > 1 and all(isinstance(f, DiskTextIndex) for f in fields)
    return sum(f.mapped_bytes() for f in fields)  # type: ignore[attr-defined]


def test_on_disk_text_index_maps_postings_and_answers_as_in_memory(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        api = Api(client)
        fill(api)
        before = answers(api, "disk")
        assert before == answers(api, "ram")
        assert all(before[:-1]) and not before[-1]  # each real filter selects something
        assert mapped_text_bytes(api, client) > 0
    with make_client(tmp_path) as client:
        api = Api(client)
        wait_green(api, "disk")
        assert answers(api, "disk") == before == answers(api, "ram")
        assert mapped_text_bytes(api, client) > 0
        info = api.result("GET", "/collections/disk")
        assert info["payload_schema"]["text"]["params"]["on_disk"] is True
