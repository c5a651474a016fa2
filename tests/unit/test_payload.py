"""Unit tests for ``server.engine.payload``: JSON paths, with_payload, payload edits.

Besides hand-written expectations, the edit and selector cases are replayed against
qdrant-client's local mode (``QdrantClient(":memory:")``), the executable reference.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from qdrant_client import QdrantClient, models

from server.engine.payload import (
    delete_payload_keys,
    parse_json_path,
    parse_with_payload,
    set_payload,
)
from server.errors import BadRequest

DOC: dict[str, Any] = {
    "a": {"b": 1, "c": 2},
    "aa": {"b": 3},
    "a.b": 4,
    "l": [{"b": 5, "c": 6}, {"b": 7}, 8],
    "n": None,
    "s": "text",
}


# --- JSON paths ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("a", ("a",)),
        ("a.b-c_d", ("a", "b-c_d")),
        ("a[]", ("a", None)),
        ("a[0][2].b", ("a", 0, 2, "b")),
        ('"a.b".c', ("a.b", "c")),
        ('a."b[]"', ("a", "b[]")),
        ("ключ.x", ("ключ", "x")),
    ],
)
def test_json_path_parses(text: str, items: tuple[Any, ...]) -> None:
    assert parse_json_path(text).items == items


@pytest.mark.parametrize("text", ["", ".a", "a.", "a..b", "a[", "a[x]", "a[-1]", '"a', "a b", "a]"])
def test_invalid_json_path_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_json_path(text)


@pytest.mark.parametrize(
    ("text", "flat", "nested"),
    [
        ("a.b", [1], [1]),
        ("l", [{"b": 5, "c": 6}, {"b": 7}, 8], [[{"b": 5, "c": 6}, {"b": 7}, 8]]),
        ("l[].b", [5, 7], [5, 7]),
        ("l[1].b", [7], [7]),
        ("l[9]", [], []),
        ('"a.b"', [4], [4]),
        ("n", [None], [None]),
        ("missing", [], []),
        ("s.x", [], []),
    ],
)
def test_json_path_values(text: str, flat: list[Any], nested: list[Any]) -> None:
    path = parse_json_path(text)
    assert path.values(DOC) == flat
    assert path.values(DOC, flatten=False) == nested


# --- with_payload --------------------------------------------------------------------


def test_with_payload_true_returns_a_copy_of_everything() -> None:
    selected = parse_with_payload(True).apply(DOC)
    assert selected == DOC
    assert selected is not DOC


def test_with_payload_false_returns_none() -> None:
    assert parse_with_payload(False).apply(DOC) is None


@pytest.mark.parametrize(("default", "expected"), [(True, DOC), (False, None)])
def test_absent_with_payload_uses_the_endpoint_default(default: bool, expected: Any) -> None:
    assert parse_with_payload(None, default=default).apply(DOC) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["a.b"], {"a": {"b": 1}}),
        (['"a.b"', "l[].c"], {"a.b": 4, "l": [{"c": 6}, {}, 8]}),
        ({"include": ["aa", "s"]}, {"aa": {"b": 3}, "s": "text"}),
        ({"include": ["l[0]"]}, {"l": []}),
        (["a", "a.b"], {"a": {"b": 1, "c": 2}}),
        ([], {}),
        (
            {"exclude": ["a", "l[].b"]},
            {"aa": {"b": 3}, "a.b": 4, "l": [{"c": 6}, {}, 8], "n": None, "s": "text"},
        ),
        ({"exclude": ["l[]", "missing"]}, {**DOC, "l": []}),
    ],
)
def test_with_payload_selectors(raw: Any, expected: dict[str, Any]) -> None:
    before = copy.deepcopy(DOC)
    assert parse_with_payload(raw).apply(DOC) == expected
    assert before == DOC


@pytest.mark.parametrize(
    "raw",
    [
        "a",
        1,
        [1],
        ["a..b"],
        {"include": "a"},
        {"include": ["a"], "exclude": ["b"]},
        {"only": ["a"]},
        {},
    ],
)
def test_invalid_with_payload_is_a_bad_request(raw: Any) -> None:
    with pytest.raises(BadRequest):
        parse_with_payload(raw)


# --- set / delete --------------------------------------------------------------------


def test_set_payload_merges_top_level_keys() -> None:
    assert set_payload({"a": 1, "b": 2}, {"b": 3, "c": 4}) == {"a": 1, "b": 3, "c": 4}


def test_set_payload_null_removes_the_key() -> None:
    assert set_payload({"a": 1, "b": 2}, {"b": None}) == {"a": 1}


@pytest.mark.parametrize(
    ("payload", "key", "expected"),
    [
        ({}, "x.y", {"x": {"y": {"v": 1}}}),
        ({"x": 5}, "x", {"x": {"v": 1}}),
        ({"x": {"w": 0}}, "x", {"x": {"w": 0, "v": 1}}),
        ({"x": 5}, "x.y", {"x": {"y": {"v": 1}}}),
        ({"x": [{"w": 0}, 3]}, "x[]", {"x": [{"w": 0, "v": 1}, {"v": 1}]}),
        ({"x": [{"w": 0}, 3]}, "x[1]", {"x": [{"w": 0}, {"v": 1}]}),
        ({"x": [{"w": 0}]}, "x[5]", {"x": [{"w": 0}]}),
        ({"x": 5}, "x[0]", {"x": []}),
        ({}, "x[].y", {"x": []}),
        ({"x": [{"y": 1}, {}]}, "x[].y", {"x": [{"y": {"v": 1}}, {"y": {"v": 1}}]}),
    ],
)
def test_set_payload_at_a_key(payload: dict[str, Any], key: str, expected: dict[str, Any]) -> None:
    before = copy.deepcopy(payload)
    assert set_payload(payload, {"v": 1}, key) == expected
    assert payload == before


def test_set_payload_through_a_wildcard_does_not_alias_elements() -> None:
    result = set_payload({"x": [{}, {}]}, {"v": {"deep": 1}}, "x[]")
    result["x"][0]["v"]["deep"] = 2
    assert result["x"][1]["v"]["deep"] == 1


def test_set_payload_does_not_alias_the_new_values() -> None:
    new_values = {"v": [1]}
    result = set_payload({}, new_values)
    result["v"].append(2)
    assert new_values == {"v": [1]}


@pytest.mark.parametrize(("key", "new_values"), [("a..b", {"v": 1}), (None, [1])])
def test_set_payload_rejects_bad_input(key: str | None, new_values: Any) -> None:
    with pytest.raises(BadRequest):
        set_payload({}, new_values, key)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (["s", "missing"], {k: v for k, v in DOC.items() if k != "s"}),
        (["a.b"], {**DOC, "a": {"c": 2}}),
        (['"a.b"'], {k: v for k, v in DOC.items() if k != "a.b"}),
        (["l[].b"], {**DOC, "l": [{"c": 6}, {}, 8]}),
        (["l[0].c"], {**DOC, "l": [{"b": 5}, {"b": 7}, 8]}),
        (["l[]"], {**DOC, "l": []}),
        (["l[0]"], DOC),
        (["s.x"], DOC),
    ],
)
def test_delete_payload_keys(keys: list[str], expected: dict[str, Any]) -> None:
    before = copy.deepcopy(DOC)
    assert delete_payload_keys(DOC, keys) == expected
    assert before == DOC


def test_delete_payload_rejects_bad_keys() -> None:
    with pytest.raises(BadRequest):
        delete_payload_keys(DOC, ["a["])


# --- the same cases against qdrant-client local mode ------------------------------------


@pytest.fixture(scope="module")
def local() -> Iterator[QdrantClient]:
    client = QdrantClient(":memory:")
    params = models.VectorParams(size=2, distance=models.Distance.DOT)
    client.create_collection("p", vectors_config=params)
    yield client
    client.close()


def stored(client: QdrantClient, payload: dict[str, Any]) -> None:
    client.upsert("p", points=[models.PointStruct(id=1, vector=[1.0, 0.0], payload=payload)])


def read_back(client: QdrantClient, with_payload: Any = True) -> Any:
    return client.retrieve("p", ids=[1], with_payload=with_payload)[0].payload


EDIT_PAYLOADS: list[dict[str, Any]] = [
    DOC,
    {},
    {"x": 5},
    {"x": [{"w": 0}, 3, [1]]},
    {"x": {"y": [1, {"z": 2}]}},
]
EDIT_KEYS = [None, "x", "x.y", "x[]", "x[0]", "x[1]", "x[].y", "x.y[1].z", "l[].b", "a"]


@pytest.mark.parametrize("payload", EDIT_PAYLOADS)
@pytest.mark.parametrize("key", EDIT_KEYS)
def test_set_payload_agrees_with_local_mode(
    local: QdrantClient, payload: dict[str, Any], key: str | None
) -> None:
    new_values = {"v": {"deep": 1}, "n": None, "a": 0}
    stored(local, payload)
    local.set_payload("p", payload=new_values, points=[1], key=key)
    assert set_payload(payload, new_values, key) == read_back(local)


@pytest.mark.parametrize("payload", EDIT_PAYLOADS)
@pytest.mark.parametrize("key", [k for k in EDIT_KEYS if k is not None])
def test_delete_payload_agrees_with_local_mode(
    local: QdrantClient, payload: dict[str, Any], key: str
) -> None:
    stored(local, payload)
    local.delete_payload("p", keys=[key], points=[1])
    assert delete_payload_keys(payload, [key]) == read_back(local)


@pytest.mark.parametrize(
    "selector",
    [
        ["a.b"],
        ['"a.b"', "l[].c"],
        ["l[0]", "n"],
        ["l[].b", "l"],
        [],
        {"exclude": ["a", "l[].b"]},
        {"exclude": ["l[]"]},
        {"include": ["aa.b", "s.x"]},
    ],
)
def test_with_payload_agrees_with_local_mode(local: QdrantClient, selector: Any) -> None:
    stored(local, DOC)
    if isinstance(selector, dict):
        local_selector: Any = (
            models.PayloadSelectorInclude(include=selector["include"])
            if "include" in selector
            else models.PayloadSelectorExclude(exclude=selector["exclude"])
        )
    else:
        local_selector = selector
    assert parse_with_payload(selector).apply(DOC) == read_back(local, local_selector)
