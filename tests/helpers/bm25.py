"""A BM25 written out independently of the server's (numpy and Qdrant's idf formula), and
a small corpus to rank with it: what the BM25 API and client tests compare against."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from server.engine.text.bm25 import bm25_encoder

K, B, AVG_LEN = 1.2, 0.75, 256.0
MODEL = "qdrant/bm25"

CORPUS = {
    1: "The quick brown fox jumps over the lazy dog",
    2: "A lazy dog sleeps all day in the sun",
    3: "Foxes are quick and clever animals that hunt at night",
    4: "Dogs and foxes are related canine animals",
    5: "The sun rises in the east and sets in the west",
    6: "Quick sort is a fast sorting algorithm",
    7: "Brown bears and brown foxes live in the forest",
    8: "Vector databases search embeddings quickly",
    9: "Keyword search ranks documents by BM25 term weights",
    10: "The forest at night is quiet and dark",
}
QUERIES = ["quick fox", "lazy dogs in the sun", "brown forest animals", "bm25 search", "night"]


def reference(corpus: dict[int, str], query: str) -> dict[int, float]:
    """BM25 of every live document for ``query``: the tokens are the server's (the
    tokenizer is not what is under test here), the arithmetic is written out again."""
    tokenizer = bm25_encoder(None).tokenizer
    docs = {i: Counter(tokenizer.tokenize_doc(text)) for i, text in corpus.items()}
    n_docs = len(docs)
    scores: dict[int, float] = {}
    for term in set(tokenizer.tokenize_query(query)):
        having = [i for i, counts in docs.items() if counts[term] > 0]
        idf = math.log(1 + (n_docs - len(having) + 0.5) / (len(having) + 0.5))
        for i in having:
            tf, length = docs[i][term], sum(docs[i].values())
            weight = np.float32(tf * (K + 1) / (tf + K * (1 - B + B * length / AVG_LEN)))
            scores[i] = scores.get(i, 0.0) + idf * float(weight)
    return scores
