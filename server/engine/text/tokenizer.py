"""Text to tokens, as Qdrant's full-text tokenizer does it (shared by BM25 and, later,
the full-text payload index; nothing here knows about either).

A text is split into raw words (``word`` and ``prefix``: maximal runs of Unicode
alphanumerics, as Rust's ``char::is_alphanumeric``; ``whitespace``: runs of non-space);
each raw word is then processed as in Qdrant's ``TokensProcessor``: ASCII folding →
lowercase → stopword filter → Snowball stem → length filter (in characters). The
``prefix`` tokenizer indexes every prefix of a processed word (from ``min_token_len`` or
1 up to ``max_token_len`` characters) and queries with the whole word cut at
``max_token_len``, stemmed but not stopword-filtered, as Qdrant does.

``multilingual`` is an approximation: Qdrant segments with charabia's dictionaries
(jieba, lindera), which Quiver does not ship; Quiver splits Han and kana into one token
per character and everything else as ``word`` does, and drops tokens with no letter.
Tokens of Latin, Cyrillic, Greek ... text match Qdrant's; CJK and Thai tokens do not.

Speed: a word's processing is cached (raw word → processed word), so a text costs one
regex scan and one dict lookup per word; words not seen before are processed in one
batch per call (one ``stem_words`` call into the Rust stemmer for the whole batch).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from itertools import chain

import py_rust_stemmers
import regex

from server.engine.text.folding import fold_to_ascii
from server.engine.text.options import TextOptions

_WORD = regex.compile(r"[\p{Alphabetic}\p{N}]+")
_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")  # the same runs on ASCII text, in the faster re
_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}"
_MULTILINGUAL = regex.compile(rf"[{_CJK}]|(?:(?![{_CJK}])[\p{{Alphabetic}}\p{{N}}])+")
_LETTER = regex.compile(r"\p{Alphabetic}")

CACHE_LIMIT = 1 << 20
"""Processed words kept per tokenizer; past it the cache starts again (memory bound)."""

Words = dict[str, str | None]
"""raw word -> processed word, None when the word is dropped (stopword, length)."""


class Tokenizer:
    """Tokens of texts under one :class:`TextOptions`. Thread-safe; keep one per
    options value (its caches are what makes it fast)."""

    def __init__(self, options: TextOptions) -> None:
        self.options = options
        self._stemmer = (
            py_rust_stemmers.SnowballStemmer(options.stemmer) if options.stemmer else None
        )
        self._split = _splitter(options.tokenizer)
        self._doc_words: Words = {}
        self._query_words: Words = {}
        self._prefixes: dict[str, tuple[str, ...]] = {}

    def tokenize_doc(self, text: str) -> list[str]:
        """The tokens a stored document is indexed with."""
        return self.tokenize_docs([text])[0]

    def tokenize_query(self, text: str) -> list[str]:
        """The tokens a query searches with."""
        return self.tokenize_queries([text])[0]

    def tokenize_docs(self, texts: Sequence[str]) -> list[list[str]]:
        """:meth:`tokenize_doc` of each text, new words processed in one batch."""
        raw = [self._split(text) for text in texts]
        words = self._processed(raw, for_query=False)
        if self.options.tokenizer != "prefix":
            return words
        return [self._with_prefixes(doc) for doc in words]

    def tokenize_words(self, texts: Sequence[str]) -> list[list[str]]:
        """The processed words of each text in order, without ``prefix``'s extra
        prefixes (a phrase compares these word sequences)."""
        return self._processed([self._split(text) for text in texts], for_query=False)

    def tokenize_queries(self, texts: Sequence[str]) -> list[list[str]]:
        """:meth:`tokenize_query` of each text, new words processed in one batch."""
        raw = [self._split(text) for text in texts]
        return self._processed(raw, for_query=self.options.tokenizer == "prefix")

    def _processed(self, raw: list[list[str]], *, for_query: bool) -> list[list[str]]:
        cache = self._query_words if for_query else self._doc_words
        words = set(chain.from_iterable(raw))
        missing = words.difference(cache)
        if missing:
            if len(cache) + len(missing) > CACHE_LIMIT:  # start again, with this batch's words
                cache, missing = {}, words
                if for_query:
                    self._query_words = cache
                else:
                    self._doc_words = cache
            batch = list(missing)
            process = self._process_query_words if for_query else self._process_words
            cache.update(zip(batch, process(batch), strict=True))
        get = cache.__getitem__
        return [[word for word in map(get, doc) if word is not None] for doc in raw]

    def _process_words(self, raw: list[str]) -> list[str | None]:
        """Qdrant's ``TokensProcessor.process_token`` over a batch of raw words."""
        options = self.options
        words = self._normalised(raw)
        keep = [i for i, word in enumerate(words) if word and word not in options.stopwords]
        if options.tokenizer == "multilingual":
            keep = [i for i in keep if _LETTER.search(words[i])]
        stemmed = self._stem([words[i] for i in keep])
        out: list[str | None] = [None] * len(raw)
        longest = None if options.tokenizer == "prefix" else options.max_token_len
        for i, word in zip(keep, stemmed, strict=True):
            if _fits(word, options.min_token_len, longest):
                out[i] = word
        return out

    def _process_query_words(self, raw: list[str]) -> list[str | None]:
        """A prefix query: no stopword filter; words shorter than ``min_token_len``
        dropped (no document has them), longer ones cut at ``max_token_len``."""
        options = self.options
        stemmed = self._stem(self._normalised(raw))
        cut = options.max_token_len
        return [
            word[:cut] if _fits(word, options.min_token_len, None) else None for word in stemmed
        ]

    def _normalised(self, raw: list[str]) -> list[str]:
        words = [fold_to_ascii(word) for word in raw] if self.options.ascii_folding else raw
        return [word.lower() for word in words] if self.options.lowercase else words

    def _stem(self, words: list[str]) -> list[str]:
        if self._stemmer is None or not words:
            return words
        stemmed: list[str] = self._stemmer.stem_words(words)
        return stemmed

    def _with_prefixes(self, words: list[str]) -> list[str]:
        cache = self._prefixes
        if len(cache) > CACHE_LIMIT:
            cache = self._prefixes = {}
        out: list[str] = []
        for word in words:
            prefixes = cache.get(word)
            if prefixes is None:
                prefixes = cache[word] = self._prefixes_of(word)
            out.extend(prefixes)
        return out

    def _prefixes_of(self, word: str) -> tuple[str, ...]:
        """Every prefix of ``word`` from ``min_token_len`` (or 1) characters up to
        ``max_token_len``, the word itself last when it is shorter (Qdrant's n-grams)."""
        shortest = self.options.min_token_len if self.options.min_token_len is not None else 1
        longest = self.options.max_token_len
        top = len(word) if longest is None else min(len(word), longest)
        prefixes = [word[:n] for n in range(shortest, top + 1) if n < len(word)]
        if longest is None or len(word) <= longest:
            prefixes.append(word)
        return tuple(prefixes)


def _fits(word: str, shortest: int | None, longest: int | None) -> bool:
    if shortest is not None and len(word) < shortest:
        return False
    return longest is None or len(word) <= longest


def _splitter(kind: str) -> Callable[[str], list[str]]:
    if kind == "whitespace":
        return str.split
    if kind == "multilingual":
        return _MULTILINGUAL.findall
    return _words


def _words(text: str) -> list[str]:
    return _ASCII_WORD.findall(text) if text.isascii() else _WORD.findall(text)
