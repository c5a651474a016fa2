"""LeanVec against full-precision HNSW: recall@10 vs QPS, build time and bytes per vector.

One run measures, in this process (the backends called directly, no server), on the same
machine, two data sets: the Debian MiniLM 384-d text embeddings (`text_embeddings.py`: long
package descriptions as the base, held-out long descriptions as in-distribution (ID) queries,
package synopses as out-of-distribution (OOD) queries) and a seeded synthetic 768-d
low-rank-plus-noise set (`text_embeddings.synthetic`) for the high-dimensional regime.
Each query set is cut in half and the second halves are the evaluation sets. LeanVec-OOD
learns, on the Debian set, from 16,000 synopses of *base* packages (a stand-in for a
query log: `text_embeddings.training_synopses`; 1,000 over-fitted the 384 x 384 query
moment), and on the synthetic set from the first half of its OOD queries; no query is
both learned and measured.

For each data set, every index is built first and kept, then measured:

1. the methods: raw faiss `IndexHNSWFlat` (M=16, efConstruction=100; the library
   reference), Quiver's `HnswIndex` (full precision, same graph knobs) and `LeanVecIndex`
   ID and OOD at d = D/4 and D/2 with 8-bit primaries, float32 secondaries and the default
   rerank factor 4; after the sweep, the best LeanVec configuration once more with 4-bit
   primaries and int8 secondaries. Quiver indexes are built the server's way: `train` on
   up to 100,000 rows (and, for OOD, the training queries), then `add` in chunks of 10,000;
2. build time (train + add, wall clock) and bytes per vector by part (primary codes,
   secondary originals, graph, the rest), from `stats().parts`;
3. recall@10 and queries/s per ef on both evaluation sets, in batches of 100 queries with
   faiss's default OpenMP threads, after a pause and one untimed warm-up batch; per ef
   the methods take turns, so they see the same machine load;
4. the inner-product error (`index.leanvec.inner_product_error`) of the ID (PCA) and OOD
   models on the held-out queries, at each d;
5. on the Debian set only, LVQ (`lvq_encode` / `lvq_decode`, per-vector step and offset)
   against faiss's `ScalarQuantizer` (per-dimension range) at 8 and 4 bits, on the
   projected primaries: relative reconstruction error and the recall@10 of an exact
   search over the decoded primaries (no graph, no re-ranking);
6. Intel's SVS (`scalable-vs`) as a reference, run in a separate Python given by
   `--svs-python` (its wheel must not enter Quiver's venv): float32 Vamana, then LeanVec-ID
   and -OOD at D/4 with LVQ8 primaries and float16 secondaries (the `scalable-vs` 0.5.0
   wheel has no LVQ8/float32 pair: "Could not find a suitable method!"). Its LeanVec and
   LVQ run only on Intel CPUs (elsewhere the process exits with "LVQ and Leanvec
   functionality of SVS is not supported on non-Intel hardware."), so the child prints
   one line per finished configuration and the outcome, exit code, error text and CPU
   vendor are recorded whatever happens.

Checks per data set (at recall@10 >= 0.95 on the ID set, each at its smallest such ef):
LeanVec QPS / Quiver HNSW QPS (>= 1.3 at 384-d, >= 1.7 at 768-d), Quiver HNSW build time /
LeanVec build time (>= 1.5 / >= 1.7), primary bytes / (4 D) <= 0.25, LeanVec-OOD recall >=
LeanVec-ID recall on the OOD set at equal d and ef, and the OOD model's inner-product error
>= 10% below PCA's on the held-out OOD queries.

Like the server, the script sets `OMP_WAIT_POLICY=PASSIVE` unless it is set and limits
numpy's own BLAS to one thread (`index/native_threads.py`): LeanVec's search runs numpy
between faiss calls (query projection, re-ranking), and numpy's spinning BLAS threads
and faiss's OpenMP threads slowed each other on 2 cores.

It prints markdown tables and saves them, with the raw numbers, machine details and a
recall-vs-QPS chart, to `bench/results/leanvec.{md,json,png}`
(`bench/data/leanvec_quick.*` with `--quick`).

Every index of a data set is kept until its sweep ends (so the methods can take turns):
at the default 200,000 x 768 synthetic base that is about 5 GB at peak.

    .venv/bin/python bench/bench_leanvec.py            # full (~15 min on 2 cores)
    .venv/bin/python bench/bench_leanvec.py --quick    # smoke: 10k base, 200 queries (~2 min)
    .venv/bin/python bench/bench_leanvec.py --svs-python /tmp/svs/bin/python   # + Intel SVS
"""

from __future__ import annotations

import os

# As the server does (server/cli.py), before faiss's OpenMP runtime loads: idle OpenMP
# threads sleep instead of spinning, so they do not slow numpy's BLAS threads and back.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np
from harness.cli import add_common_options, finish, log, new_parser
from harness.machine import busy_notes, cpu_busy_fraction, machine_info
from harness.metrics import recall_at_k
from harness.results import pyplot
from text_embeddings import TextDataset, load_debian, synthetic, training_synopses

from index.base import TRAINING_SAMPLE, SearchParams
from index.hnsw_faiss import HnswIndex, HnswParams
from index.leanvec import (
    LeanVecModel,
    Solver,
    Variant,
    inner_product_error,
    lvq_decode,
    lvq_encode,
    train_id,
)
from index.leanvec_index import LeanVecIndex, LeanVecParams
from index.metrics import Distance
from index.native_threads import single_threaded_numpy_blas
from index.rerank import SecondaryFormat
from index.two_stage import hnsw_graph_bytes

