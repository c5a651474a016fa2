"""The full-text payload index (Qdrant's ``text`` field schema) and its filter semantics.

A text index tokenizes every string a point holds at its field with the index's own
options (``server/engine/text``: the tokenizer BM25 uses, with Qdrant's tokenizers,
stopword lists, Snowball stemmers and ASCII folding) and keeps an inverted index
``token -> BitMap of rows``. A point's strings (an array of them included) form one
document: its token set is the union over its strings, as in Qdrant's index.

On a field with a text index, the conditions ``match: {text}`` (every query token),
``match: {text_any}`` (some query token) and ``match: {phrase}`` (the query tokens
consecutively, in order) tokenize the query the same way; ``bind_text`` turns such a
condition into a :class:`~server.engine.filters.TextMatch` that carries the query's
tokens, so that any re-check of a payload uses this tokenizer too. Without an index
the filters keep the default word tokenizer (``field_matchers``), as qdrant-client's
local mode and Qdrant do.

``text`` and ``text_any`` are answered exactly from the postings (one bitmap
intersection or union). ``phrase`` needs token positions: with ``phrase_matching``
on, the index keeps each row's token sequence and answers exactly; with it off the
postings give the rows holding every phrase token and those are re-checked against
their payloads (still right, only slower: Qdrant refuses nothing either).

A query that tokenizes to nothing (only stopwords, say) matches no point.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pyroaring import BitMap

from server.engine.field_matchers import (
    MatchPhrase,
    MatchText,
    MatchTextAny,
    ValueTest,
    contains_phrase,
)
from server.engine.filters import FieldCondition, TextMatch, TextMode
from server.engine.payload_index import Bounds, _InvertedIndex, _kind, _nothing, _union
from server.engine.text.options import TEXT_OPTION_KEYS, TextOptions, parse_text_options
from server.engine.text.tokenizer import Tokenizer
from server.errors import InvalidTextOptions

TEXT_INDEX_KEYS = TEXT_OPTION_KEYS | {"type", "phrase_matching", "on_disk", "memory", "enable_hnsw"}
"""The keys of Qdrant's ``TextIndexParams`` Quiver reads (``on_disk``, or ``memory``
which overrides it, keeps the token postings in file maps,
``payload_index_disk.DiskTextIndex``; ``enable_hnsw`` is accepted and only stored)."""

_TEXT_TESTS = (MatchText, MatchTextAny, MatchPhrase)


@dataclass(frozen=True, slots=True)
class TextIndexParams:
    options: TextOptions
    phrase_matching: bool = False


def parse_text_index(schema: Mapping[str, Any]) -> TextIndexParams:
    """A ``text`` field_schema, validated (a 400 naming the bad option)."""
    unknown = sorted(set(schema) - TEXT_INDEX_KEYS)
    if unknown:
        raise InvalidTextOptions(f"unknown key(s) {unknown} in a text index `field_schema`")
    phrase = schema.get("phrase_matching")
    if phrase is not None and not isinstance(phrase, bool):
        raise InvalidTextOptions(f"`phrase_matching` must be true or false, got {phrase!r}")
    return TextIndexParams(parse_text_options(schema), bool(phrase))


@lru_cache(maxsize=64)
def tokenizer_for(options: TextOptions) -> Tokenizer:
    """One tokenizer per options value, shared by every segment (its word caches are
    what makes tokenizing fast)."""
    return Tokenizer(options)


def document_tokens(tokenizer: Tokenizer, texts: Sequence[str]) -> list[str]:
    """The token sequence of one point's strings, in order (one document)."""
    return [token for tokens in tokenizer.tokenize_docs(texts) for token in tokens]


