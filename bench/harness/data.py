"""Pieces the data-set modules (`glove.py`, `text_embeddings.py`) share: exact ground truth
and the `.npy` cache that keeps it between runs (under the git-ignored `bench/data/`)."""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def exact_top_k(base: FloatArray, queries: FloatArray, k: int) -> tuple[FloatArray, IntArray]:
    """Exact inner-product top-k with `faiss.knn`; returns `(scores, ids)` like faiss does."""
    scores, ids = faiss.knn(
        np.ascontiguousarray(queries, dtype=np.float32),
        np.ascontiguousarray(base, dtype=np.float32),
        min(k, base.shape[0]),
        metric=faiss.METRIC_INNER_PRODUCT,
    )
    return scores.astype(np.float32), ids.astype(np.int64)


def cached_ground_truth(
    base: FloatArray, queries: FloatArray, k: int, ids_path: Path, scores_path: Path
) -> tuple[IntArray, FloatArray]:
    """`(ids, scores)` of the exact top-k, from the cache files or computed and saved there."""
    if ids_path.exists() and scores_path.exists():
        return np.load(ids_path), np.load(scores_path)
    scores, ids = exact_top_k(base, queries, k)
    save_atomic(ids_path, ids)
    save_atomic(scores_path, scores)
    return ids, scores


def save_atomic(path: Path, array: np.ndarray) -> None:
    """Write to a temporary name and rename, so an interrupted run leaves no torn file."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as handle:
        np.save(handle, array)
    os.replace(temporary, path)
