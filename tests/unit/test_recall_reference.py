"""Recall regression against a stored reference number (bench/reference/recall.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from index.flat import exact_search
from index.metrics import Distance, normalize_rows
from index.registry import create_index

REFERENCE = Path(__file__).resolve().parents[2] / "bench" / "reference" / "recall.json"


@pytest.mark.slow  # a 20,000-vector graph
def test_hnsw_recall_at_defaults_matches_the_stored_reference() -> None:
    reference = json.loads(REFERENCE.read_text())["hnsw_default_seeded"]
    rng = np.random.default_rng(2024)
    xb = normalize_rows(rng.normal(size=(20000, 32)).astype(np.float32))
    xq = normalize_rows(rng.normal(size=(200, 32)).astype(np.float32))
    index = create_index(
        "hnsw", 32, Distance.COSINE, {"m": 16, "ef_construct": 100, "ef_search": 100}
    )
    index.add(xb)
    truth, _ = exact_search(xb, xq, 10, Distance.COSINE)
    found, _ = index.search(xq, 10)
    recall = sum(len(set(a) & set(b)) for a, b in zip(found, truth, strict=True)) / truth.size
    assert recall >= 0.95
    assert abs(recall - reference["recall_at_10"]) <= reference["tolerance"]
