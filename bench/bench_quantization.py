"""Quantized HNSW over HTTP against the same faiss indexes in-process: recall@10, QPS, RAM.

One run measures, on the same machine, two data sets: GloVe 6B 50-d (`glove.py`: 390,000
base vectors, held-out queries) and the Debian MiniLM 384-d text embeddings
(`text_embeddings.py`: long package descriptions as the base, held-out descriptions as
in-distribution queries, package synopses as out-of-distribution queries). For each data set
and each method (float HNSW, scalar int8, product x16, binary, RaBitQ), one collection at a
time on one server (deleted before the next):

1. ingest over HTTP (`PUT /collections/{c}/points?wait=true`, 1,000 points per request) into
   a collection with `hnsw_config {m: 16, ef_construct: 100}` and the method's
   `quantization_config`, then the background builds until every point is in an indexed
   segment and the collection stays green: upload time, build time (the jobs' own clocks)
   and RAM per vector by part (the `vectors_memory` extension of `GET /collections/{c}`:
   codes, graph, model, originals; graph and vectors for float HNSW);
2. recall@10 and queries/s per `hnsw_ef`: batches of 100 queries over
   `POST .../points/query/batch` from one client, at the method's default oversampling; then
   once at ef 128 with `"quantization": {"rescore": false}`, to show what re-ranking buys;
3. the raw library reference in this process, taking turns with step 2 so that both see the
   same machine load: the same faiss index with the same parameters, built the way the server
   builds it (graph on the float vectors, copied into the code index) and searched in batches
   of 100 with the same beam: `IndexHNSWFlat`; `IndexRefineFlat` over `IndexHNSWSQ` /
   `IndexHNSWPQ` / `IndexHNSWRaBitQ` re-ranking `ceil(10 x oversampling)` candidates; or
   `IndexBinaryHNSW` with the re-ranking in numpy (faiss has no refine index for binary codes).

Checks, at the smallest ef whose HTTP recall@10 reaches 0.95 on the data set's first query
set: scalar int8 recall, codes <= 30% of float32 and >= 0.9x the throughput of float HNSW over
HTTP at that ef; product and RaBitQ recall and codes <= 1/8 of float32.

It prints markdown tables and saves them, with the raw numbers, machine details and a
recall-vs-QPS chart, to `bench/results/quantization.{md,json,png}`
(`bench/data/quantization_quick.*` with `--quick`).

    .venv/bin/python bench/bench_quantization.py            # full (~25 min on 2 cores)
    .venv/bin/python bench/bench_quantization.py --quick    # smoke: 50k GloVe, 10k text (~4 min)
"""

from __future__ import annotations

import os

# Before faiss (and its OpenMP runtime) loads, as the server does (server/cli.py): idle
# OpenMP threads sleep instead of spinning, so both sides of each ratio run faiss alike and
# neither side's waiting threads steal the CPU from the other on a small machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import functools
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import bench_hnsw
import faiss
import glove
import httpx
import numpy as np
import orjson
import text_embeddings
from bench_hnsw import (
    EF_CONSTRUCT,
    FAISS,
    INDEXING_THRESHOLD,
    RECALL_TARGET,
    SEARCH_BATCH,
    SEGMENT_NUMBER,
    K,
    M,
    SearchRun,
    build_faiss,
    build_summary,
    faiss_search,
    ingest,
    outcome_run,
    query_body,
)
from harness.cli import SERVER_LOG, add_common_options, finish, guarded, log, new_parser
from harness.http import (
    POLL_S,
    QUIET_S,
    batch_ranges,
    collection_info,
    expect_ok,
    jobs,
    search_batches,
    wait_green,
)
from harness.machine import busy_notes, cpu_busy_fraction, machine_info, machine_line
from harness.metrics import recall_at_k
from harness.results import pyplot
from harness.server import QuiverServer, headers

from index.quantization import QuantizationMethod, default_oversampling, rabitq_bits_within
from index.two_stage import hnsw_graph_bytes

EF_VALUES = (32, 64, 128, 256)
QUICK_EF_VALUES = (64, 128)
RESCORE_OFF_EF = 128
WARM_UP_S = 3.0
QUICK_GLOVE_BASE = 50_000
QUICK_TEXT_BASE = 10_000
QUERIES = 5_000
QUICK_QUERIES = 500
SCALAR_QUANTILE = 0.99
PRODUCT_COMPRESSION = 16
SCALAR_MEMORY_TARGET = 0.30
COMPACT_MEMORY_TARGET = 1 / 8
SCALAR_THROUGHPUT_TARGET = 0.9
TEXT_BUILD_COMMAND = ".venv/bin/python bench/text_embeddings.py build --base 56000 --queries 2000"
METHODS: dict[str, dict[str, Any] | None] = {
    "float": None,
    "scalar": {"scalar": {"type": "int8", "quantile": SCALAR_QUANTILE, "always_ram": True}},
    "product": {"product": {"compression": f"x{PRODUCT_COMPRESSION}", "always_ram": True}},
    "binary": {"binary": {"always_ram": True}},
    "rabitq": {"rabitq": {}},
}
# `vectors_memory` parts in the order the tables show them (others follow, sorted).
MEMORY_PARTS = ("codes", "graph", "model", "vectors", "originals", "originals_mapped", "tombstones")
# The server builds these methods' float graphs with L2 (see FloatGraphs).
L2_GRAPH_METHODS = ("binary", "rabitq")
Encoder = Callable[[np.ndarray], np.ndarray]


