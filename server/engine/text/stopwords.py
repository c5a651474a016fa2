"""Stopword lists by language name, as Qdrant's text index and BM25 name them.

The lists are data files beside this module (``stopword_lists/<language>.txt``, taken from
Qdrant: see ``stopword_lists/README.md`` for their source and licence); each is read once.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_FOLDER = Path(__file__).with_name("stopword_lists")

ISO_ALIASES: dict[str, str] = {
    "ar": "arabic",
    "az": "azerbaijani",
    "eu": "basque",
    "bn": "bengali",
    "ca": "catalan",
    "zh": "chinese",
    "da": "danish",
    "nl": "dutch",
    "en": "english",
    "fi": "finnish",
    "fr": "french",
    "de": "german",
    "el": "greek",
    "he": "hebrew",
    "hi-en": "hinglish",
    "hu": "hungarian",
    "id": "indonesian",
    "it": "italian",
    "jp": "japanese",
    "kk": "kazakh",
    "ne": "nepali",
    "no": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sl": "slovene",
    "es": "spanish",
    "sv": "swedish",
    "tg": "tajik",
    "tr": "turkish",
}
"""Qdrant's ``Language`` aliases (its serde ``alias`` attributes)."""


@cache
def stopword_languages() -> frozenset[str]:
    """The language names that have a stopword list."""
    return frozenset(path.stem for path in _FOLDER.glob("*.txt"))


def stopword_language(name: str) -> str | None:
    """The canonical language name for ``name`` (a name or an ISO alias), None if no
    stopword list exists for it."""
    canonical = ISO_ALIASES.get(name, name)
    return canonical if canonical in stopword_languages() else None


@cache
def language_stopwords(language: str) -> frozenset[str]:
    """The stopwords of one canonical language name (see :func:`stopword_language`)."""
    text = (_FOLDER / f"{language}.txt").read_text(encoding="utf-8")
    return frozenset(word for word in text.splitlines() if word)
