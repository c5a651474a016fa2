"""BM25 term weights for Qdrant's ``qdrant/bm25`` model: text → sparse vector.

Byte-compatible with Qdrant's server-side BM25 (``lib/bm25``) and fastembed's ``Bm25``:

- a token's index is MurmurHash3 (32-bit, seed 0) of its UTF-8 bytes, read as a signed
  32-bit integer, absolute value;
- a document's value for a token is its saturated term frequency
  ``tf·(k+1) / (tf + k·(1 - b + b·len/avg_len))`` (``len``: the document's token count);
- a query's value is 1 for each distinct token.

Indices come out sorted and distinct. The inverse document frequency is not here: it
belongs to the collection (a sparse vector with ``"modifier": "idf"``), which knows the
live points. Options (``k``, ``b``, ``avg_len``, ``language`` and the text options of
``server/engine/text/options.py``) are parsed once per distinct options value
(:func:`bm25_encoder`), so the tokenizer's word caches outlive a request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, pairwise
from typing import Any, NamedTuple

import mmh3
import numpy as np
import orjson

from server.engine.text.options import TEXT_OPTION_KEYS, check_language, parse_text_options
from server.engine.text.tokenizer import CACHE_LIMIT, Tokenizer
from server.errors import InvalidTextOptions

BM25_OPTION_KEYS = TEXT_OPTION_KEYS | {"k", "b", "avg_len", "language"}


class SparseEmbedding(NamedTuple):
    """A sparse vector: ``indices`` (uint32, sorted, distinct) and their ``values``."""

    indices: np.ndarray
    values: np.ndarray


@dataclass(frozen=True, slots=True)
class Bm25Params:
    """``k`` saturates term frequency (higher: repeats count more; usually 1.2 to 2);
    ``b`` normalises by length (0: not at all, 1: fully); ``avg_len`` is the expected
    document length in tokens, the length at which normalisation is neutral."""

    k: float = 1.2
    b: float = 0.75
    avg_len: float = 256.0


class Bm25Encoder:
    """Documents and queries to BM25 sparse vectors with one tokenizer and one params."""

    def __init__(self, tokenizer: Tokenizer, params: Bm25Params) -> None:
        self.tokenizer = tokenizer
        self.params = params
        self._ids: dict[str, int] = {}

    def encode_documents(self, texts: Sequence[str]) -> list[SparseEmbedding]:
        """Each text's term weights, computed for the whole batch in a few numpy calls."""
        tokens = self.tokenizer.tokenize_docs(texts)
        lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
        ids = self.token_ids(list(chain.from_iterable(tokens)))
        doc = np.repeat(np.arange(len(tokens), dtype=np.uint64), lengths)
        keys, counts = np.unique((doc << np.uint64(32)) | ids, return_counts=True)
        owners = (keys >> np.uint64(32)).astype(np.int64)
        weights = self._weights(counts.astype(np.float64), lengths[owners].astype(np.float64))
        indices = (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        bounds = np.searchsorted(owners, np.arange(len(tokens) + 1))
        return [
            SparseEmbedding(indices[start:end], weights[start:end])
            for start, end in pairwise(bounds)
        ]

    def encode_queries(self, texts: Sequence[str]) -> list[SparseEmbedding]:
        """Each query's distinct token indices, each with weight 1."""
        out = []
        for tokens in self.tokenizer.tokenize_queries(texts):
            indices = np.unique(self.token_ids(tokens)).astype(np.uint32)
            out.append(SparseEmbedding(indices, np.ones(len(indices), dtype=np.float32)))
        return out

    def token_ids(self, tokens: list[str]) -> np.ndarray:
        """The index of each token (uint64 for the key arithmetic; each fits in u32)."""
        ids = self._ids
        distinct = set(tokens)
        missing = distinct.difference(ids)
        if missing:
            if len(ids) + len(missing) > CACHE_LIMIT:  # start again, with these tokens
                ids, missing = {}, distinct
                self._ids = ids
            ids.update((token, token_index(token)) for token in missing)
        return np.fromiter(map(ids.__getitem__, tokens), dtype=np.uint64, count=len(tokens))

    def _weights(self, tf: np.ndarray, length: np.ndarray) -> np.ndarray:
        k, b, avg_len = self.params.k, self.params.b, self.params.avg_len
        weights: np.ndarray = tf * (k + 1.0) / (k * (1.0 - b + b * length / avg_len) + tf)
        return weights.astype(np.float32)


def token_index(token: str) -> int:
    """Qdrant's and fastembed's token index: ``|murmur3_32(utf8(token)) as i32|``."""
    try:
        return abs(mmh3.hash(token, 0, signed=True))
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape: hash its bytes as sent
        return abs(mmh3.hash(token.encode("utf-8", "surrogatepass"), 0, signed=True))


def bm25_encoder(options: Mapping[str, Any] | None) -> Bm25Encoder:
    """The encoder for a document's ``options`` (None: the defaults), shared by every
    request with equal options. Bad options are an :class:`InvalidTextOptions` (400)."""
    key = orjson.dumps(options or {}, option=orjson.OPT_SORT_KEYS)
    return _encoder(key)


@lru_cache(maxsize=64)
def _encoder(key: bytes) -> Bm25Encoder:
    options = orjson.loads(key)
    if not isinstance(options, dict):
        raise InvalidTextOptions(f"BM25 options must be an object, got {options!r}")
    unknown = sorted(set(options) - BM25_OPTION_KEYS)
    if unknown:
        allowed = ", ".join(sorted(BM25_OPTION_KEYS))
        raise InvalidTextOptions(f"unknown BM25 option(s) {unknown}; allowed: {allowed}")
    language = check_language(options.get("language") or "english")
    text = parse_text_options(options, default_language=language)
    return Bm25Encoder(Tokenizer(text), _params(options))


def _params(options: Mapping[str, Any]) -> Bm25Params:
    k = _number(options, "k", 1.2)
    b = _number(options, "b", 0.75)
    avg_len = _number(options, "avg_len", 256.0)
    if k < 0:
        raise InvalidTextOptions(f"BM25 `k` must be >= 0, got {k}")
    if not 0.0 <= b <= 1.0:
        raise InvalidTextOptions(f"BM25 `b` must be within [0, 1], got {b}")
    if avg_len <= 0:
        raise InvalidTextOptions(f"BM25 `avg_len` must be > 0, got {avg_len}")
    return Bm25Params(k=k, b=b, avg_len=avg_len)


def _number(options: Mapping[str, Any], key: str, default: float) -> float:
    value = options.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidTextOptions(f"BM25 `{key}` must be a finite number, got {value!r}")
    return float(value)