class TextIndex(_InvertedIndex):
    """Inverted index over the tokens of a string field (see the module docstring)."""

    type = "text"

    def __init__(self, field: str, params: TextIndexParams) -> None:
        super().__init__(field)
        self.params = params
        self.tokenizer = tokenizer_for(params.options)
        self._documents: dict[int, tuple[str, ...]] | None = {} if params.phrase_matching else None

    def _key(self, value: Any) -> Any:
        raise AssertionError("a text index converts whole rows (see _convert)")

    def _convert(self, values: list[Any]) -> tuple[list[Any], list[str]]:
        texts = [value for value in values if isinstance(value, str)]
        flags = [f"other_{_kind(value)}" for value in values if not isinstance(value, str)]
        tokens = document_tokens(self.tokenizer, texts) if texts else []
        return list(dict.fromkeys(tokens)), flags

    # -- the documents kept for phrases ---------------------------------------------

    def _phrase_document(self, payload: dict[str, Any]) -> tuple[str, ...]:
        texts = [v for v in self.path.values(payload) if isinstance(v, str)]
        words = [self.tokenizer.tokenize_words([text])[0] for text in texts]
        return tuple(word for text_words in words for word in text_words)

    def add(self, row: int, payload: dict[str, Any]) -> None:
        super().add(row, payload)
        if self._documents is not None:
            self._documents[row] = self._phrase_document(payload)

    def remove(self, row: int, payload: dict[str, Any]) -> None:
        super().remove(row, payload)
        if self._documents is not None:
            self._documents.pop(row, None)

    def move(self, src_row: int, dst_row: int, payload: dict[str, Any]) -> None:
        super().move(src_row, dst_row, payload)
        if self._documents is not None and src_row != dst_row:
            self._documents[dst_row] = self._documents.pop(src_row, ())

    def build(self, payloads: Sequence[dict[str, Any]]) -> None:
        super().build(payloads)
        if self._documents is not None:
            self._documents = {row: self._phrase_document(p) for row, p in enumerate(payloads)}

    def _keys_bytes(self) -> int:
        documents = self._documents or {}
        kept = sys.getsizeof(documents) + sum(map(sys.getsizeof, documents.values()))
        return super()._keys_bytes() + kept

    # -- answering ------------------------------------------------------------------

    def answers(self, test: ValueTest) -> bool:
        """Only text conditions read this index (Qdrant's full-text index answers
        nothing else); others scan payloads."""
        return False

    def bind_text(self, condition: FieldCondition) -> TextMatch | None:
        """``condition`` with its query tokenized by this index, if it is a text one."""
        test = condition.test
        if not isinstance(test, _TEXT_TESTS):
            return None
        mode: TextMode
        if isinstance(test, MatchText):
            mode, query = "text", test.text
        elif isinstance(test, MatchTextAny):
            mode, query = "text_any", test.text_any
        else:
            mode, query = "phrase", test.phrase
        tokens = tuple(self.tokenizer.tokenize_query(query))
        words = tuple(self.tokenizer.tokenize_words([query])[0]) if mode == "phrase" else ()
        return TextMatch(condition.key, condition.path, mode, tokens, words, self._document_of)

    def _document_of(self, texts: Sequence[str]) -> tuple[set[str], list[str]]:
        """(token set, word sequence) of a point's strings, for re-checks."""
        tokens = set(document_tokens(self.tokenizer, texts))
        words = [w for words in self.tokenizer.tokenize_words(list(texts)) for w in words]
        return tokens, words

    def match_text(self, condition: TextMatch) -> Bounds:
        tokens = condition.tokens
        if not tokens or (condition.mode == "phrase" and not condition.words):
            return _nothing()
        # through _rows_of, so an on-disk index (payload_index_disk) adds its mapped postings
        found = [rows for token in set(tokens) if (rows := self._rows_of([token]))]
        if condition.mode == "text_any":
            return self._exact_of(_union(found))
        if len(found) < len(set(tokens)):
            return _nothing()
        rows = BitMap.intersection(*found)
        if condition.mode == "text" or (len(condition.words) == 1 and tokens == condition.words):
            return self._exact_of(rows)
        if self._documents is None:
            return BitMap(), rows  # phrase without positions: payloads re-check these
        documents = self._documents
        phrase = list(condition.words)
        return self._exact_of(
            BitMap(row for row in rows if contains_phrase(list(documents.get(row, ())), phrase))
        )

    @staticmethod
    def _exact_of(rows: BitMap) -> Bounds:
        return rows, rows.copy()

    def match(self, test: ValueTest) -> Bounds:
        return BitMap(), self.rows_with_value()
