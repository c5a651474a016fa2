"""Keyword and hybrid search data: Debian descriptions, synopsis queries, BM25 references.

The keyword and hybrid benchmarks share the corpus `text_embeddings.py` builds: the long
descriptions of the base set are the documents (point `i` is base row `i`), and the
*synopsis of a base package* is a query whose one relevant document is that package's own
long description. The query packages are a seeded sample of the base rows.

BM25 is computed the way Qdrant's `qdrant/bm25` model does, on both sides of a comparison:

* documents: `tf * (k + 1) / (tf + k * (1 - b + b * len / avg_len))` per term, where `len`
  is the document's token count after the tokenizer (stopwords dropped, stems);
* the `idf` modifier of the sparse vector: `ln(1 + (N - n + 0.5) / (n + 0.5))` over the
  points that have the vector;
* queries: every distinct query token weighs 1.

`bm25s` computes exactly this with `method="atire"` (the `(k + 1)` numerator) and
`idf_method="lucene"` (the `1 +` inside the log), given the same tokens and
`avg_len` = the corpus's real average length, so the two top-10 lists can be compared
exactly (up to ties). The terms come from Quiver's own tokenizer and token ids, called
in-process (`QuiverTerms`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import text_embeddings as te

REPO_ROOT = Path(__file__).resolve().parent.parent
QUERY_SEED = 11
BASE_SIZE = 56_000  # the base set `make` builds (bench/text_embeddings.py build --base 56000)
BM25_MODEL = "qdrant/bm25"
K1 = 1.2
B = 0.75


@dataclass(frozen=True)
class KeywordCorpus:
    """Documents (`docs[i]` is point `i`) and queries (`queries[q]`'s relevant doc is
    `relevant[q]`)."""

    docs: list[str]
    queries: list[str]
    relevant: np.ndarray
    packages: list[str]

    @property
    def n_docs(self) -> int:
        return len(self.docs)


def load_corpus(n_docs: int, n_queries: int) -> KeywordCorpus:
    """The first `n_docs` base descriptions and the synopses of `n_queries` of them.

    Reads the texts of the embedding cache when it is built (so the rows match the dense
    vectors), else parses apt's lists directly (keyword search needs no embeddings)."""
    try:
        base = te.load_texts()["base"]
    except FileNotFoundError:
        base = te.split_corpus(te.read_corpus(), BASE_SIZE, 2000)["base"]
    if not 0 < n_docs <= len(base):
        raise SystemExit(f"--docs must be in 1..{len(base)}")
    base = base[:n_docs]
    rows = np.sort(
        np.random.default_rng(QUERY_SEED).choice(n_docs, min(n_queries, n_docs), replace=False)
    )
    return KeywordCorpus(
        docs=[record.long for record in base],
        queries=[base[row].synopsis for row in rows],
        relevant=rows.astype(np.int64),
        packages=[record.package for record in base],
    )


# --------------------------------------------------------------------------- Quiver's tokenizer


class QuiverTerms:
    """Quiver's BM25 terms, in-process: its tokenizer, then each token's index (the
    MurmurHash3 id the server stores), written as a string for bm25s. Using the ids, not
    the words, makes two words whose ids collide one term on both sides, as on the server.

    The encoder is the one the server builds for the same text options (the defaults:
    English stopwords and stemmer); `k`, `b` and `avg_len` do not change the tokens."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        # The checkout's own encoder, the code its server runs (an installed `server`
        # package may be another checkout's).
        sys.path.insert(0, str(REPO_ROOT))
        from server.engine.text.bm25 import bm25_encoder

        self.encoder = bm25_encoder(options or {})

    def docs(self, texts: Sequence[str]) -> list[list[str]]:
        return [self._ids(tokens) for tokens in self.encoder.tokenizer.tokenize_docs(texts)]

    def queries(self, texts: Sequence[str]) -> list[list[str]]:
        return [self._ids(tokens) for tokens in self.encoder.tokenizer.tokenize_queries(texts)]

    def _ids(self, tokens: list[str]) -> list[str]:
        return [str(index) for index in self.encoder.token_ids(tokens).tolist()]


def average_length(tokens: Sequence[Sequence[str]]) -> float:
    """Mean token count per document: the `avg_len` both sides use."""
    return float(np.mean([len(doc) for doc in tokens])) if tokens else 0.0


def document(text: str, options: dict[str, Any]) -> dict[str, Any]:
    """A BM25 document as Qdrant's inference API takes it (a point's vector or a query)."""
    return {"text": text, "model": BM25_MODEL, "options": options}


# --------------------------------------------------------------------------- bm25s reference


def bm25s_index(doc_tokens: Sequence[Sequence[str]], backend: str = "numba") -> Any:
    """A `bm25s` index whose scores equal Qdrant's BM25 with the idf modifier. `backend`
    "numba" is bm25s's fast path (JIT-compiled scoring and top-k), "numpy" its default."""
    import bm25s

    retriever = bm25s.BM25(method="atire", idf_method="lucene", k1=K1, b=B, backend=backend)
    retriever.index([list(doc) for doc in doc_tokens], show_progress=False)
    return retriever


def bm25s_search(
    retriever: Any, query_tokens: Sequence[Sequence[str]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k ids and scores; each query's distinct tokens, as Qdrant weighs them (once).

    Unknown tokens are dropped first (bm25s refuses a query of only unknown tokens); a
    query left empty gets no answer (-1), as the server returns nothing for it."""
    vocab = retriever.vocab_dict
    kept = [sorted({t for t in tokens if t in vocab}) for tokens in query_tokens]
    ids = np.full((len(kept), k), -1, dtype=np.int64)
    scores = np.zeros((len(kept), k), dtype=np.float32)
    rows = [row for row, tokens in enumerate(kept) if tokens]
    if rows:
        found, found_scores = retriever.retrieve(
            [kept[row] for row in rows], k=k, show_progress=False, n_threads=0
        )
        ids[rows] = found
        scores[rows] = found_scores
    ids[scores <= 0] = -1  # bm25s pads with zero-score documents, the server with nothing
    return ids, scores


# --------------------------------------------------------------------------- relevance


def relevance_metrics(found: np.ndarray, relevant: np.ndarray, k: int = 10) -> dict[str, float]:
    """recall@k and nDCG@k with one relevant document per query (its rank r gives 1/log2(r+1))."""
    hits = found[:, :k] == relevant[:, None]
    ranks = np.argmax(hits, axis=1)
    found_any = hits.any(axis=1)
    gains = np.where(found_any, 1.0 / np.log2(ranks + 2.0), 0.0)
    return {f"recall@{k}": float(np.mean(found_any)), f"ndcg@{k}": float(np.mean(gains))}
