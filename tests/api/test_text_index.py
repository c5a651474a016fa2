"""Full-text payload indexes over the API: each option changes which points a text,
text_any or phrase condition selects, as Qdrant's tokenizer would; bad options are a
400 that changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.api import Api

DOCS = [
    "The quick brown foxes jumped over the lazy dog",  # 0
    "A lazy DOG sleeps",  # 1
    "Qdrant indexes payloads",  # 2
    "fox_jumps and ação",  # 3
    "running runners ran",  # 4
    "x yy zzz wwww",  # 5
]


def _collection(api: Api, schema: dict[str, Any] | None, docs: list[Any] = DOCS) -> None:
    api.result("PUT", "/collections/t", {"vectors": {"size": 2, "distance": "Dot"}})
    if schema is not None:  # before the points: rows are indexed as they arrive
        body = {"field_name": "text", "field_schema": schema}
        api.result("PUT", "/collections/t/index?wait=true", body)
    points = [{"id": i, "vector": [1.0, 0.0], "payload": {"text": d}} for i, d in enumerate(docs)]
    api.result("PUT", "/collections/t/points?wait=true", {"points": points})


def _ids(api: Api, match: dict[str, Any], *extra: dict[str, Any]) -> list[int]:
    flt = {"must": [{"key": "text", "match": match}, *extra]}
    body = {"filter": flt, "limit": 100, "with_payload": False}
    return sorted(
        p["id"] for p in api.result("POST", "/collections/t/points/scroll", body)["points"]
    )


def test_default_text_index_matches_whole_lowercased_words(api: Api) -> None:
    _collection(api, {"type": "text"})
    assert _ids(api, {"text": "lazy dog"}) == [0, 1]
    assert _ids(api, {"text": "fox"}) == [3]  # "_" splits words; no stemmer: not "foxes"
    assert _ids(api, {"text_any": "qdrant sleeps"}) == [1, 2]
    assert _ids(api, {"text": ""}) == []


def test_stemmer_and_stopwords_shape_both_sides(api: Api) -> None:
    schema = {
        "type": "text",
        "stopwords": "english",
        "stemmer": {"type": "snowball", "language": "english"},
    }
    _collection(api, schema)
    assert _ids(api, {"text": "fox"}) == [0, 3]
    assert _ids(api, {"text": "run"}) == [4]
    assert _ids(api, {"text": "the"}) == []  # a query of stopwords only matches nothing
    assert _ids(api, {"text": "the lazy dogs"}) == [0, 1]


def test_custom_stopwords_and_languages(api: Api) -> None:
    _collection(api, {"type": "text", "stopwords": {"languages": ["english"], "custom": ["lazy"]}})
    assert _ids(api, {"text": "lazy"}) == []
    assert _ids(api, {"text": "dog"}) == [0, 1]


def test_lowercase_off_is_case_sensitive(api: Api) -> None:
    _collection(api, {"type": "text", "lowercase": False})
    assert _ids(api, {"text": "DOG"}) == [1]
    assert _ids(api, {"text": "dog"}) == [0]


def test_token_lengths_drop_short_and_long_words(api: Api) -> None:
    _collection(api, {"type": "text", "min_token_len": 2, "max_token_len": 3})
    assert _ids(api, {"text": "yy"}) == [5]
    assert _ids(api, {"text": "zzz"}) == [5]
    assert _ids(api, {"text": "wwww"}) == []
    assert _ids(api, {"text": "x"}) == []


def test_prefix_tokenizer_matches_word_prefixes(api: Api) -> None:
    _collection(api, {"type": "text", "tokenizer": "prefix"})
    assert _ids(api, {"text": "qdr"}) == [2]
    assert _ids(api, {"text": "la do"}) == [0, 1]


def test_whitespace_tokenizer_keeps_punctuation_inside_tokens(api: Api) -> None:
    _collection(api, {"type": "text", "tokenizer": "whitespace"})
    assert _ids(api, {"text": "fox_jumps"}) == [3]
    assert _ids(api, {"text": "fox"}) == []


def test_ascii_folding(api: Api) -> None:
    _collection(api, {"type": "text", "ascii_folding": True})
    assert _ids(api, {"text": "acao"}) == [3]
    assert _ids(api, {"text": "ação"}) == [3]


@pytest.mark.parametrize("phrase_matching", [True, False])
def test_phrase_needs_consecutive_words_in_order(api: Api, phrase_matching: bool) -> None:
    _collection(api, {"type": "text", "phrase_matching": phrase_matching})
    assert _ids(api, {"phrase": "lazy dog"}) == [0, 1]
    assert _ids(api, {"phrase": "dog lazy"}) == []
    assert _ids(api, {"phrase": "quick fox"}) == []
    assert _ids(api, {"phrase": "brown foxes jumped"}) == [0]


def test_text_condition_beside_an_unindexed_one_keeps_the_index_tokenizer(api: Api) -> None:
    """Rows the index leaves uncertain are re-checked with the index's tokenizer."""
    schema = {"type": "text", "stemmer": {"type": "snowball", "language": "english"}}
    _collection(api, schema)
    unindexed = {"key": "missing", "is_empty": True}
    assert _ids(api, {"text": "fox"}, unindexed) == [0, 3]
    assert _ids(api, {"phrase": "foxes jump"}, unindexed) == [0, 3]


def test_index_created_after_the_points(api: Api) -> None:
    _collection(api, None)
    assert _ids(api, {"text": "qdr"}) == []
    body = {"field_name": "text", "field_schema": {"type": "text", "tokenizer": "prefix"}}
    api.result("PUT", "/collections/t/index?wait=true", body)
    assert _ids(api, {"text": "qdr"}) == [2]
    info = api.result("GET", "/collections/t")
    assert info["payload_schema"]["text"]["data_type"] == "text"
    assert info["payload_schema"]["text"]["params"]["tokenizer"] == "prefix"


def test_array_of_strings_is_one_document(api: Api) -> None:
    _collection(api, {"type": "text"}, docs=[["lazy", "dog"], "lazy", 7])
    assert _ids(api, {"text": "lazy dog"}) == [0]
    assert _ids(api, {"text_any": "lazy"}) == [0, 1]


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "text", "tokenizer": "letters"},
        {"type": "text", "stopwords": "klingon"},
        {"type": "text", "stemmer": {"type": "snowball", "language": "klingon"}},
        {"type": "text", "min_token_len": -1},
        {"type": "text", "phrase_matching": "yes"},
        {"type": "text", "colour": "blue"},
        {"type": "integer", "lookup": False, "range": False},
        {"type": "keyword", "is_tenant": "yes"},
        {"type": "keyword", "lookup": True},
        {"type": "float", "memory": "warm"},
    ],
)
def test_bad_index_options_are_refused_and_change_nothing(api: Api, schema: dict[str, Any]) -> None:
    _collection(api, None)
    status, answer = api.put(
        "/collections/t/index?wait=true", {"field_name": "text", "field_schema": schema}
    )
    assert status == 400, answer
    assert "error" in answer["status"]
    assert api.result("GET", "/collections/t")["payload_schema"] == {}
