"""The text tokenizer: Qdrant's tokenizer options, token for token (the expectations are
the ones Qdrant's own tokenizer tests state), and bad options as 400s."""

from __future__ import annotations

from typing import Any

import pytest

from server.engine.text.options import TextOptions, parse_text_options
from server.engine.text.tokenizer import Tokenizer
from server.errors import BadRequest, InvalidTextOptions, UnsupportedFeature


def tokenizer(**params: Any) -> Tokenizer:
    return Tokenizer(parse_text_options(params))


def test_word_tokenizer_splits_on_every_non_alphanumeric_and_lowercases() -> None:
    assert tokenizer().tokenize_doc("hello, world! Привет, мир!") == [
        "hello",
        "world",
        "привет",
        "мир",
    ]


def test_word_tokenizer_treats_underscore_as_a_separator_and_keeps_digits() -> None:
    assert tokenizer().tokenize_doc("snake_case v2 3.14") == ["snake", "case", "v2", "3", "14"]


def test_lowercase_false_keeps_case() -> None:
    assert tokenizer(lowercase=False).tokenize_doc("Hello, Мир!") == ["Hello", "Мир"]


def test_whitespace_tokenizer_keeps_punctuation() -> None:
    assert tokenizer(tokenizer="whitespace").tokenize_doc("Hello,  World!\tok") == [
        "hello,",
        "world!",
        "ok",
    ]


def test_language_stopwords_are_dropped_by_name_or_iso_alias() -> None:
    text = "The cat and the hat"
    assert tokenizer(stopwords="english").tokenize_doc(text) == ["cat", "hat"]
    assert tokenizer(stopwords="en").tokenize_doc(text) == ["cat", "hat"]


def test_stopword_set_merges_languages_and_custom_words_case_insensitively() -> None:
    options = {"languages": ["english"], "custom": ["Hat"]}
    assert tokenizer(stopwords=options).tokenize_doc("The cat and the HAT") == ["cat"]


def test_stopwords_match_exact_case_when_lowercase_is_off() -> None:
    words = tokenizer(lowercase=False, stopwords={"custom": ["Hello"]})
    assert words.tokenize_doc("Hello hello HELLO") == ["hello", "HELLO"]


def test_snowball_stemmer_reduces_words_to_their_stem() -> None:
    words = tokenizer(stemmer={"type": "snowball", "language": "english"})
    assert words.tokenize_doc("running runs easily") == ["run", "run", "easili"]


def test_stemmer_accepts_an_iso_alias() -> None:
    words = tokenizer(stemmer={"type": "snowball", "language": "ru"})
    assert words.tokenize_doc("книги") == ["книг"]


def test_token_length_limits_count_characters_not_bytes() -> None:
    words = tokenizer(min_token_len=3, max_token_len=4)
    assert words.tokenize_doc("a ab мир мирок hello four") == ["мир", "four"]


def test_prefix_tokenizer_indexes_every_prefix_up_to_max_token_len() -> None:
    words = tokenizer(tokenizer="prefix", min_token_len=1, max_token_len=4)
    assert words.tokenize_doc("hello, мир!") == ["h", "he", "hel", "hell", "м", "ми", "мир"]


def test_prefix_query_is_the_whole_word_cut_at_max_token_len() -> None:
    words = tokenizer(tokenizer="prefix", max_token_len=4)
    assert words.tokenize_query("hello, мир!") == ["hell", "мир"]


def test_prefix_query_keeps_stopwords_so_partial_words_still_match() -> None:
    words = tokenizer(tokenizer="prefix", stopwords="english")
    assert words.tokenize_doc("the theory") == ["t", "th", "the", "theo", "theor", "theory"]
    assert words.tokenize_query("the") == ["the"]


def test_prefix_query_drops_words_shorter_than_min_token_len() -> None:
    words = tokenizer(tokenizer="prefix", min_token_len=3)
    assert words.tokenize_query("ab abc") == ["abc"]