class DataMissing(RuntimeError):
    """A data set's cache is not built (yet)."""


@dataclass(frozen=True)
class BenchData:
    """One data set: the same base vectors with one split per query set (first: the one
    the checks use). `glove.GloveDataset` is the bench scripts' split type, so the text
    set is wrapped in it too and the `bench_hnsw` helpers take either."""

    key: str
    title: str
    splits: dict[str, glove.GloveDataset]
    indexing_threshold: int

    @property
    def primary(self) -> glove.GloveDataset:
        return next(iter(self.splits.values()))

    @property
    def base(self) -> np.ndarray:
        return self.primary.base

    @property
    def n_base(self) -> int:
        return self.primary.n_base

    @property
    def dimension(self) -> int:
        return self.primary.dimension


# --------------------------------------------------------------------------- data


def load_glove(n_base: int | None, n_queries: int) -> BenchData:
    dataset = glove.load(n_base)
    split = glove.GloveDataset(
        dataset.base,
        dataset.base_rows,
        dataset.queries[:n_queries],
        dataset.ground_truth[:n_queries],
        dataset.ground_truth_scores[:n_queries],
    )
    return BenchData("glove", "GloVe 6B 50-d", {"held-out": split}, threshold_for(dataset.n_base))


def load_text(n_base: int | None, n_queries: int) -> BenchData:
    """The Debian MiniLM set, or `DataMissing` naming the command that builds it."""
    try:
        if n_base is None:  # all that was built, in whole upsert batches (bench_hnsw.ingest)
            built = text_embeddings.read_meta()["counts"]["base"]
            n_base = built - built % bench_hnsw.INGEST_BATCH
        text = text_embeddings.load_debian(n_base)
    except (FileNotFoundError, ValueError) as exc:
        build_log = text_embeddings.DATA_DIR / "build.log"
        running = f"; a build may be under way, see {build_log}" if build_log.exists() else ""
        raise DataMissing(
            f"the 384-d text embeddings are not built ({exc}): run `{TEXT_BUILD_COMMAND}` "
            f"(~20 min on 2 cores){running}"
        ) from exc
    rows = np.arange(text.n_base, dtype=np.int64)

    def split(queries: np.ndarray, truth: np.ndarray, scores: np.ndarray) -> glove.GloveDataset:
        return glove.GloveDataset(
            text.base, rows, queries[:n_queries], truth[:n_queries], scores[:n_queries]
        )

    return BenchData(
        "text",
        f"Debian MiniLM {text.dimension}-d",
        {
            "in-distribution": split(
                text.queries_id, text.ground_truth_id, text.ground_truth_id_scores
            ),
            "out-of-distribution": split(
                text.queries_ood, text.ground_truth_ood, text.ground_truth_ood_scores
            ),
        },
        threshold_for(text.n_base),
    )


