"""The ``qdrant/bm25`` encoder: the same sparse vectors as fastembed's ``Qdrant/bm25``
(published outputs), Qdrant's term-frequency formula, and bad options as 400s."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from server.engine.text.bm25 import bm25_encoder, token_index
from server.errors import InvalidTextOptions

NO_LANGUAGE = {"stemmer": {"type": "none"}, "stopwords": {"custom": []}}


def weights(vector: Any) -> dict[int, float]:
    return dict(zip(vector.indices.tolist(), vector.values.tolist(), strict=True))


# Output of fastembed's SparseTextEmbedding("Qdrant/bm25") (English stopwords, Snowball
# stemmer, k=1.2, b=0.75, avg_len=256) on three short documents, as printed in its docs.
FASTEMBED = [
    ("How to request vacation leave?", [2064885619, 1253263062, 1943443462], 1.67868852),
    (
        "Company leave policy explained.",
        [1442710396, 1943443462, 203139330, 1971389377],
        1.67419738,
    ),
    (
        "Guide to submitting a leave request form.",
        [1209733406, 1546460417, 1943443462, 2064885619, 14784032],
        1.66973021,
    ),
]


@pytest.mark.parametrize(("text", "indices", "value"), FASTEMBED)
def test_default_document_vectors_equal_fastembeds(
    text: str, indices: list[int], value: float
) -> None:
    vector = bm25_encoder(None).encode_documents([text])[0]
    assert vector.indices.tolist() == sorted(indices)
    assert vector.values.tolist() == pytest.approx([value] * len(indices), rel=1e-6)


def test_token_index_is_the_absolute_signed_murmur3_of_the_utf8_bytes() -> None:
    # "leav" (the stem of "leave") is the index the three fastembed documents share.
    assert token_index("leav") == 1943443462
    assert 0 <= token_index("мир") < 2**32


def test_document_weight_is_saturated_term_frequency_over_relative_length() -> None:
    encoder = bm25_encoder({**NO_LANGUAGE, "avg_len": 5})
    vector = encoder.encode_documents(["the cat sat on the"])[0]
    # tf=2, len=5, avg_len=5: 2 * 2.2 / (1.2 * (0.25 + 0.75) + 2) = 1.375
    assert weights(vector)[token_index("the")] == pytest.approx(1.375)
    assert weights(vector)[token_index("cat")] == pytest.approx(2.2 / 2.2)


def test_k_b_and_avg_len_options_enter_the_formula() -> None:
    encoder = bm25_encoder({**NO_LANGUAGE, "k": 2.0, "b": 0.5, "avg_len": 10})
    vector = encoder.encode_documents(["a a a b"])[0]
    expected = 3 * 3.0 / (2.0 * (1 - 0.5 + 0.5 * 4 / 10) + 3)
    assert weights(vector)[token_index("a")] == pytest.approx(expected)


def test_a_longer_document_weighs_a_repeated_term_less() -> None:
    encoder = bm25_encoder({**NO_LANGUAGE, "avg_len": 5})
    short, long = encoder.encode_documents(["foo bar foo", "foo bar foo x y z w v u t"])
    assert weights(long)[token_index("foo")] < weights(short)[token_index("foo")]


def test_query_vector_has_each_distinct_token_once_with_weight_one() -> None:
    vector = bm25_encoder(NO_LANGUAGE).encode_queries(["foo bar foo baz bar"])[0]
    assert vector.indices.tolist() == sorted({token_index(t) for t in ("foo", "bar", "baz")})
    assert vector.values.tolist() == [1.0, 1.0, 1.0]


def test_indices_are_sorted_distinct_uint32_and_values_float32() -> None:
    encoder = bm25_encoder(None)
    for vector in encoder.encode_documents(["zeta alpha alpha beta"]) + encoder.encode_queries(
        ["zeta alpha alpha beta"]
    ):
        assert vector.indices.dtype == np.uint32
        assert vector.values.dtype == np.float32
        assert np.all(np.diff(vector.indices.astype(np.int64)) > 0)


def test_text_with_no_tokens_is_an_empty_vector() -> None:
    for vector in bm25_encoder(None).encode_documents(["", "the and of", "!!"]):
        assert (len(vector.indices), len(vector.values)) == (0, 0)


def test_a_batch_encodes_each_document_as_if_alone() -> None:
    encoder = bm25_encoder(None)
    texts = ["Running dogs run", "", "cats", "the dog and the cat ran to the dogs"]
    batch = encoder.encode_documents(texts)
    for text, vector in zip(texts, batch, strict=True):
        alone = encoder.encode_documents([text])[0]
        assert weights(vector) == weights(alone)


def test_language_picks_stopwords_and_stemmer() -> None:
    german = bm25_encoder({"language": "german"}).tokenizer
    assert german.tokenize_doc("die Häuser und Bäume") == ["haus", "baum"]
    none = bm25_encoder({"language": "none"}).tokenizer
    assert none.tokenize_doc("The Runners") == ["the", "runners"]


def test_equal_options_share_one_encoder_whatever_the_key_order() -> None:
    assert bm25_encoder({"k": 1.5, "b": 0.5}) is bm25_encoder({"b": 0.5, "k": 1.5})


@pytest.mark.parametrize(
    "options",
    [
        {"k": -0.1},
        {"k": "1.2"},
        {"k": True},
        {"b": 1.5},
        {"b": -0.5},
        {"avg_len": 0},
        {"avg_len": -3},
        {"language": "klingon"},
        {"language": 7},
        {"tokenizer": "sentencepiece"},
        {"avg_length": 100},
    ],
)
def test_bad_options_are_a_400(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidTextOptions) as raised:
        bm25_encoder(options)
    assert raised.value.status_code == 400
    assert next(iter(options)) in raised.value.message


def test_a_full_token_cache_starts_again_without_losing_a_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import server.engine.text.bm25 as module

    monkeypatch.setattr(module, "CACHE_LIMIT", 2)
    encoder = bm25_encoder({"k": 1.3})
    ids = [token_index(t) for t in ("a", "b", "c")]
    assert encoder.token_ids(["a", "b"]).tolist() == ids[:2]
    assert encoder.token_ids(["a", "b", "c"]).tolist() == ids
