"""Real multi-vector data: all-MiniLM-L6-v2 token embeddings of Debian package descriptions.

Late-interaction (ColBERT-style) search needs a set of token vectors per text. This module
takes the texts `text_embeddings.py` already split (its `texts.json`): the first `n_docs`
long descriptions of the base set are the documents, and the one-line synopses of other
packages (`queries_ood`) are the queries. Each text is run through all-MiniLM-L6-v2
*before pooling* (`output_value="token_embeddings"`, padding dropped, [CLS] and [SEP]
kept, texts cut to 128 word pieces as in `text_embeddings.py`).

Stored smaller, as ColBERT stores its tokens: the 384-d token vectors are projected to
128 dimensions by the top eigenvectors of the tokens' *uncentred* second-moment matrix
(the linear map that best preserves inner products, which is what MaxSim adds up; it is
fitted on a seeded sample of document tokens), L2-normalised, and kept as float16. Ground
truth is the exact MaxSim (Chamfer) top-100 of every query over all documents, computed
from those same float16 tokens.

Cached under `bench/data/tokens/` (git-ignored), embedding in chunks of 512 texts saved as
they finish, so an interrupted build continues. About 45 long descriptions/s on one core.

    python bench/token_embeddings.py build --docs 20000 --queries 1000
    python bench/token_embeddings.py info
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from harness.data import save_atomic
from text_embeddings import DATA_DIR as TEXT_DIR
from text_embeddings import (
    MAX_SEQ_LENGTH,
    MODEL_NAME,
    _duration,
    load_model,
    load_texts,
)

from index.multivector import Ragged, exact_maxsim

logger = logging.getLogger("token_embeddings")

DATA_DIR = Path(__file__).resolve().parent / "data" / "tokens"
TOKEN_DIM = 128
CHUNK = 512
PCA_SAMPLE = 200_000
GROUND_TRUTH_K = 100
CACHE_VERSION = 1
SEED = 42


@dataclass(frozen=True)
class TokenDataset:
    """Ragged token sets: item ``i`` is ``tokens[offsets[i]:offsets[i + 1]]`` (float16)."""

    doc_tokens: npt.NDArray[np.float16]
    doc_offsets: npt.NDArray[np.int64]
    query_tokens: npt.NDArray[np.float16]
    query_offsets: npt.NDArray[np.int64]
    ground_truth: npt.NDArray[np.int64]
    ground_truth_scores: npt.NDArray[np.float32]
    meta: dict[str, Any]

    @property
    def n_docs(self) -> int:
        return len(self.doc_offsets) - 1

    @property
    def n_queries(self) -> int:
        return len(self.query_offsets) - 1

    def doc(self, i: int) -> npt.NDArray[np.float16]:
        return self.doc_tokens[self.doc_offsets[i] : self.doc_offsets[i + 1]]

    def query(self, i: int) -> npt.NDArray[np.float16]:
        return self.query_tokens[self.query_offsets[i] : self.query_offsets[i + 1]]


def _embed_tokens(model: Any, texts: Sequence[str]) -> list[npt.NDArray[np.float32]]:
    out = model.encode(
        list(texts),
        batch_size=32,
        output_value="token_embeddings",
        convert_to_numpy=False,
        show_progress_bar=False,
    )
    return [np.asarray(t.detach().cpu().numpy() if hasattr(t, "detach") else t, np.float32)
            for t in out]  # fmt: skip


def _chunked_tokens(
    role: str, texts: Sequence[str], data_dir: Path, model_box: list[Any]
) -> tuple[npt.NDArray[np.float16], npt.NDArray[np.int64], float]:
    """384-d float16 token sets of ``texts`` and the seconds spent embedding now."""
    chunk_dir = data_dir / "chunks"
    chunk_dir.mkdir(parents=True, exist_ok=True)
    parts, lengths, seconds, done = [], [], 0.0, 0
    for start in range(0, len(texts), CHUNK):
        chunk = texts[start : start + CHUNK]
        digest = hashlib.sha256(f"{MODEL_NAME}\0{MAX_SEQ_LENGTH}\0tokens\0".encode())
        for text in chunk:
            digest.update(text.encode() + b"\0")
        path = chunk_dir / f"{digest.hexdigest()[:24]}.npz"
        if not path.exists():
            if not model_box:
                model_box.append(load_model())
            began = time.perf_counter()
            sets = _embed_tokens(model_box[0], chunk)
            seconds += time.perf_counter() - began
            done += len(chunk)
            tmp = path.with_name(path.name + ".tmp.npz")
            np.savez(
                tmp,
                tokens=np.concatenate(sets).astype(np.float16),
                lengths=np.array([len(s) for s in sets], dtype=np.int64),
            )
            tmp.replace(path)
            rate = done / seconds
            logger.info(
                "%s: %d/%d texts, %.1f texts/s, ETA %s", role, start + len(chunk), len(texts),
                rate, _duration((len(texts) - start - len(chunk)) / rate),
            )  # fmt: skip
        with np.load(path) as saved:
            parts.append(saved["tokens"])
            lengths.append(saved["lengths"])
    all_lengths = np.concatenate(lengths)
    offsets = np.concatenate([[0], np.cumsum(all_lengths)]).astype(np.int64)
    return np.concatenate(parts), offsets, seconds


def _projection(tokens: npt.NDArray[np.float16], dims: int) -> npt.NDArray[np.float32]:
    """(384, dims): top eigenvectors of the uncentred second moment of a token sample."""
    rng = np.random.default_rng(SEED)
    pick = rng.choice(len(tokens), min(PCA_SAMPLE, len(tokens)), replace=False)
    sample = tokens[np.sort(pick)].astype(np.float64)
    _, vectors = np.linalg.eigh(sample.T @ sample)
    return np.ascontiguousarray(vectors[:, ::-1][:, :dims], dtype=np.float32)


def _reduced(tokens: npt.NDArray[np.float16], projection: npt.NDArray[np.float32]) -> Any:
    out = np.empty((len(tokens), projection.shape[1]), dtype=np.float16)
    for start in range(0, len(tokens), 100_000):
        part = tokens[start : start + 100_000].astype(np.float32) @ projection
        part /= np.maximum(np.linalg.norm(part, axis=1, keepdims=True), 1e-12)
        out[start : start + 100_000] = part
    return out


def build(n_docs: int, n_queries: int, data_dir: Path = DATA_DIR) -> dict[str, Any]:
    started = time.perf_counter()
    texts = load_texts(TEXT_DIR)
    docs = [r.long for r in texts["base"][:n_docs]]
    queries = [r.synopsis for r in texts["queries_ood"][:n_queries]]
    if len(docs) < n_docs or len(queries) < n_queries:
        raise ValueError(f"text cache has {len(docs)} docs and {len(queries)} queries")
    model_box: list[Any] = []
    q_raw, q_offsets, q_seconds = _chunked_tokens("queries", queries, data_dir, model_box)
    d_raw, d_offsets, d_seconds = _chunked_tokens("docs", docs, data_dir, model_box)
    projection = _projection(d_raw, TOKEN_DIM)
    doc_tokens, query_tokens = _reduced(d_raw, projection), _reduced(q_raw, projection)
    logger.info("ground truth: exact MaxSim of %d queries over %d docs", n_queries, n_docs)
    gt_ids, gt_scores = exact_maxsim(
        Ragged(query_tokens, q_offsets), Ragged(doc_tokens, d_offsets), GROUND_TRUTH_K
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    arrays = {
        "doc_tokens": doc_tokens, "doc_offsets": d_offsets, "query_tokens": query_tokens,
        "query_offsets": q_offsets, "gt_ids": gt_ids, "gt_scores": gt_scores,
        "projection": projection,
    }  # fmt: skip
    for name, array in arrays.items():
        save_atomic(data_dir / f"{name}.npy", array)
    lengths = np.diff(d_offsets)
    meta = {
        "version": CACHE_VERSION,
        "model": MODEL_NAME,
        "max_seq_length": MAX_SEQ_LENGTH,
        "token_dim": TOKEN_DIM,
        "reduction": "uncentred PCA 384 -> 128, L2-normalised, float16",
        "docs": n_docs,
        "queries": n_queries,
        "doc_tokens": int(d_offsets[-1]),
        "tokens_per_doc": {"mean": round(float(lengths.mean()), 1), "max": int(lengths.max())},
        "tokens_per_query_mean": round(float(np.diff(q_offsets).mean()), 1),
        "embedding_seconds": round(q_seconds + d_seconds, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }
    (data_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def load(data_dir: Path = DATA_DIR) -> TokenDataset:
    """The cached token data set; raises FileNotFoundError when it was never built."""
    meta_path = data_dir / "meta.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"no token embeddings in {data_dir}: run token_embeddings.py build")
    meta = json.loads(meta_path.read_text())
    if meta.get("version") != CACHE_VERSION:
        raise ValueError(f"{meta_path}: cache version {meta.get('version')}, need {CACHE_VERSION}")
    arrays = {
        n: np.load(data_dir / f"{n}.npy")
        for n in ("doc_tokens", "doc_offsets", "query_tokens", "query_offsets", "gt_ids",
                  "gt_scores")
    }  # fmt: skip
    return TokenDataset(
        arrays["doc_tokens"], arrays["doc_offsets"], arrays["query_tokens"],
        arrays["query_offsets"], arrays["gt_ids"], arrays["gt_scores"], meta,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="MiniLM token embeddings for MUVERA benchmarks.")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="embed documents and queries, cache them")
    build_parser.add_argument("--docs", type=int, default=20_000)
    build_parser.add_argument("--queries", type=int, default=1000)
    commands.add_parser("info", help="print what is cached")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(message)s")
    logger.setLevel(logging.INFO)
    if args.command == "build":
        print(json.dumps(build(args.docs, args.queries, args.data_dir), indent=2))
    else:
        print(json.dumps(load(args.data_dir).meta, indent=2))


if __name__ == "__main__":
    main()