def threshold_for(n_base: int) -> int:
    """20,000 as in bench_hnsw.py; a quick run's 10k text base would otherwise never seal
    (an idle tail is only sealed beside an already indexed segment), so at most half."""
    return min(INDEXING_THRESHOLD, n_base // 2)


def load_data(config: dict[str, Any]) -> tuple[list[BenchData], list[str]]:
    """Every data set asked for; a missing text cache stops a full run, a quick run skips it."""
    loaders = {
        "glove": lambda: load_glove(config["glove_base"], config["queries"]),
        "text": lambda: load_text(config["text_base"], config["queries"]),
    }
    data, notes = [], []
    for key in config["datasets"]:
        try:
            data.append(loaders[key]())
        except DataMissing as exc:
            if not config["quick"]:
                raise
            notes.append(f"Skipped the text data set in this quick run: {exc}")
            log(notes[-1])
    return data, notes


# --------------------------------------------------------------------------- faiss reference


@dataclass
class FloatGraphs:
    """HNSW graphs on the float vectors, built once per data set: the inner-product one is
    the float reference and the graph of scalar and product, the L2 one that of binary and
    RaBitQ (the server builds those with L2: an inner-product graph walked with L2 or
    Hamming code distances came back empty in faiss 1.15)."""

    inner_product: Any
    l2: Any
    seconds: dict[str, float]


def build_graphs(data: BenchData) -> FloatGraphs:
    inner_product, ip_seconds = build_faiss(data.primary)
    l2 = FAISS.IndexHNSWFlat(data.dimension, M, faiss.METRIC_L2)
    l2.hnsw.efConstruction = EF_CONSTRUCT
    started = time.perf_counter()
    l2.add(data.base)
    seconds = {"inner_product": round(ip_seconds, 3), "l2": round(time.perf_counter() - started, 3)}
    return FloatGraphs(inner_product, l2, seconds)


@dataclass
class Reference:
    """A faiss index searched the way the server searches one method.

    `primary` is walked with `efSearch = max(ef, candidates)` (the server's beam); with
    `oversampling` set, `ceil(10 x oversampling)` candidates are re-ranked with the float
    vectors by `refine` (`IndexRefineFlat`) or, for binary codes, in numpy."""

    label: str
    primary: Any
    encode: Encoder
    oversampling: float | None
    refine: Any
    base: np.ndarray
    graph_seconds: float
    codes_seconds: float

    def bytes_per_vector(self) -> dict[str, float]:
        """Codes (or float vectors) and graph, counted as the server counts them
        (`index/two_stage.py`), plus the float rows kept for re-ranking."""
        storage = self.primary.storage
        if not isinstance(self.primary, FAISS.IndexBinary):
            storage = FAISS.downcast_index(storage)
        graph = hnsw_graph_bytes(self.primary.hnsw) / self.primary.ntotal
        searched = "vectors" if self.oversampling is None else "codes"
        parts = {searched: float(storage.code_size), "graph": round(graph, 1)}
        if self.oversampling is not None:
            parts["originals"] = float(self.base.itemsize * self.base.shape[1])
        return parts

    def search(self, queries: np.ndarray, *, ef: int, rescore: bool = True) -> np.ndarray:
        codes = self.encode(queries)
        if self.oversampling is None:
            return faiss_search(self.primary, codes, ef)
        wanted = candidates(self.oversampling)
        beam = FAISS.SearchParametersHNSW(efSearch=max(ef, wanted))
        if not rescore:
            return np.asarray(self.primary.search(codes, wanted, params=beam)[1][:, :K])
        if self.refine is not None:
            # k_factor * k is truncated to an int in faiss: aim half a candidate above.
            params = FAISS.IndexRefineSearchParameters(
                k_factor=(wanted + 0.5) / K, base_index_params=beam
            )
            return np.asarray(self.refine.search(codes, K, params=params)[1], dtype=np.int64)
        found = np.asarray(self.primary.search(codes, wanted, params=beam)[1], dtype=np.int64)
        return rerank(self.base, queries, found)


def candidates(oversampling: float) -> int:
    """How many candidates the server re-ranks: `ceil(k * oversampling)`."""
    return max(K, math.ceil(K * oversampling))


def rerank(base: np.ndarray, queries: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Top-10 of `found` by inner product with the float vectors (-1 = no candidate)."""
    scores = np.einsum("qcd,qd->qc", base[np.maximum(found, 0)], queries)
    scores[found < 0] = -np.inf
    best = np.argsort(-scores, axis=1)[:, :K]
    return np.take_along_axis(found, best, axis=1)


def method_oversampling(method: str, dimension: int) -> float | None:
    """The server's default for the method (`index/quantization.py`), None for float."""
    if method == "float":
        return None
    quantized = cast("QuantizationMethod", method)
    return default_oversampling(quantized, dimension, PRODUCT_COMPRESSION, rabitq_bits(dimension))


def rabitq_bits(dimension: int) -> int:
    """The server's default: the most bits per dimension within 1/8 of float32."""
    return rabitq_bits_within(dimension, budget=dimension * 4 // 8)


def identity(vectors: np.ndarray) -> np.ndarray:
    return vectors


def pad(vectors: np.ndarray, width: int) -> np.ndarray:
    """Zero-pad to `width` dimensions (zeros change no inner product), as the server does."""
    padded = np.zeros((len(vectors), width), dtype=np.float32)
    padded[:, : vectors.shape[1]] = vectors
    return padded


def sign_bits(vectors: np.ndarray, mean: np.ndarray, bits: int) -> np.ndarray:
    signs = np.zeros((len(vectors), bits), dtype=bool)
    signs[:, : vectors.shape[1]] = (vectors - mean) > 0
    packed: np.ndarray = np.packbits(signs, axis=1)
    return packed


def code_index(method: str, dim: int, train: np.ndarray) -> tuple[Any, Encoder, str]:
    """An empty, trained faiss code index made as the server makes it
    (`index/quantization.py`), what turns float rows into its input, and a label."""
    if method == "scalar":
        index = FAISS.IndexHNSWSQ(dim, FAISS.ScalarQuantizer.QT_8bit, M, faiss.METRIC_INNER_PRODUCT)
        quantizer = FAISS.downcast_index(index.storage).sq
        quantizer.rangestat = FAISS.ScalarQuantizer.RS_quantiles
        quantizer.rangestat_arg = (1.0 - SCALAR_QUANTILE) / 2
        index.train(train)
        return index, identity, f"IndexHNSWSQ (8-bit, quantile {SCALAR_QUANTILE})"
    if method == "product":
        sub = PRODUCT_COMPRESSION // 4
        width = math.ceil(dim / sub) * sub
        encode = identity if width == dim else functools.partial(pad, width=width)
        index = FAISS.IndexHNSWPQ(width, width // sub, M, 8, faiss.METRIC_INNER_PRODUCT)
        # Only quiets faiss's "provide at least 9984 training points" line per sub-quantizer
        # (a quick run trains on 5,000 rows); the threshold changes nothing else.
        FAISS.downcast_index(index.storage).pq.cp.min_points_per_centroid = 1
        index.train(encode(train))
        return index, encode, f"IndexHNSWPQ ({width // sub} x 8 bits)"
    if method == "binary":
        bits = math.ceil(dim / 8) * 8
        encode = functools.partial(sign_bits, mean=train.mean(axis=0), bits=bits)
        return FAISS.IndexBinaryHNSW(bits, M), encode, f"IndexBinaryHNSW ({bits} sign bits)"
    index = FAISS.IndexHNSWRaBitQ(dim, M, rabitq_bits(dim))
    index.train(train)
    return index, identity, f"IndexHNSWRaBitQ ({rabitq_bits(dim)} bit/dim)"


def build_reference(method: str, data: BenchData, graphs: FloatGraphs) -> Reference:
    """The method's faiss index: codes trained on the first `indexing_threshold` rows (the
    server trains on its first segment, and merges keep that model), the float graph
    copied in and the codes appended, as `index/two_stage.py` does."""
    started = time.perf_counter()
    graph = graphs.l2 if method in L2_GRAPH_METHODS else graphs.inner_product
    graph_seconds = graphs.seconds["l2" if method in L2_GRAPH_METHODS else "inner_product"]
    if method == "float":
        primary, encode, label, refine = graph, identity, "IndexHNSWFlat", None
    else:
        train = data.base[: data.indexing_threshold]
        primary, encode, label = code_index(method, data.dimension, train)
        encoded = np.ascontiguousarray(encode(data.base))
        primary.storage.add(encoded)
        primary.hnsw = graph.hnsw  # SWIG assigns by value: the code index gets a copy
        primary.ntotal = graph.ntotal
        refine = None
        if method != "binary":  # IndexRefineFlat copies the rows it re-ranks with
            refine = FAISS.IndexRefineFlat(primary, faiss.swig_ptr(encoded))
            label = f"IndexRefineFlat({label})"
    oversampling = method_oversampling(method, data.dimension)
    seconds = time.perf_counter() - started
    return Reference(
        label, primary, encode, oversampling, refine, data.base, graph_seconds, seconds
    )


def reference_batches(
    search: Callable[[np.ndarray], np.ndarray], split: glove.GloveDataset, ef: int
) -> SearchRun:
    """All the split's queries in batches of 100, after a pause and one untimed batch."""
    n = len(split.queries)
    ids = np.empty((n, K), dtype=np.int64)
    time.sleep(QUIET_S)
    search(split.queries[:SEARCH_BATCH])
    started = time.perf_counter()
    for start in range(0, n, SEARCH_BATCH):
        ids[start : start + SEARCH_BATCH] = search(split.queries[start : start + SEARCH_BATCH])
    seconds = time.perf_counter() - started
    return SearchRun("faiss", ef, n, seconds, recall_at_k(ids, split.ground_truth, K))


# --------------------------------------------------------------------------- HTTP


def create_body(method: str, data: BenchData, config: dict[str, Any]) -> dict[str, Any]:
    hnsw: dict[str, Any] = {"m": M, "ef_construct": EF_CONSTRUCT}
    if config["full_scan_threshold_kb"] is not None:
        hnsw["full_scan_threshold"] = config["full_scan_threshold_kb"]
    body: dict[str, Any] = {
        "vectors": {"size": data.dimension, "distance": "Cosine"},
        "hnsw_config": hnsw,
        "optimizers_config": {
            "indexing_threshold": data.indexing_threshold,
            "default_segment_number": SEGMENT_NUMBER,
        },
    }
    if METHODS[method] is not None:
        body["quantization_config"] = METHODS[method]
    return body


def wait_indexed(
    client: httpx.Client, collection: str, n_points: int, timeout_s: float
) -> dict[str, Any]:
    """Until green holds *and* every point is in an indexed segment: a tail below
    `indexing_threshold` is sealed (and indexed) only after the server's idle delay,
    possibly after a first green. Seconds run to the start of the green that held."""
    started = time.perf_counter()
    rounds: list[dict[str, Any]] = []
    while True:
        round_started = time.perf_counter()
        remaining = timeout_s - (round_started - started)
        rounds.append(wait_green(client, remaining, "build", collection))
        info = collection_info(client, collection)
        if info["indexed_vectors_count"] >= n_points:
            return {
                "seconds": round(round_started - started + rounds[-1]["seconds"], 3),
                "flickers": sum(r["flickers"] for r in rounds),
                "green_rounds": len(rounds),
            }
        if time.perf_counter() - started > timeout_s:
            raise RuntimeError(f"{info['indexed_vectors_count']} of {n_points} points indexed")
        time.sleep(POLL_S)


def load_collection(
    client: httpx.Client, collection: str, method: str, data: BenchData, config: dict[str, Any]
) -> dict[str, Any]:
    """Create, upload, wait until indexed; returns upload, build, collection and memory."""
    body = create_body(method, data, config)
    expect_ok(client.put(f"/collections/{collection}", content=orjson.dumps(body)), "create")
    upload = ingest(client, data.primary, collection)
    log(f"{method}: upload {upload['seconds']:.1f}s ({upload['points_per_s']:,.0f} points/s)")
    settle = wait_indexed(client, collection, data.n_base, config["settle_timeout_s"])
    build = {**build_summary(jobs(client, collection), upload), "settle": settle}
    info = collection_info(client, collection)
    if info["points_count"] != data.n_base:
        raise RuntimeError(f"points_count is {info['points_count']}, expected {data.n_base}")
    memory = info["vectors_memory"][""]
    log(
        f"{method}: build {build['seconds']}s, green {settle['seconds']:.1f}s after the upload; "
        f"bytes/vector {memory['bytes_per_vector']}"
    )
    counts = {k: info[k] for k in ("segments_count", "points_count", "indexed_vectors_count")}
    return {
        "create": body,
        "upload": upload,
        "build": build,
        "collection": counts,
        "memory": memory,
    }


def http_batches(
    client: httpx.Client,
    collection: str,
    split: glove.GloveDataset,
    ef: int,
    quantization: dict[str, Any] | None,
    deadline_s: float,
) -> tuple[SearchRun, list[str]]:
    """Batches of 100 from one client, in order, after a pause and one untimed batch."""
    batches = batch_ranges(len(split.queries), SEARCH_BATCH)
    bodies = []
    for rows in batches:
        searches = [query_body(vector, ef) for vector in split.queries[rows.start : rows.stop]]
        if quantization is not None:
            for search in searches:
                search["params"]["quantization"] = quantization
        bodies.append(orjson.dumps({"searches": searches}))
    outcome, seconds = search_batches(client, bodies, batches, deadline_s, collection)
    return outcome_run("HTTP", ef, outcome, seconds, split.ground_truth), outcome.error_samples


# --------------------------------------------------------------------------- one method


def measure_method(
    client: httpx.Client,
    method: str,
    data: BenchData,
    graphs: FloatGraphs,
    config: dict[str, Any],
) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """Load the collection, build the reference, then HTTP and faiss take turns per ef."""
    collection = f"{data.key}_{method}"
    loaded = load_collection(client, collection, method, data, config)
    reference = build_reference(method, data, graphs)
    log(
        f"{method}: faiss reference {reference.label}: codes {reference.codes_seconds:.1f}s "
        f"(+ float graph {reference.graph_seconds:.1f}s)"
    )
    oversampling = method_oversampling(method, data.dimension)
    wanted = K if oversampling is None else candidates(oversampling)
    cases = [(ef, True) for ef in config["ef_values"]]
    if oversampling is not None:
        cases.append((config["rescore_off_ef"], False))
    # Untimed: a fresh collection's first searches touch cold pages (memory-mapped
    # originals among them), which would slow whichever row came first.
    http_batches(client, collection, data.primary, config["ef_values"][0], None, WARM_UP_S)
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    for queries, split in data.splits.items():
        for ef, rescore in cases:
            quantization = None if rescore else {"rescore": False}
            http, http_errors = http_batches(
                client, collection, split, ef, quantization, config["time_limit_s"]
            )
            search = functools.partial(reference.search, ef=ef, rescore=rescore)
            raw = reference_batches(search, split, ef)
            errors += http_errors
            labels = {
                "dataset": data.key,
                "method": method,
                "queries": queries,
                "rescore": rescore,
                "beam": max(ef, wanted),
            }
            rows += [labelled(http, labels), labelled(raw, labels)]
            log(
                f"{method} {queries} ef {ef}{'' if rescore else ' rescore off'}: HTTP "
                f"{http.qps:,.0f} QPS r@10 {http.recall_at_10:.4f} | faiss {raw.qps:,.0f} QPS "
                f"r@10 {raw.recall_at_10:.4f}"
            )
    expect_ok(client.delete(f"/collections/{collection}"), "delete")
    summary = {
        **loaded,
        "faiss_index": reference.label,
        "oversampling": oversampling,
        "candidates": wanted if oversampling is not None else None,
        "rabitq_bits": rabitq_bits(data.dimension) if method == "rabitq" else None,
        "reference": {
            "label": reference.label,
            "build_seconds": round(reference.graph_seconds + reference.codes_seconds, 3),
            "graph_seconds": reference.graph_seconds,
            "codes_seconds": round(reference.codes_seconds, 3),
            "bytes_per_vector": reference.bytes_per_vector(),
        },
    }
    return summary, rows, errors


def labelled(run: SearchRun, labels: dict[str, Any]) -> dict[str, Any]:
    row = run.as_dict()
    row["side"] = row.pop("method")
    return {**labels, **row}


def measure_dataset(
    client: httpx.Client, data: BenchData, config: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    log(f"{data.title}: {data.n_base:,} base vectors; building the float graphs for faiss")
    graphs = build_graphs(data)
    log(f"{data.title}: faiss float graphs {graphs.seconds} s")
    methods: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    for method in config["methods"]:
        methods[method], method_rows, method_errors = measure_method(
            client, method, data, graphs, config
        )
        rows += method_rows
        errors += method_errors
    summary = {
        "title": data.title,
        "n_base": data.n_base,
        "dimension": data.dimension,
        "queries": {name: len(split.queries) for name, split in data.splits.items()},
        "indexing_threshold": data.indexing_threshold,
        "faiss_float_graph_seconds": graphs.seconds,
        "methods": methods,
    }
    return summary, rows, errors


# --------------------------------------------------------------------------- checks


def select(rows: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    """The rows whose fields equal `match`, by ef."""
    chosen = (r for r in rows if all(r[k] == v for k, v in match.items()))
    return sorted(chosen, key=lambda r: r["ef"])


def check(
    dataset: str,
    name: str,
    values: tuple[float | None, float | None],
    target: tuple[str, float],
    at_ef: int | None,
) -> dict[str, Any]:
    """`values` are (Quiver's, the faiss reference's); `target` is (">=" or "<=", bound) and
    applies to Quiver's value; a missing value fails."""
    (value, reference), (op, bound) = values, target
    passed = value is not None and (value >= bound if op == ">=" else value <= bound)
    return {
        "dataset": dataset,
        "name": name,
        "at_ef": at_ef,
        "value": value,
        "faiss_value": reference,
        "target": f"{op} {bound:g}",
        "passed": bool(passed),
    }


def compute_checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per data set, at the smallest ef whose HTTP recall@10 (first query set) reaches the
    target (or the best one's ef when none does): each with the faiss reference's value."""
    checks: list[dict[str, Any]] = []
    for key, dataset in results["datasets"].items():
        queries = next(iter(dataset["queries"]))
        mine = [r for r in results["search"] if r["dataset"] == key and r["queries"] == queries]
        for method in ("scalar", "product", "rabitq"):
            if method in dataset["methods"]:
                checks += method_checks(mine, key, dataset, queries, method)
    return checks


def method_checks(
    rows: list[dict[str, Any]], key: str, dataset: dict[str, Any], queries: str, method: str
) -> list[dict[str, Any]]:
    def at(side: str, name: str, ef: int) -> dict[str, Any] | None:
        found = select(rows, method=name, side=side, rescore=True, ef=ef)
        return found[0] if found else None

    runs = select(rows, method=method, side="HTTP", rescore=True)
    best = max(runs, key=lambda r: r["recall_at_10"])
    hit = next((r for r in runs if r["recall_at_10"] >= RECALL_TARGET), best)
    ef, reached = hit["ef"], hit["recall_at_10"] >= RECALL_TARGET
    raw = at("faiss", method, ef)
    float_bytes = 4 * dataset["dimension"]
    codes = dataset["methods"][method]["memory"]["bytes_per_vector"].get("codes")
    raw_codes = dataset["methods"][method]["reference"]["bytes_per_vector"]["codes"]
    memory_target = SCALAR_MEMORY_TARGET if method == "scalar" else COMPACT_MEMORY_TARGET
    checks = [
        check(
            key,
            f"{method} recall@10 ({queries} queries)",
            (hit["recall_at_10"], None if raw is None else raw["recall_at_10"]),
            (">=", RECALL_TARGET),
            ef,
        ),
        check(
            key,
            f"{method} codes bytes / float32 bytes",
            (None if codes is None else codes / float_bytes, raw_codes / float_bytes),
            ("<=", memory_target),
            None,
        ),
    ]
    if method == "scalar":
        float_http, float_raw = at("HTTP", "float", ef), at("faiss", "float", ef)
        ratio = hit["qps"] / float_http["qps"] if float_http and reached else None
        raw_ratio = raw["qps"] / float_raw["qps"] if raw and float_raw else None
        checks.append(
            check(
                key,
                "scalar QPS / float HNSW QPS, same ef",
                (ratio, raw_ratio),
                (">=", SCALAR_THROUGHPUT_TARGET),
                ef,
            )
        )
    return checks


# --------------------------------------------------------------------------- report


def fmt(value: Any, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def build_table(dataset: dict[str, Any]) -> list[str]:
    lines = [
        "| method | faiss index (server and reference) | oversampling | candidates | upload s "
        "| points/s | build jobs s | upload end to indexed + green s "
        "| faiss build s (float graph + codes) |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for method, m in dataset["methods"].items():
        lines.append(
            f"| {method} | {m['faiss_index']} | {fmt(m['oversampling'], '.2f')} "
            f"| {fmt(m['candidates'], 'd')} | {m['upload']['seconds']:.1f} "
            f"| {m['upload']['points_per_s']:,.0f} | {fmt(m['build']['seconds'], '.1f')} "
            f"| {m['build']['settle']['seconds']:.1f} | {m['reference']['build_seconds']:.1f} |"
        )
    return lines


def memory_table(dataset: dict[str, Any]) -> list[str]:
    """The server's parts per vector (whatever it reports, known ones first) and faiss's."""
    reported = {p for m in dataset["methods"].values() for p in m["memory"]["bytes_per_vector"]}
    parts = [p for p in MEMORY_PARTS if p in reported] + sorted(reported - set(MEMORY_PARTS))
    lines = [
        f"| method | {' | '.join(parts)} | sum | codes / float32 | faiss codes (float: vectors) "
        "| faiss graph |",
        "|---|" + "--:|" * (len(parts) + 4),
    ]
    for method, m in dataset["methods"].items():
        per, raw = m["memory"]["bytes_per_vector"], m["reference"]["bytes_per_vector"]
        codes = per.get("codes")
        fraction = None if codes is None else codes / (4 * dataset["dimension"])
        cells = " | ".join(fmt(per.get(p), ".1f") for p in parts)
        lines.append(
            f"| {method} | {cells} | {sum(per.values()):.1f} | {fmt(fraction, '.3f')} "
            f"| {raw.get('codes', raw.get('vectors')):.1f} | {raw['graph']:.1f} |"
        )
    return lines


def search_table(rows: list[dict[str, Any]], key: str) -> list[str]:
    lines = [
        "| method | queries | ef | beam | rescore | HTTP recall@10 | HTTP QPS | faiss recall@10 "
        "| faiss QPS | HTTP / faiss | errors |",
        "|---|---|--:|--:|---|--:|--:|--:|--:|--:|--:|",
    ]
    http_rows = (r for r in rows if r["dataset"] == key and r["side"] == "HTTP")
    faiss_rows = (r for r in rows if r["dataset"] == key and r["side"] == "faiss")
    for http, raw in zip(http_rows, faiss_rows, strict=True):
        lines.append(
            f"| {http['method']} | {http['queries']} | {http['ef']} | {http['beam']} "
            f"| {'yes' if http['rescore'] else '**no**'} | {http['recall_at_10']:.4f} "
            f"| {http['qps']:,.0f} | {raw['recall_at_10']:.4f} | {raw['qps']:,.0f} "
            f"| {http['qps'] / raw['qps']:.2f} | {http['errors']} |"
        )
    return lines


def markdown_report(results: dict[str, Any]) -> str:
    m, config = results["machine"], results["config"]
    full_scan = config["full_scan_threshold_kb"]
    lines = [
        "# Quiver quantization: recall@10 vs queries/s and RAM per vector",
        "",
        machine_line(m),
        "",
        f"M={M}, ef_construct={EF_CONSTRUCT}, default_segment_number={SEGMENT_NUMBER}, "
        f"full_scan_threshold={'server default' if full_scan is None else f'{full_scan} KB'}; "
        f"scalar int8 quantile {SCALAR_QUANTILE}, product x{PRODUCT_COMPRESSION}, each method "
        f"at the server's default oversampling; batches of {SEARCH_BATCH} queries from one "
        f"client; the run took {results['seconds'] / 60:.0f} min.",
    ]
    for key, dataset in results["datasets"].items():
        counts = ", ".join(f"{n:,} {name}" for name, n in dataset["queries"].items())
        lines += [
            "",
            f"## {dataset['title']}: {dataset['n_base']:,} base vectors; queries: {counts}",
            "",
            f"indexing_threshold {dataset['indexing_threshold']:,}; the faiss reference's float "
            f"graphs took {dataset['faiss_float_graph_seconds']} s.",
            "",
            *build_table(dataset),
            "",
            "RAM, bytes per vector (the server's `vectors_memory`, sealed segments; faiss "
            "counted the same way):",
            "",
            *memory_table(dataset),
            "",
            *search_table(results["search"], key),
        ]
    lines += [
        "",
        "## Checks",
        "",
        "| data set | check | at ef | Quiver (HTTP) | faiss reference | target | |",
        "|---|---|--:|--:|--:|--:|---|",
        *(
            f"| {c['dataset']} | {c['name']} | {fmt(c['at_ef'], 'd')} | {fmt(c['value'], '.3f')} "
            f"| {fmt(c['faiss_value'], '.3f')} | {c['target']} "
            f"| {'PASS' if c['passed'] else 'FAIL'} |"
            for c in results["checks"]
        ),
        "",
        *(f"- {note}" for note in results["notes"]),
    ]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    """One panel per data set (its first query set): recall@10 (x) vs queries/s (y, log),
    a colour per method, Quiver HTTP solid, faiss dashed. The rows without re-ranking are
    left to the tables: their recall (0.2-0.9) would squeeze the curves into a corner."""
    plt = pyplot()

    datasets = results["datasets"]
    fig, axes = plt.subplots(1, len(datasets), figsize=(7 * len(datasets), 5), squeeze=False)
    for ax, (key, dataset) in zip(axes[0], datasets.items(), strict=True):
        queries = next(iter(dataset["queries"]))
        for colour, method in enumerate(dataset["methods"]):
            rows = select(results["search"], dataset=key, queries=queries, method=method)
            for side, style in (("HTTP", "o-"), ("faiss", "^--")):
                chosen = [r for r in rows if r["side"] == side and r["rescore"]]
                ax.plot(
                    [r["recall_at_10"] for r in chosen],
                    [r["qps"] for r in chosen],
                    style,
                    color=f"C{colour}",
                    label=f"{method}, {side}",
                )
        ax.axvline(RECALL_TARGET, color="grey", linewidth=0.8, linestyle=":")
        ax.set_yscale("log")
        ax.set_xlabel(f"recall@10 ({queries} queries)")
        ax.set_ylabel("queries / s, batches of 100")
        efs = "/".join(map(str, results["config"]["ef_values"]))
        ax.set_title(f"{dataset['title']}, {dataset['n_base']:,} vectors, ef {efs}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def notes_for(results: dict[str, Any]) -> list[str]:
    notes = [
        "The faiss reference is built the way the server builds it: an HNSW graph on the float "
        "vectors (`IndexHNSWFlat`, inner product for float, scalar and product; L2 for binary "
        "and RaBitQ, as the server does), copied into the code index, whose codes are trained "
        "on the first indexing_threshold base rows. A plain faiss `IndexHNSWSQ` / `IndexHNSWPQ` "
        "/ `IndexHNSWRaBitQ` / `IndexBinaryHNSW` would build its graph on the codes, a worse "
        "graph for coarse codes (`index/two_stage.py`: product x16 on GloVe-50 re-ranked 0.48 "
        "on a code graph, 0.92 on the float graph), so the reference is not plain faiss.",
        "beam = max(ef, ceil(10 x oversampling)) is the width both sides search with: where the "
        "candidates to re-rank exceed ef, a larger ef changes nothing.",
        "Quantized collections also keep the float32 originals for re-ranking (`originals` in "
        "RAM, `originals_mapped` memory-mapped, as the server reports them), so their sum per "
        "vector exceeds float HNSW's; the memory targets are about the codes the graph walk "
        "reads. faiss's reference keeps its originals in RAM (IndexRefineFlat, numpy).",
        "Quiver searches each sealed segment's graph and merges (segments after the builds: "
        + ", ".join(
            f"{key} {method} {m['collection']['segments_count'] - 1}"
            for key, d in results["datasets"].items()
            for method, m in d["methods"].items()
        )
        + " sealed, plus an empty appendable one); faiss searches one graph.",
        "The server's build time (jobs' clocks) overlaps the upload; 'upload end to indexed "
        "and green' includes the idle delay before the server seals the last, sub-threshold "
        f"tail (QUIVER_IDLE_SEAL_S = {results['config']['idle_seal_s'] or '10, the default'} s).",
        "Checks use the first query set of each data set; the text set's out-of-distribution "
        "queries (package synopses against long descriptions) are reported, not checked.",
    ]
    if results["config"]["quick"]:
        notes.append(
            "Quick run: small base sets, few queries, full_scan_threshold 10 KB so the small "
            "segments are searched through their graphs; its numbers only show the script works."
        )
    policy = results["config"]["omp_wait_policy"]
    if policy != "PASSIVE":
        notes.append(
            f"faiss ran here with OMP_WAIT_POLICY={policy}, the server with PASSIVE: "
            "the HTTP / faiss ratios compare differently configured OpenMP runtimes."
        )
    notes += busy_notes(results["cpu_busy_before_start"])
    return notes + results["data_notes"] + [f"error: {e}" for e in results["errors"]]


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = new_parser(__doc__)
    add_common_options(
        parser,
        quick_help=f"smoke run: {QUICK_GLOVE_BASE:,} GloVe and {QUICK_TEXT_BASE:,} text base "
        f"vectors, {QUICK_QUERIES} queries, ef {'/'.join(map(str, QUICK_EF_VALUES))}",
        port=True,
    )
    add = parser.add_argument
    add("--datasets", nargs="+", choices=("glove", "text"), default=["glove", "text"])
    add("--methods", nargs="+", choices=tuple(METHODS), default=list(METHODS))
    add(
        "--queries",
        type=int,
        default=None,
        help=f"queries per query set, at most (default {QUERIES:,}; quick {QUICK_QUERIES})",
    )
    add("--time-limit", type=float, default=60.0, help="seconds per HTTP search phase, at most")
    add("--settle-timeout", type=float, default=900.0, help="seconds to wait for indexed + green")
    return parser.parse_args(argv)


def run_config(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    # A quick run's builds finish within the server's 10 s idle delay; sealing the tail
    # after 2 s instead changes when the last points are indexed, not how.
    idle_seal = os.environ.get("QUIVER_IDLE_SEAL_S") or ("2" if quick else None)
    return {
        "quick": quick,
        "datasets": args.datasets,
        "methods": args.methods,
        "glove_base": QUICK_GLOVE_BASE if quick else None,
        "text_base": QUICK_TEXT_BASE if quick else None,
        "queries": args.queries or (QUICK_QUERIES if quick else QUERIES),
        "ef_values": list(QUICK_EF_VALUES if quick else EF_VALUES),
        "rescore_off_ef": RESCORE_OFF_EF,
        "time_limit_s": args.time_limit,
        "settle_timeout_s": args.settle_timeout,
        # A quick run's merged 50k GloVe segment (10,000,000 bytes of floats) is under the
        # server's default 10,000 KB full-scan threshold and would be scanned exactly.
        "full_scan_threshold_kb": 10 if quick else None,
        "idle_seal_s": idle_seal,  # None: the server's default (10 s)
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "k": K,
        "m": M,
        "ef_construct": EF_CONSTRUCT,
        "default_segment_number": SEGMENT_NUMBER,
        "search_batch": SEARCH_BATCH,
        "ingest_batch": bench_hnsw.INGEST_BATCH,
        "methods_config": METHODS,
    }


def run(args: argparse.Namespace, config: dict[str, Any]) -> dict[str, Any]:
    data, data_notes = load_data(config)
    if not data:
        raise RuntimeError("no data set to measure")
    results: dict[str, Any] = {
        "benchmark": "quantization",
        "config": config,
        "machine": machine_info(),
        "cpu_busy_before_start": cpu_busy_fraction(),
        "datasets": {},
        "search": [],
        "errors": [],
        "data_notes": data_notes,
    }
    idle_seal = config["idle_seal_s"]
    env = {} if idle_seal is None else {"QUIVER_IDLE_SEAL_S": idle_seal}
    with (
        QuiverServer(args.port, env=env, keep_log=SERVER_LOG) as server,
        httpx.Client(base_url=server.url, headers=headers(), timeout=300.0) as client,
    ):
        log(f"server up at {server.url} (log: {SERVER_LOG})")
        for dataset in data:
            summary, rows, errors = measure_dataset(client, dataset, config)
            results["datasets"][dataset.key] = summary
            results["search"] += rows
            results["errors"] += errors
            server.check_alive()
    results["checks"] = compute_checks(results)
    results["load_average_at_end"] = os.getloadavg()
    results["notes"] = notes_for(results)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = run_config(args)
    started = time.perf_counter()
    results = guarded(lambda: run(args, config))
    if results is None:
        return 2
    results["seconds"] = round(time.perf_counter() - started, 1)
    status = finish(results, args, "quantization", markdown_report, plot)
    log(f"run took {results['seconds'] / 60:.1f} min")
    return status


if __name__ == "__main__":
    sys.exit(main())
