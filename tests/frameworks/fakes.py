"""Deterministic fake embeddings and a small corpus, shared by every framework scenario.

No model, no network: a text's dense vector is its bag of words hashed into ``DIM``
buckets plus a small noise seeded by the text itself (so no two texts, and no two
scores, tie and the order is well defined), normalised; its sparse vector maps each
token to a stable 32-bit hash with its count times a weight drawn from the token's hash,
scaled by the text's length (every corpus text has a different number of words, so two
texts sharing words still score differently). Texts sharing words are near in both.
"""

from __future__ import annotations

import math
import random
import re
import zlib

DIM = 64
NOISE = 0.05
TOKEN = re.compile(r"[a-z0-9]+")

CORPUS: list[str] = [
    "apples and pears grow in the orchard behind the old farm house",
    "the python interpreter compiles source code to bytecode before running it",
    "football fans filled the stadium for the final match of the season on sunday",
    "berlin is the capital of germany and its largest city",
    "a ripe banana is sweet and yellow while a green one is starchy",
    "rust programs manage memory with ownership and borrowing rules instead of a tracing garbage"
    " collector",
    "tennis player won the match in straight sets",
    "paris has museums bridges and cafes along the river seine and the eiffel tower above them",
    "orange juice is squeezed from fresh oranges every morning",
    "sql databases store rows in tables and answer queries quickly with the help of sorted btree"
    " indexes",
    "a marathon runner raced through the city",
    "tokyo is a huge city with trains that run exactly on time every single day of the year",
]
"""Four topics (fruit, programming, sport, cities), three texts each, no two of the same length."""

TOPICS: list[str] = ["fruit", "code", "sport", "city"] * 3


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def token_index(token: str) -> int:
    """A stable index below 2**32 (Python's ``hash`` of a str changes per process)."""
    return zlib.crc32(token.encode())


def dense(text: str) -> list[float]:
    """Unit-length bag of hashed words plus text-seeded noise: overlap means similarity."""
    rng = random.Random(zlib.crc32(text.encode()))
    vector = [NOISE * rng.uniform(-1.0, 1.0) for _ in range(DIM)]
    for token in tokens(text):
        vector[token_index(token) % DIM] += 1.0
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


def sparse(text: str) -> tuple[list[int], list[float]]:
    """Token hashes (sorted, unique) with weighted counts over the square root of the length."""
    words = tokens(text)
    counts: dict[int, int] = {}
    for token in words:
        index = token_index(token)
        counts[index] = counts.get(index, 0) + 1
    scale = 1.0 / math.sqrt(max(len(words), 1))
    indices = sorted(counts)
    return indices, [counts[i] * (1.0 + (i % 1000) / 1000) * scale for i in indices]
