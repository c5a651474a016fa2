"""Real MiniLM-384 vectors for bench_memory.py's ``minilm-int8`` set (issue 24).

Issue 24 asks for memory per point at 390k and 2M points of MiniLM-384 with scalar int8
quantization. The real vectors are text_embeddings.py's cache: all-MiniLM-L6-v2
embeddings of Debian package descriptions (``text_embeddings.py build --base N``), far
fewer than 390k. Above the cached count the set is *tiled*, as bench_memory's
``glove_vectors`` does above GloVe's 390k: copy 0 is the real rows, and each further copy
is the real rows plus seeded Gaussian noise (sigma ``NOISE`` a dimension, about 0.4 in
norm against unit rows), renormalised. The memory an index holds per point does not
depend on which vectors these are (codes, originals and links have fixed sizes a row),
but the set is not 390k distinct texts: results must say how many rows are real. The tiled
set is built once and cached as bench/data/minilm_tiled_<real>_<points>.npy.

bench_memory.py loads this set through the bulk endpoint (``upload_arrow``: one streamed
Arrow body, ids and vectors, no payload): at 384 dimensions JSON batches are mostly
number parsing, which is not what this benchmark measures (bench_bulk.py compares the
two ways in).

    python bench/text_embeddings.py build --base 20000 --queries 200   # the real rows
    cd bench && PYTHONPATH=.. nice -n 10 python bench_memory.py --sets minilm-int8 \\
        --minilm-points 390000 --pgvector --label minilm_390k
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import text_embeddings
from harness.data import save_atomic

SET_NAME = "minilm-int8"
NOISE = 0.02
SEED = 13
DATA_DIR = Path(__file__).resolve().parent / "data"


def real_vectors(data_dir: Path = text_embeddings.DATA_DIR) -> np.ndarray:
    """The cached base embeddings (float32, unit rows); raises if the cache is not built."""
    text_embeddings.read_meta(data_dir)  # a clear error naming the build command
    base: np.ndarray = np.load(data_dir / "base.npy")
    return base


def minilm_vectors(points: int) -> np.ndarray:
    """``points`` unit 384-d rows: the real embeddings first, tiled with noise beyond them."""
    base = real_vectors()
    if points <= len(base):
        return base[:points]
    cached = DATA_DIR / f"minilm_tiled_{len(base)}_{points}.npy"
    if cached.exists():
        tiled: np.ndarray = np.load(cached)
        return tiled
    tiled = tile(base, points)
    save_atomic(cached, tiled)
    return tiled


def tile(base: np.ndarray, points: int, seed: int = SEED) -> np.ndarray:
    """``base`` repeated to ``points`` rows; every copy after the first with fresh
    seeded noise, renormalised. Filled copy by copy, so the peak is one copy's noise."""
    rng = np.random.default_rng(seed)
    out = np.empty((points, base.shape[1]), dtype=np.float32)
    for start in range(0, points, len(base)):
        rows = min(len(base), points - start)
        part = out[start : start + rows]
        part[:] = base[:rows]
        if start:
            part += rng.standard_normal(part.shape, dtype=np.float32) * np.float32(NOISE)
            part /= np.linalg.norm(part, axis=1, keepdims=True)
    return out
