"""The 16-d Euclid collection the indexing tests build, and their sharded replay."""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.helpers.api import Api, upsert_vectors
from tests.helpers.data import gaussian

DIM = 16


def create(api: Api, name: str, threshold: int = 300, **extra: Any) -> None:
    body = {
        "vectors": {"size": DIM, "distance": "Euclid"},
        "optimizers_config": {"indexing_threshold": threshold, "default_segment_number": 2},
    } | extra
    api.result("PUT", f"/collections/{name}", body)


def upsert(api: Api, name: str, vectors: np.ndarray, start: int = 0) -> None:
    """In requests of 250 points, each with payload ``{"i": id}``."""
    upsert_vectors(api, name, vectors, start, batch=250, payload=lambda i: {"i": i})


def data(n: int, seed: int = 3) -> np.ndarray:
    return gaussian(n, DIM, seed)