FAISS: Any = faiss  # typed Any: faiss's bundled stubs miss much of the SWIG surface
K = 10
M = 16
EF_CONSTRUCT = 100
EF_VALUES = (16, 32, 64, 128, 256)
QUICK_EF_VALUES = (32, 128)
QUICK_BASE = 10_000
QUICK_EVAL_QUERIES = 200
SYNTHETIC_BASE = 200_000
SYNTHETIC_DIM = 768
SYNTHETIC_QUERIES = 2000  # of each kind; half of the OOD ones train LeanVec-OOD
TRAIN_SYNOPSES = 16_000
"""Debian: LeanVec-OOD learns from synopses of base packages (a query log stand-in);
1,000 synopses over-fitted the 384 x 384 query moment (held-out error above PCA's)."""
ADD_CHUNK = 10_000  # the server's build chunk
SEARCH_BATCH = 100
RECALL_TARGET = 0.95
ERROR_SAMPLE = 20_000  # base rows the inner-product error is computed over (seeded sample)
BUILD_REPEATS = 3
BUILD_REPEAT_BUDGET_S = 20.0
TIMED_PASSES = 5  # timed passes over the queries per cell; the median is reported
QUIET_S = 1.0  # pause before each timed turn: other OpenMP/BLAS threads stop spinning
SVS_TIMEOUT_S = 3600
QPS_TARGET = {384: 1.3, 768: 1.7}
BUILD_TARGET = {384: 1.5, 768: 1.7}
PRIMARY_TARGET = 0.25
ERROR_REDUCTION_TARGET = 0.10
QUERY_SETS = ("id", "ood")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Split:
    """A data set cut for this benchmark: base, OOD training queries, two evaluation sets."""

    name: str
    base: np.ndarray
    train_queries: np.ndarray
    queries: dict[str, np.ndarray]
    truth: dict[str, np.ndarray]

    @property
    def dimension(self) -> int:
        return int(self.base.shape[1])

    @property
    def n_base(self) -> int:
        return int(self.base.shape[0])

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dimension": self.dimension,
            "n_base": self.n_base,
            "train_queries": len(self.train_queries),
            "eval_queries": {s: len(q) for s, q in self.queries.items()},
        }


def split(
    dataset: TextDataset, n_eval: int | None, train_queries: np.ndarray | None = None
) -> Split:
    """Without `train_queries`, the first half of the OOD queries trains and the second
    halves of both sets evaluate; with them (a query log), the halves are kept anyway so
    every data set is measured on the same number of queries."""
    ood_half, id_half = len(dataset.queries_ood) // 2, len(dataset.queries_id) // 2
    return Split(
        dataset.name,
        dataset.base,
        dataset.queries_ood[:ood_half] if train_queries is None else train_queries,
        {
            "id": dataset.queries_id[id_half:][:n_eval],
            "ood": dataset.queries_ood[ood_half:][:n_eval],
        },
        {
            "id": dataset.ground_truth_id[id_half:][:n_eval, :K],
            "ood": dataset.ground_truth_ood[ood_half:][:n_eval, :K],
        },
    )


def training_sample(matrix: np.ndarray, seed: int = 0) -> np.ndarray:
    """What the server trains on: up to TRAINING_SAMPLE rows, seeded, in order."""
    if len(matrix) <= TRAINING_SAMPLE:
        return matrix
    rows = np.random.default_rng(seed).choice(len(matrix), TRAINING_SAMPLE, replace=False)
    sample: np.ndarray = matrix[np.sort(rows)]
    return sample


# --------------------------------------------------------------------------- methods


@dataclass(frozen=True)
class Method:
    """One index configuration; `leanvec` is None for the full-precision graphs."""

    name: str
    kind: str  # "faiss" | "hnsw" | "leanvec"
    leanvec: LeanVecParams | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "leanvec": asdict(self.leanvec) if self.leanvec else None,
        }


def leanvec_method(
    dims: int,
    variant: Variant,
    bits: Literal[8, 4] = 8,
    secondary: SecondaryFormat = "float32",
    solver: Solver = "closed_form",
) -> Method:
    params = LeanVecParams(
        dims=dims,
        variant=variant,
        primary_bits=bits,
        secondary=secondary,
        ood_solver=solver,
        m=M,
        ef_construct=EF_CONSTRUCT,
    )
    suffix = " (Frank-Wolfe)" if solver == "frank_wolfe" else ""
    return Method(
        f"LeanVec-{variant.upper()} d={dims} {bits}-bit/{secondary}{suffix}", "leanvec", params
    )


