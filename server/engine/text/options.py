"""Text-processing options in Qdrant's wire shape, parsed into one frozen value.

The same options configure Qdrant's full-text payload index (``TextIndexParams``) and its
server-side BM25 (``Bm25Config``)::

    tokenizer      "word" (default) | "whitespace" | "prefix" | "multilingual"
    lowercase      bool, default true
    ascii_folding  bool, default false
    stopwords      a language ("english", or an ISO alias "en")
                   | {"languages": [...], "custom": [...]}
    stemmer        {"type": "snowball", "language": "english"} | {"type": "none"}
    min_token_len, max_token_len   non-negative integers (characters)

A text index has no stopwords and no stemmer unless asked. BM25 also takes ``language``
(default English) which picks the default stopwords and stemmer: see
:func:`parse_text_options`. Every bad value is an :class:`InvalidTextOptions` (400).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from server.engine.text.stopwords import (
    language_stopwords,
    stopword_language,
    stopword_languages,
)
from server.errors import InvalidTextOptions, UnsupportedFeature

TokenizerKind = Literal["word", "whitespace", "prefix", "multilingual"]
TOKENIZERS: tuple[str, ...] = get_args(TokenizerKind)

TEXT_OPTION_KEYS = frozenset(
    {"tokenizer", "lowercase", "ascii_folding", "stopwords", "stemmer"}
    | {"min_token_len", "max_token_len"}
)
"""The keys :func:`parse_text_options` reads; a caller rejects keys outside its own set."""

STEMMER_LANGUAGES: dict[str, str] = {
    "arabic": "ar", "danish": "da", "dutch": "nl", "english": "en", "finnish": "fi",
    "french": "fr", "german": "de", "greek": "el", "hungarian": "hu", "italian": "it",
    "norwegian": "no", "portuguese": "pt", "romanian": "ro", "russian": "ru",
    "spanish": "es", "swedish": "sv", "tamil": "ta", "turkish": "tr",
}  # fmt: skip
"""Snowball languages Quiver stems (name -> Qdrant's ISO alias). Qdrant also lists
Armenian, which the stemming library Quiver shares with Qdrant (rust-stemmers, through
py-rust-stemmers) does not ship yet."""

_STEMMER_ALIASES = {alias: name for name, alias in STEMMER_LANGUAGES.items()}


@dataclass(frozen=True, slots=True)
class TextOptions:
    """How text becomes tokens. ``stopwords`` are already lowercased when ``lowercase``
    is on (Qdrant compares lowercased tokens); ``stemmer`` is a Snowball language."""

    tokenizer: TokenizerKind = "word"
    lowercase: bool = True
    ascii_folding: bool = False
    stopwords: frozenset[str] = frozenset()
    stemmer: str | None = None
    min_token_len: int | None = None
    max_token_len: int | None = None


def parse_text_options(
    params: Mapping[str, Any], *, default_language: str | None = None
) -> TextOptions:
    """The :class:`TextOptions` of ``params`` (the keys in ``TEXT_OPTION_KEYS``; others
    are the caller's). With ``default_language`` (BM25's ``language``), a missing
    ``stopwords`` or ``stemmer`` falls back to that language's list and stemmer, as in
    Qdrant; ``"none"`` or a language without a list or stemmer falls back to none."""
    lowercase = _flag(params, "lowercase", default=True)
    stemmer = _stemmer(params.get("stemmer"), default_language)
    return TextOptions(
        tokenizer=_tokenizer(params.get("tokenizer")),
        lowercase=lowercase,
        ascii_folding=_flag(params, "ascii_folding", default=False),
        stopwords=_stopwords(params.get("stopwords"), default_language, lowercase=lowercase),
        stemmer=stemmer,
        min_token_len=_length(params, "min_token_len"),
        max_token_len=_length(params, "max_token_len"),
    )


def check_language(language: object) -> str | None:
    """BM25's ``language``: a canonical name that has stopwords or a stemmer, or None
    for ``"none"`` (Qdrant's legacy way to turn both off)."""
    if not isinstance(language, str):
        raise InvalidTextOptions(f"`language` must be a string, got {language!r}")
    name = language.lower()
    if name == "none":
        return None
    if name == "armenian" or name == "hy":
        raise UnsupportedFeature("stemming Armenian")
    canonical = stopword_language(name) or _STEMMER_ALIASES.get(name, name)
    if stopword_language(canonical) is None and canonical not in STEMMER_LANGUAGES:
        raise InvalidTextOptions(f"unknown `language` {language!r}; use one of {_languages()}")
    return canonical


def _languages() -> str:
    return ", ".join([*sorted(stopword_languages() | STEMMER_LANGUAGES.keys()), "none"])


def _tokenizer(value: object) -> TokenizerKind:
    if value is None:
        return "word"
    if value not in TOKENIZERS:
        raise InvalidTextOptions(
            f"unknown `tokenizer` {value!r}; use one of {', '.join(TOKENIZERS)}"
        )
    return cast(TokenizerKind, value)


def _flag(params: Mapping[str, Any], key: str, *, default: bool) -> bool:
    value = params.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidTextOptions(f"`{key}` must be true or false, got {value!r}")
    return value


def _length(params: Mapping[str, Any], key: str) -> int | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidTextOptions(f"`{key}` must be a non-negative integer, got {value!r}")
    return value


def _stemmer(value: object, default_language: str | None) -> str | None:
    if value is None:
        return default_language if default_language in STEMMER_LANGUAGES else None
    if not isinstance(value, Mapping) or value.get("type") not in ("snowball", "none"):
        raise InvalidTextOptions(
            '`stemmer` must be {"type": "snowball", "language": ...} or {"type": "none"}, '
            f"got {value!r}"
        )
    if value["type"] == "none":
        _only_keys(value, {"type"}, "stemmer")
        return None
    _only_keys(value, {"type", "language"}, "stemmer")
    return _snowball_language(value.get("language"))


def _snowball_language(language: object) -> str:
    if language in ("armenian", "hy"):
        raise UnsupportedFeature("stemming Armenian")
    if not isinstance(language, str):
        raise InvalidTextOptions(f"`stemmer` language must be a string, got {language!r}")
    name = _STEMMER_ALIASES.get(language, language)
    if name not in STEMMER_LANGUAGES:
        raise InvalidTextOptions(
            f"`stemmer`: no Snowball stemmer for {language!r}; use one of "
            + ", ".join(STEMMER_LANGUAGES)
        )
    return name


def _stopwords(value: object, default_language: str | None, *, lowercase: bool) -> frozenset[str]:
    if value is None:
        found = stopword_language(default_language) if default_language else None
        words = language_stopwords(found) if found else frozenset()
    elif isinstance(value, str):
        words = language_stopwords(_stopword_language(value))
    elif isinstance(value, Mapping):
        words = _stopword_set(value)
    else:
        raise InvalidTextOptions(
            '`stopwords` must be a language or {"languages": [...], "custom": [...]}, '
            f"got {value!r}"
        )
    return frozenset(word.lower() for word in words) if lowercase else words


def _stopword_set(value: Mapping[str, Any]) -> frozenset[str]:
    _only_keys(value, {"languages", "custom"}, "stopwords")
    languages = _string_list(value.get("languages"), "stopwords.languages")
    custom = _string_list(value.get("custom"), "stopwords.custom")
    words: set[str] = set(custom)
    for language in languages:
        words |= language_stopwords(_stopword_language(language))
    return frozenset(words)


def _stopword_language(name: str) -> str:
    found = stopword_language(name)
    if found is None:
        known = ", ".join(sorted(stopword_languages()))
        raise InvalidTextOptions(f"`stopwords`: no list for {name!r}; use one of {known}")
    return found


def _string_list(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidTextOptions(f"`{where}` must be a list of strings, got {value!r}")
    return value


def _only_keys(value: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise InvalidTextOptions(f"unknown key(s) {unknown} in `{where}`")
