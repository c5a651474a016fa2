"""Text, text_any and phrase filters select exactly the points qdrant-client's local
mode selects, on a field with Quiver's default full-text index (word tokenizer,
lowercase: the tokenizer local mode and Qdrant use for unindexed fields) and on the
same field without an index, over seeded random text.

One case is left out of the indexed comparison on purpose: a point holding an
*array* of strings. Local mode tests each string alone (it builds no index); a
Qdrant text index tokenizes a point's strings as one document, and Quiver's does too.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient, models

from server.engine.filters import Filter, parse_filter
from server.engine.payload_index import PayloadIndexes
from tests.helpers.api import Api, make_client

WORDS = [
    "Red", "red", "fox", "FOX", "quick", "brown", "lazy", "dog", "über", "café",
    "jumps", "over", "the", "a", "x1", "42", "fox_jumps", "dog-house", "state-of-the-art",
]  # fmt: skip
SEPARATORS = [" ", " ", ", ", "  ", ". ", "!", "\t"]
POINTS = 240
QUERIES = 100


def _text(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(0, 7))
    return "".join(word + rng.choice(SEPARATORS) for word in words).strip()


def _value(rng: random.Random, arrays: bool) -> Any:
    roll = rng.random()
    if roll < 0.75 or (not arrays and roll < 0.9):
        return _text(rng)
    if roll < 0.9:
        return [_text(rng) for _ in range(rng.randint(1, 3))]
    return rng.choice([None, 7, True, {"t": "red fox"}])


def _payloads(seed: int, arrays: bool) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{} if rng.random() < 0.05 else {"t": _value(rng, arrays)} for _ in range(POINTS)]


def _queries(seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for _ in range(QUERIES):
        kind = rng.choice(["text", "text_any", "phrase"])
        words = rng.choices(WORDS, k=rng.randint(0, 3))
        yield {kind: rng.choice([" ", ", "]).join(words)}


def _local(payloads: list[dict[str, Any]]) -> QdrantClient:
    client = QdrantClient(":memory:")
    client.create_collection(
        "t", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT)
    )
    points = [
        models.PointStruct(id=i, vector=[1.0, 0.0], payload=p) for i, p in enumerate(payloads)
    ]
    client.upsert("t", points)
    return client


def _local_ids(client: QdrantClient, match: dict[str, Any]) -> list[int]:
    flt = models.Filter(must=[models.FieldCondition(key="t", match=_local_match(match))])
    records, _ = client.scroll("t", scroll_filter=flt, limit=POINTS + 1)
    return sorted(int(r.id) for r in records)


def _local_match(match: dict[str, Any]) -> models.Match:
    ((kind, query),) = match.items()
    if kind == "text":
        return models.MatchText(text=query)
    if kind == "text_any":
        return models.MatchTextAny(text_any=query)
    return models.MatchPhrase(phrase=query)


def _quiver(api: Api, name: str, payloads: list[dict[str, Any]], schema: Any) -> None:
    api.result("PUT", f"/collections/{name}", {"vectors": {"size": 2, "distance": "Dot"}})
    if schema is not None:
        body = {"field_name": "t", "field_schema": schema}
        api.result("PUT", f"/collections/{name}/index?wait=true", body)
    points = [{"id": i, "vector": [1.0, 0.0], "payload": p} for i, p in enumerate(payloads)]
    api.result("PUT", f"/collections/{name}/points?wait=true", {"points": points})


def _quiver_ids(api: Api, name: str, match: dict[str, Any]) -> list[int]:
    body = {"filter": {"must": [{"key": "t", "match": match}]}, "limit": POINTS + 1}
    found = api.result("POST", f"/collections/{name}/points/scroll", body)["points"]
    return sorted(p["id"] for p in found)


@pytest.mark.parametrize(
    ("schema", "arrays"),
    [
        (None, True),
        ({"type": "text"}, False),
        ({"type": "text", "phrase_matching": True}, False),
        ("text", False),
    ],
)
@pytest.mark.parametrize("seed", [1])
def test_text_filters_select_what_local_mode_selects(
    tmp_path: Path, schema: Any, arrays: bool, seed: int
) -> None:
    payloads = _payloads(seed, arrays)
    local = _local(payloads)
    with make_client(tmp_path) as client:
        api = Api(client)
        _quiver(api, "t", payloads, schema)
        selected = 0
        for match in _queries(seed):
            expected = _local_ids(local, match)
            assert _quiver_ids(api, "t", match) == expected, match
            selected += bool(expected)
    assert selected > QUERIES // 4  # the queries are not all trivially empty


OPTIONS: list[dict[str, Any]] = [
    {"tokenizer": "prefix", "min_token_len": 2, "max_token_len": 4},
    {"tokenizer": "whitespace", "lowercase": False},
    {"stopwords": "english", "stemmer": {"type": "snowball", "language": "english"}},
    {"stopwords": {"custom": ["red"]}, "ascii_folding": True, "phrase_matching": True},
    {"tokenizer": "multilingual", "max_token_len": 3, "phrase_matching": True},
]


@pytest.mark.parametrize("options", OPTIONS)
def test_index_answers_equal_a_scan_with_the_index_tokenizer(options: dict[str, Any]) -> None:
    """Whatever the options, the postings select exactly the rows a payload scan with
    the index's own tokenizer selects (the path a re-check takes)."""
    payloads = _payloads(3, arrays=True)
    indexes = PayloadIndexes({"t": {"type": "text", **options}})
    indexes.build(payloads)
    for match in _queries(3):
        parsed = parse_filter({"must": [{"key": "t", "match": match}]})
        assert parsed is not None
        flt = indexes.bind(parsed)
        bounds = indexes.bounds(flt, len(payloads))
        scanned = [i for i, payload in enumerate(payloads) if _holds(flt, payload)]
        assert bounds.possible is not None
        assert set(bounds.certain) <= set(scanned) <= set(bounds.possible), match
        if "phrase" not in match or options.get("phrase_matching"):
            assert sorted(bounds.certain) == scanned, match  # exact from the index alone


def _holds(flt: Filter, payload: dict[str, Any]) -> bool:
    return flt.matches(0, payload, lambda _name: False)