def methods_for(dimension: int) -> list[Method]:
    return [
        Method("faiss HNSWFlat", "faiss"),
        Method("Quiver HNSW (float32)", "hnsw"),
        *(
            leanvec_method(dims, variant)
            for dims in (dimension // 4, dimension // 2)
            for variant in ("id", "ood")
        ),
        # The paper's solver, measured beside the default closed form.
        *(
            leanvec_method(dims, "ood", solver="frank_wolfe")
            for dims in (dimension // 4, dimension // 2)
        ),
    ]


@dataclass
class Built:
    """A built index, how long it took and what it holds per vector."""

    method: Method
    search: Callable[[np.ndarray, int], np.ndarray]
    train_s: float
    add_s: float
    parts: dict[str, int]
    count: int
    model: LeanVecModel | None = None
    trained_variant: str | None = None

    @property
    def build_s(self) -> float:
        return self.train_s + self.add_s

    def bytes_per_vector(self) -> dict[str, float]:
        """Primary (codes, or the float vectors), secondary (originals), graph, the rest."""
        primary = self.parts.get("codes", self.parts.get("vectors", 0))
        secondary = self.parts.get("originals", 0) + self.parts.get("originals_mapped", 0)
        graph = self.parts.get("graph", 0)
        total = sum(self.parts.values())
        values = {
            "primary": primary,
            "secondary": secondary,
            "graph": graph,
            "other": total - primary - secondary - graph,
            "total": total,
        }
        return {k: round(v / self.count, 1) for k, v in values.items()}

    def describe(self, dimension: int) -> dict[str, Any]:
        per_vector = self.bytes_per_vector()
        return {
            **self.method.describe(),
            "trained_variant": self.trained_variant,
            "train_s": round(self.train_s, 3),
            "add_s": round(self.add_s, 3),
            "build_s": round(self.build_s, 3),
            "parts_bytes": self.parts,
            "bytes_per_vector": per_vector,
            "primary_fraction_of_float32": round(per_vector["primary"] / (4 * dimension), 4),
        }


def build(method: Method, data: Split) -> Built:
    if method.kind == "faiss":
        return build_faiss(method, data)
    if method.kind == "hnsw":
        return build_hnsw(method, data)
    return build_leanvec(method, data)


def build_faiss(method: Method, data: Split) -> Built:
    """The raw library: one `add` of every vector, as a faiss user would."""
    index = FAISS.IndexHNSWFlat(data.dimension, M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCT
    started = time.perf_counter()
    index.add(data.base)
    add_s = time.perf_counter() - started

    def search(queries: np.ndarray, ef: int) -> np.ndarray:
        params = FAISS.SearchParametersHNSW(efSearch=max(ef, K))
        return np.asarray(index.search(queries, K, params=params)[1], dtype=np.int64)

    parts = {"graph": hnsw_graph_bytes(index.hnsw), "vectors": data.n_base * data.dimension * 4}
    return Built(method, search, 0.0, add_s, parts, data.n_base)


def add_in_chunks(index: HnswIndex | LeanVecIndex, base: np.ndarray) -> float:
    started = time.perf_counter()
    for start in range(0, len(base), ADD_CHUNK):
        index.add(base[start : start + ADD_CHUNK])
    return time.perf_counter() - started


def build_hnsw(method: Method, data: Split) -> Built:
    index = HnswIndex(data.dimension, Distance.COSINE, HnswParams(m=M, ef_construct=EF_CONSTRUCT))
    add_s = add_in_chunks(index, data.base)

    def search(queries: np.ndarray, ef: int) -> np.ndarray:
        ids: np.ndarray = index.search(queries, K, params=SearchParams(ef=ef))[0]
        return ids

    parts = dict(index.stats().parts or {})
    return Built(method, search, 0.0, add_s, parts, index.count)


def build_leanvec(method: Method, data: Split) -> Built:
    params = method.leanvec
    assert params is not None
    index = LeanVecIndex(data.dimension, Distance.COSINE, params)
    queries = data.train_queries if params.variant == "ood" else None
    started = time.perf_counter()
    index.train(training_sample(data.base), queries)
    train_s = time.perf_counter() - started
    add_s = add_in_chunks(index, data.base)

    def search(queries: np.ndarray, ef: int) -> np.ndarray:
        search_params = SearchParams(ef=ef, oversampling=params.rerank_factor)
        ids: np.ndarray = index.search(queries, K, params=search_params)[0]
        return ids

    parts = dict(index.stats().parts or {})
    return Built(
        method, search, train_s, add_s, parts, index.count, index.model, index.trained_variant
    )


# --------------------------------------------------------------------------- search


@dataclass
class SearchRun:
    """`count` queries of one set answered by one method at one ef in `seconds`."""

    method: str
    query_set: str
    ef: int
    count: int
    seconds: float
    recall_at_10: float

    @property
    def qps(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "qps": round(self.qps, 1)}


def timed_search(built: Built, data: Split, query_set: str, ef: int) -> SearchRun:
    """Batches of 100 after a pause and one untimed warm-up batch; the median time of
    ``TIMED_PASSES`` passes over the queries (one pass of 1,000 queries takes ~50 ms
    here, and single passes of the same work differed by up to 1.6x)."""
    queries, truth = data.queries[query_set], data.truth[query_set]
    ids = np.empty((len(queries), K), dtype=np.int64)
    time.sleep(QUIET_S)
    built.search(queries[:SEARCH_BATCH], ef)
    passes = []
    for _ in range(TIMED_PASSES):
        started = time.perf_counter()
        for start in range(0, len(queries), SEARCH_BATCH):
            batch = queries[start : start + SEARCH_BATCH]
            ids[start : start + SEARCH_BATCH] = built.search(batch, ef)
        passes.append(time.perf_counter() - started)
    seconds = float(np.median(passes))
    return SearchRun(
        built.method.name, query_set, ef, len(queries), seconds, recall_at_k(ids, truth)
    )


def sweep(builds: Sequence[Built], data: Split, ef_values: Sequence[int]) -> list[SearchRun]:
    """Per ef, every method in turn on both evaluation sets."""
    runs: list[SearchRun] = []
    for ef in ef_values:
        for built in builds:
            for query_set in QUERY_SETS:
                runs.append(timed_search(built, data, query_set, ef))
        log(
            f"  ef {ef}: "
            + "; ".join(
                f"{r.method} {r.query_set} {r.recall_at_10:.3f}/{r.qps:,.0f}"
                for r in runs
                if r.ef == ef
            )
        )
    return runs


def first_reaching(
    runs: Sequence[SearchRun], method: str, query_set: str, target: float = RECALL_TARGET
) -> SearchRun | None:
    """The run at the smallest ef whose recall@10 reaches `target`, if any."""
    ordered = sorted(
        (r for r in runs if r.method == method and r.query_set == query_set), key=lambda r: r.ef
    )
    return next((r for r in ordered if r.recall_at_10 >= target), None)


def best_leanvec(runs: Sequence[SearchRun], names: Sequence[str]) -> tuple[str, SearchRun | None]:
    """The LeanVec configuration with the most QPS at recall@10 >= 0.95 on the ID set; if
    none reaches it, the one with the highest ID recall (and no qualifying run)."""
    reached = [(n, r) for n in names if (r := first_reaching(runs, n, "id")) is not None]
    if reached:
        return max(reached, key=lambda pair: pair[1].qps)
    candidates = [r for r in runs if r.method in names and r.query_set == "id"]
    return max(candidates, key=lambda r: r.recall_at_10).method, None


# --------------------------------------------------------------------------- model quality


def error_table(builds: Sequence[Built], data: Split) -> list[dict[str, Any]]:
    """Inner-product error of the ID (PCA) and OOD models on both held-out query sets."""
    rows = np.random.default_rng(0).permutation(data.n_base)[:ERROR_SAMPLE]
    sample = data.base[np.sort(rows)]
    table = []
    for dims in sorted({b.model.dim_out for b in builds if b.model is not None}):
        same = [b for b in builds if b.model and b.model.dim_out == dims]
        pca = next((b.model for b in same if b.trained_variant == "id"), None)
        if pca is None:
            continue
        for build in (b for b in same if b.trained_variant == "ood"):
            assert build.model is not None and build.method.leanvec is not None
            if build.method.leanvec.primary_bits != 8:  # same model as its 8-bit twin
                continue
            for query_set in ("ood", "id"):
                queries = data.queries[query_set]
                pca_error = inner_product_error(pca, queries, sample)
                ood_error = inner_product_error(build.model, queries, sample)
                table.append(
                    {
                        "dims": dims,
                        "solver": build.method.leanvec.ood_solver,
                        "query_set": query_set,
                        "pca_error": round(pca_error, 5),
                        "ood_error": round(ood_error, 5),
                        "reduction": round(1.0 - ood_error / pca_error, 4),
                    }
                )
    return table


def quantizer_table(builds: Sequence[Built], data: Split) -> list[dict[str, Any]]:
    """LVQ vs faiss's scalar quantizer on each model's projected primaries.

    Relative reconstruction error `||X - X'||^2 / ||X||^2` and recall@10 (against the full
    D-dimensional ground truth) of exact inner-product search over the decoded primaries."""
    table = []
    for built in builds:
        model = built.model
        if model is None or built.method.leanvec is None or built.method.leanvec.primary_bits != 8:
            continue
        primaries = model.project_data(data.base)
        queries = {s: model.project_queries(q) for s, q in data.queries.items()}
        energy = float(np.sum(primaries.astype(np.float64) ** 2))
        for name, decoded, code_bytes in decodings(primaries):
            error = float(np.sum((primaries - decoded).astype(np.float64) ** 2)) / energy
            recalls = {}
            for query_set, projected in queries.items():
                _, ids = faiss.knn(projected, decoded, K, metric=faiss.METRIC_INNER_PRODUCT)
                recalls[query_set] = round(recall_at_k(ids, data.truth[query_set]), 4)
            table.append(
                {
                    "model": f"{model.variant.upper()} d={model.dim_out}",
                    "quantizer": name,
                    "bytes_per_vector": code_bytes,
                    "relative_error": error,
                    "recall_at_10": recalls,
                }
            )
    return table


def decodings(primaries: np.ndarray) -> list[tuple[str, np.ndarray, float]]:
    """(name, decoded primaries, bytes per vector): float, LVQ and faiss SQ at 8 and 4 bits."""
    dims = primaries.shape[1]
    out: list[tuple[str, np.ndarray, float]] = [("none (float32)", primaries, 4.0 * dims)]
    for bits in (8, 4):
        codes, step, offset = lvq_encode(primaries, bits)
        out.append((f"LVQ {bits}-bit", lvq_decode(codes, step, offset), dims * bits / 8 + 8))
        kind = FAISS.ScalarQuantizer.QT_8bit if bits == 8 else FAISS.ScalarQuantizer.QT_4bit
        quantizer = FAISS.ScalarQuantizer(dims, kind)
        quantizer.train(primaries)
        decoded = quantizer.decode(quantizer.compute_codes(primaries))
        out.append((f"faiss SQ {bits}-bit", decoded, float(quantizer.code_size)))
    return out


# --------------------------------------------------------------------------- Intel SVS

SVS_CHILD = r'''
"""Runs in the SVS venv: build each config, search, print one JSON line per config."""
import json, os, sys, time
import numpy as np
import svs

folder, spec = sys.argv[1], json.loads(sys.argv[2])
load = lambda name: np.load(os.path.join(folder, name + ".npy"))
base, train = load("base"), load("train_queries")
sets = {s: (load("queries_" + s), load("truth_" + s)) for s in ("id", "ood")}
path = os.path.join(folder, "base.fvecs")
svs.write_vecs(base, path)
k, batch, threads = spec["k"], spec["batch"], spec["threads"]
print(json.dumps({"event": "start", "svs": svs.library_version()}), flush=True)
for config in spec["configs"]:
    print(json.dumps({"event": "building", "name": config["name"]}), flush=True)
    params = svs.VamanaBuildParameters(graph_max_degree=spec["degree"], window_size=spec["window"])
    started = time.perf_counter()
    if config["kind"] == "float32":
        data = base
    else:
        extra = {}
        if config["kind"] == "leanvec-ood":
            data_map, query_map = svs.compute_leanvec_matrices(
                base[: spec["sample"]], train, config["dims"])
            extra = {"data_matrix": data_map, "query_matrix": query_map}
        data = svs.LeanVecLoader(svs.VectorDataLoader(path, svs.DataType.float32),
                                 config["dims"], svs.LeanVecKind.lvq8,
                                 svs.LeanVecKind.float16, **extra)
    index = svs.Vamana.build(params, data, svs.DistanceType.MIP, num_threads=threads)
    build_s = time.perf_counter() - started
    index.num_threads = threads
    runs = []
    for ef in spec["ef_values"]:
        index.search_window_size = max(ef, k)
        for name, (queries, truth) in sets.items():
            time.sleep(spec["quiet"])
            index.search(queries[:batch], k)
            ids = np.empty((len(queries), k), dtype=np.int64)
            t0 = time.perf_counter()
            for s in range(0, len(queries), batch):
                ids[s : s + batch] = index.search(queries[s : s + batch], k)[0]
            seconds = time.perf_counter() - t0
            hits = sum(len(set(a) & set(b)) for a, b in zip(ids.tolist(), truth.tolist()))
            runs.append({"method": config["name"], "query_set": name, "ef": ef,
                         "count": len(queries), "seconds": seconds,
                         "recall_at_10": hits / truth.size})
    print(json.dumps({"event": "done", "name": config["name"], "build_s": build_s,
                      "search": runs}), flush=True)
'''


def cpu_vendor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def svs_reference(
    svs_python: Path | None, data: Split, ef_values: Sequence[int]
) -> tuple[dict[str, Any], list[SearchRun]]:
    """Run Intel SVS in its own interpreter; record what it printed, its exit and stderr."""
    if svs_python is None:
        return {"status": "not attempted (no --svs-python)"}, []
    dims = data.dimension // 4
    configs: list[dict[str, Any]] = [
        {"name": "SVS Vamana float32", "kind": "float32"},
        {"name": f"SVS LeanVec-ID d={dims} LVQ8/float16", "kind": "leanvec-id", "dims": dims},
        {"name": f"SVS LeanVec-OOD d={dims} LVQ8/float16", "kind": "leanvec-ood", "dims": dims},
    ]
    spec = {
        "k": K,
        "batch": SEARCH_BATCH,
        "threads": len(os.sched_getaffinity(0)),
        "degree": 2 * M,  # Vamana's single layer vs HNSW's level 0, which holds 2 M links
        "window": EF_CONSTRUCT,
        "sample": TRAINING_SAMPLE,
        "ef_values": list(ef_values),
        "quiet": QUIET_S,
        "configs": configs,
    }
    with tempfile.TemporaryDirectory(prefix="svs-") as folder:
        arrays = {"base": data.base, "train_queries": data.train_queries}
        arrays |= {f"queries_{s}": q for s, q in data.queries.items()}
        arrays |= {f"truth_{s}": t for s, t in data.truth.items()}
        for name, array in arrays.items():
            np.save(Path(folder) / f"{name}.npy", np.ascontiguousarray(array))
        script = Path(folder) / "svs_child.py"
        script.write_text(SVS_CHILD)
        try:
            done = subprocess.run(
                [str(svs_python), str(script), folder, json.dumps(spec)],
                capture_output=True,
                text=True,
                timeout=SVS_TIMEOUT_S,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {"status": "failed to run", "error": f"{type(exc).__name__}: {exc}"}, []
    return parse_svs(done, configs)


def parse_svs(
    done: subprocess.CompletedProcess[str], configs: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[SearchRun]]:
    events = []
    for line in done.stdout.splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    finished = {e["name"]: e for e in events if e.get("event") == "done"}
    building = [e["name"] for e in events if e.get("event") == "building"]
    failed = next((n for n in building if n not in finished), None)
    version = next((e.get("svs") for e in events if e.get("event") == "start"), None)
    runs = [
        SearchRun(
            **{k: r[k] for k in ("method", "query_set", "ef", "count", "seconds")},
            recall_at_10=r["recall_at_10"],
        )
        for e in finished.values()
        for r in e["search"]
    ]
    status = "ran" if len(finished) == len(configs) else ("partly ran" if finished else "failed")
    return {
        "status": status,
        "svs_version": version,
        "exit_code": done.returncode,
        "builds_s": {n: round(e["build_s"], 3) for n, e in finished.items()},
        "failed_config": failed,
        "stderr_tail": done.stderr.strip()[-2000:],
    }, runs


# --------------------------------------------------------------------------- one data set


def measure_dataset(
    data: Split, ef_values: Sequence[int], svs_python: Path | None
) -> dict[str, Any]:
    """Build every method, sweep ef, add the 4-bit/int8 row set, then the model studies."""
    log(f"{data.name}: {data.n_base:,} x {data.dimension}, eval {data.describe()['eval_queries']}")
    # The first eigendecomposition in a process pays LAPACK/BLAS start-up; keep it out of
    # the first LeanVec build's clock.
    train_id(data.base[:2000], data.dimension // 4)
    builds = build_all(methods_for(data.dimension), data)
    runs = sweep(builds, data, ef_values)
    best_name, _ = best_leanvec(runs, [b.method.name for b in builds if b.method.leanvec])
    log(f"  best 8-bit configuration: {best_name}")
    extra = build_all(
        [low_bit_variant(next(b for b in builds if b.method.name == best_name))], data
    )
    runs += sweep(extra, data, ef_values)
    builds += extra
    log("  inner-product error and quantizers")
    result = {
        **data.describe(),
        "methods": [b.describe(data.dimension) for b in builds],
        "search": [r.as_dict() for r in runs],
        "best_8bit_config": best_name,
        "inner_product_error": error_table(builds, data),
        # The quantizer study is asked for on the real embeddings only.
        "quantizers": quantizer_table(builds, data) if data.dimension == 384 else [],
    }
    del builds, extra  # free the indexes (GBs at 768-d) before SVS loads its own copy
    log("  Intel SVS reference")
    svs, svs_runs = svs_reference(svs_python, data, ef_values)
    log(f"  SVS: {svs['status']} {svs.get('stderr_tail', svs.get('error', ''))[-200:]!r}")
    return result | {"svs": svs, "svs_search": [r.as_dict() for r in svs_runs]}


def build_all(methods: Sequence[Method], data: Split) -> list[Built]:
    builds = []
    for method in methods:
        builds.append(fastest_build(method, data))
        log(f"  built {method.name}: {builds[-1].build_s:.1f}s {builds[-1].bytes_per_vector()}")
    return builds


def fastest_build(method: Method, data: Split) -> Built:
    """The fastest of up to ``BUILD_REPEATS`` builds, repeating only while the builds so
    far took under ``BUILD_REPEAT_BUDGET_S``: one build of the same index here varied by up
    to 1.4x between runs, more than the targets' margins, while the 768-d builds (15-30 s
    each) vary less and would make the run far longer."""
    best = build(method, data)
    spent = best.build_s
    for _ in range(BUILD_REPEATS - 1):
        if spent >= BUILD_REPEAT_BUDGET_S:
            break
        again = build(method, data)
        spent += again.build_s
        best = again if again.build_s < best.build_s else best
    return best


def low_bit_variant(built: Built) -> Method:
    """The same LeanVec variant and d with 4-bit primaries and int8 secondaries."""
    params = built.method.leanvec
    assert params is not None and params.dims is not None
    return leanvec_method(params.dims, params.variant, 4, "int8")


# --------------------------------------------------------------------------- checks


def runs_of(result: dict[str, Any], key: str = "search") -> list[SearchRun]:
    return [SearchRun(**{k: v for k, v in r.items() if k != "qps"}) for r in result[key]]


def check(
    dataset: str, name: str, where: str, value: float | None, target: str, ok: bool
) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "name": name,
        "where": where,
        "value": value,
        "target": target,
        "passed": bool(ok and value is not None and math.isfinite(value)),
    }


def dataset_checks(result: dict[str, Any]) -> list[dict[str, Any]]:
    runs, dim, name = runs_of(result), result["dimension"], result["name"]
    methods = {m["name"]: m for m in result["methods"]}
    float_name = "Quiver HNSW (float32)"
    leanvec = [n for n, m in methods.items() if m["kind"] == "leanvec"]
    best_name, best_run = best_leanvec(runs, leanvec)
    float_run = first_reaching(runs, float_name, "id")
    qps_target, build_target = QPS_TARGET.get(dim, 1.7), BUILD_TARGET.get(dim, 1.7)
    ratio = None if best_run is None or float_run is None else best_run.qps / float_run.qps
    where = (
        f"{best_name} ef {best_run.ef if best_run else '-'} vs HNSW ef "
        f"{float_run.ef if float_run else '-'}"
    )
    build_ratio = methods[float_name]["build_s"] / methods[best_name]["build_s"]
    primary = methods[best_name]["primary_fraction_of_float32"]
    checks = [
        check(
            name,
            "QPS LeanVec / Quiver HNSW at recall@10 >= 0.95 (ID set)",
            where,
            ratio,
            f">= {qps_target}",
            ratio is not None and ratio >= qps_target,
        ),
        check(
            name,
            "build time Quiver HNSW / LeanVec",
            best_name,
            build_ratio,
            f">= {build_target}",
            build_ratio >= build_target,
        ),
        check(
            name,
            "primary bytes / (4 D)",
            best_name,
            primary,
            f"<= {PRIMARY_TARGET}",
            primary <= PRIMARY_TARGET,
        ),
    ]
    for dims in sorted({m["leanvec"]["dims"] for m in methods.values() if m["kind"] == "leanvec"}):
        id_name, ood_name = (
            next((n for n in leanvec if n == f"LeanVec-{v} d={dims} 8-bit/float32"), "")
            for v in ("ID", "OOD")
        )
        if not id_name or not ood_name:
            continue
        ef, id_recall, ood_recall = ood_comparison(runs, id_name, ood_name)
        checks.append(
            check(
                name,
                f"OOD recall >= ID recall on the OOD set, d={dims}",
                f"ef {ef}",
                ood_recall - id_recall,
                f"OOD {ood_recall:.4f} >= ID {id_recall:.4f}",
                ood_recall >= id_recall,
            )
        )
    for row in result["inner_product_error"]:
        if row["query_set"] != "ood" or row.get("solver", "closed_form") != "closed_form":
            continue
        checks.append(
            check(
                name,
                f"inner-product error reduction vs PCA, OOD queries, d={row['dims']}",
                f"{row['ood_error']:.4f} vs {row['pca_error']:.4f}",
                row["reduction"],
                f">= {ERROR_REDUCTION_TARGET}",
                row["reduction"] >= ERROR_REDUCTION_TARGET,
            )
        )
    return checks


def ood_comparison(
    runs: Sequence[SearchRun], id_name: str, ood_name: str
) -> tuple[int, float, float]:
    """At the smallest ef where either variant reaches 0.95 on the OOD set (else the largest
    ef): (ef, ID recall, OOD recall), both on the OOD evaluation set."""
    by_ef = {r.ef: r.recall_at_10 for r in runs if r.method == id_name and r.query_set == "ood"}
    ood_by_ef = {
        r.ef: r.recall_at_10 for r in runs if r.method == ood_name and r.query_set == "ood"
    }
    efs = sorted(by_ef)
    ef = next((e for e in efs if max(by_ef[e], ood_by_ef[e]) >= RECALL_TARGET), efs[-1])
    return ef, by_ef[ef], ood_by_ef[ef]


# --------------------------------------------------------------------------- report


def fmt(value: Any, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def build_table(result: dict[str, Any]) -> list[str]:
    methods = result["methods"]
    float_build = next(m["build_s"] for m in methods if m["kind"] == "hnsw")
    lines = [
        "| method | trained as | train s | add s | build s | HNSW build / this | primary B "
        "| secondary B | graph B | other B | total B/vector | primary / 4D |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for m in methods:
        b = m["bytes_per_vector"]
        lines.append(
            f"| {m['name']} | {m['trained_variant'] or '-'} | {m['train_s']:.1f} "
            f"| {m['add_s']:.1f} | {m['build_s']:.1f} | {float_build / m['build_s']:.2f} "
            f"| {b['primary']:,.0f} | {b['secondary']:,.0f} | {b['graph']:,.0f} "
            f"| {b['other']:,.1f} | {b['total']:,.0f} | {m['primary_fraction_of_float32']:.3f} |"
        )
    for name, seconds in result["svs"].get("builds_s", {}).items():
        lines.append(
            f"| {name} | - | - | - | {seconds:.1f} | {float_build / seconds:.2f} "
            "| - | - | - | - | - | - |"
        )
    return lines


def recall_table(result: dict[str, Any], query_set: str, ef_values: Sequence[int]) -> list[str]:
    runs = runs_of(result) + runs_of(result, "svs_search")
    names = list(dict.fromkeys(r.method for r in runs))
    lines = [
        "| method | " + " | ".join(f"ef {e}" for e in ef_values) + " |",
        "|---|" + "--:|" * len(ef_values),
    ]
    for name in names:
        cells = []
        for ef in ef_values:
            run = next(
                (r for r in runs if (r.method, r.query_set, r.ef) == (name, query_set, ef)), None
            )
            cells.append("-" if run is None else f"{run.recall_at_10:.3f} · {run.qps:,.0f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def error_lines(result: dict[str, Any]) -> list[str]:
    lines = [
        "| d | OOD solver | held-out queries | PCA (ID) error | OOD error | reduction |",
        "|--:|---|---|--:|--:|--:|",
    ]
    for row in result["inner_product_error"]:
        lines.append(
            f"| {row['dims']} | {row.get('solver', 'frank_wolfe')} | {row['query_set'].upper()} "
            f"| {row['pca_error']:.4f} | {row['ood_error']:.4f} | {row['reduction']:+.1%} |"
        )
    return lines


def quantizer_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    lines = [
        "| primaries of | quantizer | bytes/vector | relative error | recall@10 ID "
        "| recall@10 OOD |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for row in rows:
        recall = row["recall_at_10"]
        lines.append(
            f"| {row['model']} | {row['quantizer']} | {row['bytes_per_vector']:.0f} "
            f"| {row['relative_error']:.2e} | {recall['id']:.4f} | {recall['ood']:.4f} |"
        )
    return lines


def svs_lines(svs: dict[str, Any]) -> list[str]:
    lines = [f"Intel SVS: **{svs['status']}**"]
    if "exit_code" in svs:
        lines[0] += (
            f" (scalable-vs {svs['svs_version']}, exit code {svs['exit_code']}"
            f"{', stopped at ' + svs['failed_config'] if svs['failed_config'] else ''})"
        )
    if svs.get("stderr_tail") or svs.get("error"):
        text = svs.get("error") or svs["stderr_tail"]
        lines += ["", "```", text[-600:], "```"]
    return lines


def markdown_report(results: dict[str, Any]) -> str:
    m, config = results["machine"], results["config"]
    efs = config["ef_values"]
    lines = [
        "# LeanVec vs full-precision HNSW",
        "",
        f"{m['date']} · commit `{m['git_commit']}` · {m['cpu_model']} ({results['cpu_vendor']}), "
        f"{m['cores']} cores, {m['memory_gib']} GiB · numpy {m['numpy']} · faiss {m['faiss']} "
        f"({m['faiss_omp_threads']} OpenMP threads) · Python {m['python']}",
        "",
        f"In-process, Cosine, M={M}, ef_construct={EF_CONSTRUCT}, k={K}, batches of "
        f"{SEARCH_BATCH} queries; LeanVec rerank_factor 4 (the primary graph is searched with "
        f"a beam of max(ef, {K * 4})). Cells are recall@10 · queries/s (median of "
        f"{TIMED_PASSES} passes). Threads: "
        + ", ".join(f"{k}={v or 'unset'}" for k, v in config["threads_env"].items())
        + ".",
    ]
    for result in results["datasets"]:
        lines += [
            "",
            f"## {result['name']}: {result['n_base']:,} x {result['dimension']}, "
            f"{result['eval_queries']['id']:,} ID + {result['eval_queries']['ood']:,} OOD "
            f"evaluation queries, {result['train_queries']:,} OOD training queries",
            "",
            *build_table(result),
            "",
            "### ID queries (held-out long descriptions / same generator)",
            "",
            *recall_table(result, "id", efs),
            "",
            "### OOD queries (synopses / flatter spectrum, off-subspace energy)",
            "",
            *recall_table(result, "ood", efs),
            "",
            "### Inner-product error on held-out queries",
            "",
            *error_lines(result),
        ]
        if result["quantizers"]:
            lines += [
                "",
                "### LVQ vs faiss scalar quantizer on the primaries",
                "",
                *quantizer_lines(result["quantizers"]),
            ]
        lines += ["", *svs_lines(result["svs"])]
    lines += [
        "",
        "## Checks",
        "",
        "| data set | check | where | value | target | |",
        "|---|---|---|--:|---|---|",
        *(
            f"| {c['dataset']} | {c['name']} | {c['where']} | {fmt(c['value'], '.3f')} "
            f"| {c['target']} | {'PASS' if c['passed'] else 'FAIL'} |"
            for c in results["checks"]
        ),
        "",
        *(f"- {note}" for note in results["notes"]),
    ]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    """Recall@10 (x) vs queries/s (y, log): one panel per data set and query set."""
    plt = pyplot()

    datasets = results["datasets"]
    fig, axes = plt.subplots(len(datasets), 2, figsize=(12, 4.5 * len(datasets)), squeeze=False)
    for row, result in enumerate(datasets):
        runs = runs_of(result) + runs_of(result, "svs_search")
        for col, query_set in enumerate(QUERY_SETS):
            ax = axes[row][col]
            for name in dict.fromkeys(r.method for r in runs):
                chosen = sorted(
                    (r for r in runs if r.method == name and r.query_set == query_set),
                    key=lambda r: r.ef,
                )
                style = "--" if "faiss" in name or "SVS" in name else "-"
                ax.plot(
                    [r.recall_at_10 for r in chosen],
                    [r.qps for r in chosen],
                    style,
                    marker="o",
                    markersize=3,
                    label=name,
                )
            ax.axvline(RECALL_TARGET, color="grey", linewidth=0.8, linestyle=":")
            ax.set_yscale("log")
            ax.set_xlabel("recall@10")
            ax.set_ylabel("queries / s (batches of 100)")
            ax.set_title(f"{result['name']} ({result['dimension']}-d), {query_set.upper()} queries")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def notes_for(results: dict[str, Any]) -> list[str]:
    notes = [
        "Build = train + add (wall clock); raw faiss adds everything at once, Quiver's "
        f"indexes in chunks of {ADD_CHUNK:,} as the server's builds do; the fastest of up to "
        f"{BUILD_REPEATS} builds, repeated while they took under {BUILD_REPEAT_BUDGET_S:.0f} s "
        "together (so the 768-d builds run once).",
        "Bytes per vector: primary = the graph's vectors (LeanVec's d-dim codes, the float "
        "vectors for HNSW), secondary = full vectors kept for re-ranking, other = model "
        "(projection, quantizer ranges) and tombstones.",
        "QPS check: the LeanVec configuration with the most QPS at its smallest ef with "
        "recall@10 >= 0.95 on the ID set, against Quiver HNSW at its own smallest such ef. "
        "OOD-vs-ID check: both on the OOD set, at the smallest ef where either variant "
        "reaches 0.95 (else the largest ef).",
        f"Inner-product error over a seeded sample of at most {ERROR_SAMPLE:,} base rows.",
        "Per ef the methods take turns (so they share the machine's load); the 4-bit/int8 row "
        "set and SVS run after the main sweep.",
    ]
    if results["config"]["quick"]:
        notes.append(
            "Quick run: small base sets and few queries; build ratios at this size say little "
            "(LeanVec's fixed training cost weighs more)."
        )
    return notes + busy_notes(results["cpu_busy_before_start"])


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = new_parser(__doc__)
    add_common_options(parser, quick_help=f"smoke run: {QUICK_BASE:,} base vectors per set")
    add = parser.add_argument
    add(
        "--synthetic-base",
        type=int,
        default=None,
        help=f"synthetic base vectors (default {SYNTHETIC_BASE:,}; quick {QUICK_BASE:,})",
    )
    add(
        "--svs-python",
        type=Path,
        default=None,
        help="python of a separate venv with `scalable-vs` installed (Intel SVS reference)",
    )
    return parser.parse_args(argv)


def run_config(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    return {
        "quick": quick,
        "debian_base": QUICK_BASE if quick else None,
        "synthetic_base": args.synthetic_base or (QUICK_BASE if quick else SYNTHETIC_BASE),
        "synthetic_dim": SYNTHETIC_DIM,
        "synthetic_queries": SYNTHETIC_QUERIES,
        "eval_queries": QUICK_EVAL_QUERIES if quick else None,
        "ef_values": list(QUICK_EF_VALUES if quick else EF_VALUES),
        "k": K,
        "m": M,
        "ef_construct": EF_CONSTRUCT,
        "search_batch": SEARCH_BATCH,
        "add_chunk": ADD_CHUNK,
        "svs_python": None if args.svs_python is None else str(args.svs_python),
        "threads_env": {
            name: os.environ.get(name)
            for name in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
        },
    }


def run(args: argparse.Namespace, config: dict[str, Any]) -> dict[str, Any]:
    results: dict[str, Any] = {
        "benchmark": "leanvec",
        "config": config,
        "machine": machine_info(),
        "cpu_vendor": cpu_vendor(),
        "cpu_busy_before_start": cpu_busy_fraction(),
    }
    started = time.perf_counter()
    loaders: list[tuple[Callable[[], TextDataset], Callable[[], np.ndarray | None]]] = [
        (lambda: load_debian(config["debian_base"]), lambda: training_synopses(TRAIN_SYNOPSES)),
        (
            lambda: synthetic(config["synthetic_base"], SYNTHETIC_QUERIES, dim=SYNTHETIC_DIM),
            lambda: None,
        ),
    ]
    results["datasets"] = []
    for load, train_queries in loaders:
        log("loading data")
        data = split(load(), config["eval_queries"], train_queries())
        results["datasets"].append(measure_dataset(data, config["ef_values"], args.svs_python))
    results["checks"] = [c for r in results["datasets"] for c in dataset_checks(r)]
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["load_average_at_end"] = os.getloadavg()
    results["notes"] = notes_for(results)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    single_threaded_numpy_blas()  # as the server does at start
    config = run_config(args)
    results = run(args, config)
    status = finish(results, args, "leanvec", markdown_report, plot)
    log(f"total {results['seconds']:.0f}s")
    return status


if __name__ == "__main__":
    sys.exit(main())