def test_ascii_folding_strips_accents_before_lowercasing() -> None:
    words = tokenizer(ascii_folding=True)
    assert words.tokenize_doc("Ação CAFÉ naïve Straße Łódź") == [
        "acao",
        "cafe",
        "naive",
        "strasse",
        "lodz",
    ]


def test_ascii_folding_leaves_other_scripts_alone() -> None:
    assert tokenizer(ascii_folding=True).tokenize_doc("Привет αβγ") == ["привет", "αβγ"]


def test_multilingual_splits_han_and_kana_per_character_and_drops_bare_numbers() -> None:
    words = tokenizer(tokenizer="multilingual")
    assert words.tokenize_doc("本日の日付 Hello 2024") == ["本", "日", "の", "日", "付", "hello"]


def test_batch_tokenizing_equals_one_text_at_a_time() -> None:
    words = tokenizer(stopwords="english", stemmer={"type": "snowball", "language": "english"})
    texts = ["The runners were running", "", "Runs of the mill", "running"]
    assert words.tokenize_docs(texts) == [words.tokenize_doc(text) for text in texts]
    assert words.tokenize_queries(texts) == [words.tokenize_query(text) for text in texts]


def test_defaults_have_no_stopwords_and_no_stemmer() -> None:
    assert parse_text_options({}) == TextOptions()


def test_a_default_language_brings_its_stopwords_and_stemmer() -> None:
    options = parse_text_options({}, default_language="german")
    assert options.stemmer == "german"
    assert "und" in options.stopwords


def test_explicit_options_override_the_default_language() -> None:
    options = parse_text_options(
        {"stemmer": {"type": "none"}, "stopwords": {"custom": ["x"]}}, default_language="english"
    )
    assert (options.stemmer, options.stopwords) == (None, frozenset({"x"}))


@pytest.mark.parametrize(
    "params",
    [
        {"tokenizer": "code"},
        {"tokenizer": 3},
        {"lowercase": "yes"},
        {"ascii_folding": 1},
        {"min_token_len": -1},
        {"max_token_len": 2.5},
        {"min_token_len": True},
        {"stopwords": "klingon"},
        {"stopwords": 5},
        {"stopwords": {"languages": "english"}},
        {"stopwords": {"custom": [1, 2]}},
        {"stopwords": {"language": ["english"]}},
        {"stemmer": "english"},
        {"stemmer": {"type": "porter"}},
        {"stemmer": {"type": "snowball", "language": "klingon"}},
        {"stemmer": {"type": "snowball"}},
        {"stemmer": {"type": "none", "language": "english"}},
    ],
)
def test_bad_options_are_a_400_naming_the_option(params: dict[str, Any]) -> None:
    with pytest.raises(InvalidTextOptions) as raised:
        parse_text_options(params)
    assert raised.value.status_code == 400
    assert next(iter(params)) in raised.value.message


def test_armenian_stemming_is_named_as_unsupported() -> None:
    with pytest.raises(UnsupportedFeature) as raised:
        parse_text_options({"stemmer": {"type": "snowball", "language": "armenian"}})
    assert isinstance(raised.value, BadRequest)
    assert "Armenian" in raised.value.message


def test_the_ascii_fast_path_splits_as_the_unicode_pattern_does() -> None:
    from server.engine.text.tokenizer import _ASCII_WORD, _WORD

    text = "".join(chr(code) for code in range(128)) + " snake_case x1 3.14 don't"
    assert _ASCII_WORD.findall(text) == _WORD.findall(text)


def test_a_full_word_cache_starts_again_without_losing_a_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import server.engine.text.tokenizer as module

    monkeypatch.setattr(module, "CACHE_LIMIT", 3)
    words = tokenizer(stemmer={"type": "snowball", "language": "english"})
    assert words.tokenize_docs(["cats dogs", "cats"]) == [["cat", "dog"], ["cat"]]
    assert words.tokenize_docs(["cats birds fishes"]) == [["cat", "bird", "fish"]]
    assert words.tokenize_doc("dogs cats") == ["dog", "cat"]
