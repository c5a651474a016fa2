"""Quiver's filter-aware query planner on GloVe 6B 50-d: recall@10 and QPS per filter.

One run loads the base vectors with two synthetic payload fields, `sel` (an integer drawn
uniformly from [0, 10000), seeded) and `tag` (the keyword `t{sel % 100}`), indexes both, and
then, for each filter, measures recall@10 against the exact filtered top-10 (computed in this
process with faiss over the allowed subset) and queries/s over HTTP (batches of 50 via
`POST .../points/query/batch`, one client) for the planner and for each strategy forced alone
(`"strategy": "exact" | "graph" | "post_filter"`). The filters are:

- `sel < T` for selectivities 100%, 50%, 10%, 1%, 0.1%, 0.01% (uncorrelated with the vectors);
- `tag == "t7"` (1%, a keyword index instead of an integer range);
- correlated, per query: `has_id` of the 1% of points nearest the query ("near") or farthest
  from it ("far").

`"explain": true` on a few queries per filter records the plans the planner chose. A time
budget per measurement caps the slow strategies (forced `post_filter` on a tiny filter walks
most of the graph); a capped measurement reports the queries it answered in its budget.

It prints markdown tables and saves them, with the raw numbers, machine details and a
two-panel chart, to `bench/results/planner_glove50.{md,json,png}`
(`bench/data/planner_glove50_quick.*` with `--quick`).

    .venv/bin/python bench/bench_planner.py            # full: 390k base vectors (~10 min, 2 cores)
    .venv/bin/python bench/bench_planner.py --quick    # smoke: 50k base vectors, 100 queries
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import glove
import httpx
import numpy as np
import numpy.typing as npt
import orjson
from bench_hnsw import (
    EF_CONSTRUCT,
    INDEXING_THRESHOLD,
    PERCENTILES,
    SEGMENT_NUMBER,
    M,
    build_summary,
    create_body,
    segment_summary,
)
from harness.cli import SERVER_LOG, add_common_options, log, new_parser, run_and_finish
from harness.data import exact_top_k
from harness.http import collection_info, expect_ok, jobs, segments, send_batch, wait_green
from harness.machine import busy_notes, cpu_busy_fraction, machine_info, machine_line
from harness.metrics import latency_summary
from harness.results import pyplot
from harness.server import QuiverServer, headers

COLLECTION = "glove"
K = 10
QUICK_BASE = 50_000
INGEST_BATCH = 1000
SEARCH_BATCH = 50
SEL_VALUES = 10_000
PAYLOAD_SEED = 7
KEYWORD_TAG = "t7"  # tag = t{sel % 100}: one value in a hundred, 1% of the points
SELECTIVITIES = (1.0, 0.5, 0.1, 0.01, 0.001, 0.0001)
QUICK_SELECTIVITIES = (1.0, 0.5, 0.1, 0.01, 0.001)
CORRELATED_FRACTION = 0.01
METHODS = ("planner", "exact", "graph", "post_filter")
FORCED = METHODS[1:]
RECALL_TARGET = 0.95
QPS_RATIO_TARGET = 0.90
EXPLAIN_QUERIES = 5
SERVER_FULL_SCAN_KB = 10_000  # the server's default hnsw_config.full_scan_threshold
# A timed batch should take at most this share of a turn's budget, so one slow batch cannot
# overrun the budget by much; the batch size comes from a one-query probe.
BATCH_SHARE_OF_BUDGET = 1 / 3
CHUNK = 64  # queries per matrix product when finding the correlated sets

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


# --------------------------------------------------------------------------- filters and truth


@dataclass
class Case:
    """One filter: per-query filter bodies, the fraction of points kept, exact filtered top-10.

    `truth[q]` holds the ids of query q's exact top-10 among the points the filter keeps,
    best first, padded with -1 when fewer than 10 points pass."""

    name: str
    kind: str
    selectivity: float
    description: str
    filters: list[dict[str, Any]]
    truth: IntArray

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "selectivity": self.selectivity,
            "filter": self.description,
        }


def sel_values(n_base: int) -> IntArray:
    """The `sel` payload of every point: uniform in [0, SEL_VALUES), seeded."""
    return np.random.default_rng(PAYLOAD_SEED).integers(0, SEL_VALUES, n_base, dtype=np.int64)


def filtered_truth(
    dataset: glove.GloveDataset, queries: np.ndarray, allowed: BoolArray
) -> IntArray:
    """Exact top-10 by inner product over the allowed points only (faiss IndexFlatIP)."""
    truth = np.full((queries.shape[0], K), -1, dtype=np.int64)
    rows = np.flatnonzero(allowed)
    if rows.size == 0:
        return truth
    k = min(K, int(rows.size))
    _, ids = exact_top_k(np.ascontiguousarray(dataset.base[rows]), queries, k)
    truth[:, :k] = np.where(ids >= 0, rows[np.maximum(ids, 0)], -1)
    return truth


def label(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def uniform_cases(
    dataset: glove.GloveDataset, queries: np.ndarray, sel: IntArray, selectivities: Sequence[float]
) -> list[Case]:
    """`sel < T` per selectivity, then the keyword filter `tag == KEYWORD_TAG`."""
    cases = []
    for fraction in selectivities:
        threshold = round(fraction * SEL_VALUES)
        condition = {"key": "sel", "range": {"lt": threshold}}
        allowed = sel < threshold
        cases.append(
            Case(
                f"sel < {threshold} ({label(fraction)})",
                "range",
                float(allowed.mean()),
                f"sel < {threshold}",
                [{"must": [condition]}] * queries.shape[0],
                filtered_truth(dataset, queries, allowed),
            )
        )
    allowed = sel % 100 == int(KEYWORD_TAG[1:])
    cases.append(
        Case(
            f"tag = {KEYWORD_TAG} (1%)",
            "keyword",
            float(allowed.mean()),
            f'tag == "{KEYWORD_TAG}"',
            [{"must": [{"key": "tag", "match": {"value": KEYWORD_TAG}}]}] * queries.shape[0],
            filtered_truth(dataset, queries, allowed),
        )
    )
    return cases


def correlated_cases(
    dataset: glove.GloveDataset, queries: np.ndarray, fraction: float
) -> list[Case]:
    """Per query, `has_id` of the `fraction` of points nearest to it, and of those farthest."""
    count = max(K, round(fraction * dataset.n_base))
    near_ids: list[IntArray] = []
    far_ids: list[IntArray] = []
    near_truth = np.empty((queries.shape[0], K), dtype=np.int64)
    far_truth = np.empty_like(near_truth)
    for start in range(0, queries.shape[0], CHUNK):
        scores = queries[start : start + CHUNK] @ dataset.base.T
        near = np.argpartition(-scores, count - 1, axis=1)[:, :count]
        far = np.argpartition(scores, count - 1, axis=1)[:, :count]
        for offset in range(scores.shape[0]):
            row = start + offset
            for ids, out, truth in ((near, near_ids, near_truth), (far, far_ids, far_truth)):
                chosen = ids[offset]
                out.append(np.sort(chosen))
                best = np.argsort(-scores[offset, chosen], kind="stable")[:K]
                truth[row] = chosen[best]
    what = f"has_id of the {count:,} points"
    return [
        Case(
            f"near {label(fraction)}",
            "near",
            count / dataset.n_base,
            f"{what} nearest the query",
            [{"must": [{"has_id": ids}]} for ids in near_ids],
            near_truth,
        ),
        Case(
            f"far {label(fraction)}",
            "far",
            count / dataset.n_base,
            f"{what} farthest from the query",
            [{"must": [{"has_id": ids}]} for ids in far_ids],
            far_truth,
        ),
    ]


def filtered_recall(found: IntArray, truth: IntArray) -> float:
    """Found true neighbours over all true neighbours (a row may hold fewer than 10)."""
    hits = total = 0
    for row, true_row in zip(found, truth, strict=True):
        valid = true_row[true_row >= 0]
        hits += len(set(row[row >= 0].tolist()) & set(valid.tolist()))
        total += int(valid.size)
    return hits / total if total else float("nan")


# --------------------------------------------------------------------------- ingest


def ingest(client: httpx.Client, dataset: glove.GloveDataset, sel: IntArray) -> dict[str, Any]:
    """Upsert every point with its `sel` and `tag`, 1,000 per request, bodies built first."""
    bodies = [
        orjson.dumps(
            {
                "points": [
                    {"id": i, "vector": dataset.base[i], "payload": payload(int(sel[i]))}
                    for i in range(start, min(start + INGEST_BATCH, dataset.n_base))
                ]
            },
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        for start in range(0, dataset.n_base, INGEST_BATCH)
    ]
    started_epoch, started = time.time(), time.perf_counter()
    for body in bodies:
        result = expect_ok(
            client.put(f"/collections/{COLLECTION}/points?wait=true", content=body), "upsert"
        )
        if result.get("status") != "completed":
            raise RuntimeError(f"upsert with wait=true returned {result!r}")
    seconds = time.perf_counter() - started
    return {
        "points": dataset.n_base,
        "seconds": round(seconds, 3),
        "points_per_s": round(dataset.n_base / seconds, 1),
        "started_epoch": started_epoch,
        "finished_epoch": started_epoch + seconds,
    }


def payload(sel: int) -> dict[str, Any]:
    return {"sel": sel, "tag": f"t{sel % 100}"}


def create_payload_indexes(client: httpx.Client) -> float:
    """`sel` as an integer index and `tag` as a keyword index; returns the seconds taken."""
    started = time.perf_counter()
    for name, schema in (("sel", "integer"), ("tag", "keyword")):
        body = orjson.dumps({"field_name": name, "field_schema": schema})
        url = f"/collections/{COLLECTION}/index?wait=true"
        expect_ok(client.put(url, content=body), f"payload index on {name}")
    return time.perf_counter() - started


def load_collection(
    client: httpx.Client, dataset: glove.GloveDataset, sel: IntArray, config: dict[str, Any]
) -> dict[str, Any]:
    """Create, ingest, index the payload fields, wait for green."""
    create = create_body(config["full_scan_threshold_kb"])
    expect_ok(client.put(f"/collections/{COLLECTION}", content=orjson.dumps(create)), "create")
    upload = ingest(client, dataset, sel)
    log(f"upload: {upload['seconds']:.1f}s ({upload['points_per_s']:,.0f} points/s)")
    index_s = create_payload_indexes(client)
    log(f"payload indexes: {index_s:.1f}s; waiting for green")
    settle = wait_green(client, config["settle_timeout_s"], "build")
    build = {**build_summary(jobs(client), upload), "settle": settle}
    info = collection_info(client)
    collection = segment_summary(segments(client), info)
    collection["payload_schema"] = info.get("payload_schema")
    if info["points_count"] != dataset.n_base:
        raise RuntimeError(f"points_count is {info['points_count']}, expected {dataset.n_base}")
    log(f"build: {build['seconds']}s of jobs {build['jobs_by_kind']}; segments {collection}")
    return {
        "upload": upload,
        "payload_index_seconds": round(index_s, 3),
        "build": build,
        "collection": collection,
    }


# --------------------------------------------------------------------------- measurement


@dataclass
class Tally:
    """What one (filter, method) measurement has gathered over its turns.

    `ids`/`answered` hold the first answer of each query (for recall); `timed` counts every
    answered query in the timed stretches, repeats included, and `turn_qps` the rate of each
    turn (for QPS)."""

    ids: IntArray
    answered: BoolArray
    seconds: float = 0.0
    timed: int = 0
    turn_qps: list[float] = field(default_factory=list)
    batch_size: int = 0
    probe_s: float | None = None
    stopped_at_probe: bool = False
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    @classmethod
    def new(cls, n_queries: int) -> Tally:
        return cls(np.full((n_queries, K), -1, dtype=np.int64), np.zeros(n_queries, dtype=bool))

    def record(self, rows: IntArray, answer: list[list[int]] | str) -> None:
        if isinstance(answer, str):
            self.errors += len(rows)
            if len(self.error_samples) < 3:
                self.error_samples.append(answer)
            return
        self.timed += len(rows)
        for row, found in zip(rows.tolist(), answer, strict=True):
            if not self.answered[row]:
                self.ids[row, : len(found)] = found[:K]
                self.answered[row] = True


@dataclass
class Run:
    """One (filter, method) result: `answered` of `queries` distinct queries answered;
    `timed` answers (repeats included) in `seconds` of HTTP batches, over `turns` turns.

    `qps` is the best turn's rate (as `timeit` takes the best repeat: load from other
    processes only ever slows a turn down); `qps_overall` is `timed / seconds`."""

    case: str
    method: str
    queries: int
    answered: int
    timed: int
    seconds: float
    turn_qps: list[float]
    recall_at_10: float
    batch_size: int
    capped: bool
    probe_ms: float | None
    batch_latency_ms: dict[str, float]
    errors: int

    @property
    def qps(self) -> float:
        return max(self.turn_qps, default=float("nan"))

    @property
    def qps_overall(self) -> float:
        return self.timed / self.seconds if self.seconds > 0 else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "qps": self.qps, "qps_overall": self.qps_overall}


def search_body(case: Case, queries: np.ndarray, method: str, rows: IntArray) -> bytes:
    searches = []
    for row in rows.tolist():
        search: dict[str, Any] = {"query": queries[row], "limit": K, "filter": case.filters[row]}
        if method != "planner":
            search["strategy"] = method
        searches.append(search)
    return orjson.dumps({"searches": searches}, option=orjson.OPT_SERIALIZE_NUMPY)


def probe(
    client: httpx.Client,
    case: Case,
    queries: np.ndarray,
    method: str,
    rows: IntArray,
    tally: Tally,
    budget_s: float,
) -> None:
    """One query alone (also the warm-up): sizes the batches so one takes at most a third of
    the budget. A query slower than the whole budget is the measurement, capped there."""
    first = rows[:1]
    body = search_body(case, queries, method, first)
    before = time.perf_counter()
    answer = send_batch(client, body, 1)
    tally.probe_s = time.perf_counter() - before
    per_batch = budget_s * BATCH_SHARE_OF_BUDGET / max(tally.probe_s, 1e-6)
    tally.batch_size = int(min(SEARCH_BATCH, max(1, per_batch)))
    if tally.probe_s > budget_s:
        tally.stopped_at_probe = True
        tally.seconds += tally.probe_s
        tally.turn_qps.append(1.0 / tally.probe_s)
        tally.latencies_s.append(tally.probe_s)
        tally.record(first, answer)


def run_turn(
    client: httpx.Client,
    case: Case,
    queries: np.ndarray,
    method: str,
    rows: IntArray,
    tally: Tally,
    budget_s: float,
    min_s: float,
) -> None:
    """Send `rows` in batches (bodies built before the clock), again and again until `min_s`
    has passed (a fast filter's 100 queries take a few ms, too short to time), stopping
    wherever the budget runs out."""
    if tally.batch_size == 0:
        probe(client, case, queries, method, rows, tally, budget_s)
    if tally.stopped_at_probe:
        return
    size = tally.batch_size
    batches = [rows[i : i + size] for i in range(0, len(rows), size)]
    bodies = [search_body(case, queries, method, batch) for batch in batches]
    timed_before, started = tally.timed, time.perf_counter()
    deadline = started + budget_s
    while send_pass(client, batches, bodies, tally, deadline):
        if time.perf_counter() - started >= min_s:
            break
    seconds = time.perf_counter() - started
    tally.seconds += seconds
    tally.turn_qps.append((tally.timed - timed_before) / seconds)


def send_pass(
    client: httpx.Client,
    batches: list[IntArray],
    bodies: list[bytes],
    tally: Tally,
    deadline: float,
) -> bool:
    """Send every batch once; False when the deadline stopped the pass early."""
    for batch, body in zip(batches, bodies, strict=True):
        if time.perf_counter() > deadline:
            return False
        before = time.perf_counter()
        answer = send_batch(client, body, len(batch))
        tally.latencies_s.append(time.perf_counter() - before)
        tally.record(batch, answer)
    return True


def to_run(case: Case, method: str, tally: Tally) -> Run:
    answered = tally.answered
    return Run(
        case.name,
        method,
        len(answered),
        int(answered.sum()),
        tally.timed,
        round(tally.seconds, 4),
        [round(q, 2) for q in tally.turn_qps],
        filtered_recall(tally.ids[answered], case.truth[answered]),
        tally.batch_size,
        bool(not answered.all()),
        None if tally.probe_s is None else round(tally.probe_s * 1000, 2),
        latency_summary(tally.latencies_s, PERCENTILES),
        tally.errors,
    )


def measure_case(
    client: httpx.Client, case: Case, queries: np.ndarray, config: dict[str, Any]
) -> tuple[list[Run], list[str]]:
    """Every method on this filter, taking turns: the queries are cut into `turns` parts and
    each part goes through all methods (order reversed every other turn), so all methods see
    the same background load."""
    tallies = {method: Tally.new(queries.shape[0]) for method in METHODS}
    turns = config["turns"]
    budget, min_s = config["case_budget_s"] / turns, config["min_seconds"] / turns
    for turn, rows in enumerate(np.array_split(np.arange(queries.shape[0]), turns)):
        for method in METHODS if turn % 2 == 0 else METHODS[::-1]:
            run_turn(
                client, case, queries, method, rows.astype(np.int64), tallies[method],
                budget, min_s,
            )  # fmt: skip
    runs = [to_run(case, method, tallies[method]) for method in METHODS]
    errors = [f"{case.name}, {m}: {e}" for m, t in tallies.items() for e in t.error_samples]
    return runs, errors


def explain(client: httpx.Client, case: Case, queries: np.ndarray) -> dict[str, Any]:
    """The planner's plans for the first few queries: strategy counts over all segment plans
    and the full plans of the first query."""
    searches = [
        {"query": queries[row], "limit": K, "filter": case.filters[row], "explain": True}
        for row in range(min(EXPLAIN_QUERIES, queries.shape[0]))
    ]
    body = orjson.dumps({"searches": searches}, option=orjson.OPT_SERIALIZE_NUMPY)
    answers = expect_ok(
        client.post(f"/collections/{COLLECTION}/points/query/batch", content=body), "explain"
    )
    plans = [answer.get("explain") for answer in answers]
    if any(p is None for p in plans):
        return {"queries": len(searches), "strategies": {}, "first_query": None, "missing": True}
    flat = [plan for per_query in plans for plan in per_query]
    return {
        "queries": len(searches),
        "strategies": dict(Counter(plan["strategy"] for plan in flat)),
        "ef": sorted({plan["ef"] for plan in flat if plan.get("ef") is not None}),
        "first_query": plans[0],
    }


def search_all(
    client: httpx.Client,
    server: QuiverServer,
    cases: list[Case],
    queries: np.ndarray,
    config: dict[str, Any],
) -> tuple[list[Run], dict[str, Any], list[str]]:
    runs: list[Run] = []
    plans: dict[str, Any] = {}
    errors: list[str] = []
    for case in cases:
        plans[case.name] = explain(client, case, queries)
        case_runs, case_errors = measure_case(client, case, queries, config)
        server.check_alive()
        runs += case_runs
        errors += case_errors
        described = " | ".join(
            f"{r.method} r@10 {r.recall_at_10:.3f} {r.qps:,.1f} QPS" + (" (capped)" * r.capped)
            for r in case_runs
        )
        log(f"{case.name}: planner chose {plans[case.name]['strategies']}; {described}")
    return runs, plans, errors


# --------------------------------------------------------------------------- checks and report


def find(runs: Sequence[Run], case: str, method: str) -> Run:
    return next(r for r in runs if r.case == case and r.method == method)


def compute_checks(cases: Sequence[Case], runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Per filter: planner recall@10 >= 0.95, and planner QPS >= 90% of the fastest forced
    strategy that itself reaches recall 0.95 (vacuous when none does)."""
    checks = []
    for case in cases:
        planner = find(runs, case.name, "planner")
        recall_ok = not math.isnan(planner.recall_at_10) and planner.recall_at_10 >= RECALL_TARGET
        checks.append(
            {
                "case": case.name,
                "name": "planner recall@10",
                "value": round(planner.recall_at_10, 4),
                "target": f">= {RECALL_TARGET}",
                "passed": bool(recall_ok),
            }
        )
        good = [find(runs, case.name, m) for m in FORCED]
        good = [r for r in good if r.recall_at_10 >= RECALL_TARGET and r.answered]
        best = max(good, key=lambda r: r.qps, default=None)
        ratio = None if best is None else planner.qps / best.qps
        checks.append(
            {
                "case": case.name,
                "name": "planner QPS / best forced QPS at recall >= 0.95"
                + ("" if best is None else f" ({best.method})"),
                "value": None if ratio is None else round(ratio, 3),
                "target": f">= {QPS_RATIO_TARGET}",
                "passed": bool(ratio is None or ratio >= QPS_RATIO_TARGET),
            }
        )
    return checks


def cell(run: Run) -> str:
    mark = "*" if run.capped else ""
    return f"{run.recall_at_10:.3f} | {run.qps:,.1f}{mark}"


def plan_label(plan: dict[str, Any]) -> str:
    counts = plan["strategies"]
    text = ", ".join(f"{s} x{n}" for s, n in sorted(counts.items()))
    return f"{text} (ef {'/'.join(map(str, plan['ef']))})" if plan.get("ef") else text or "-"


def results_table(results: dict[str, Any]) -> list[str]:
    runs = [run_from_dict(r) for r in results["runs"]]
    lines = [
        "| filter | kept | planner chose (segment plans, "
        f"{EXPLAIN_QUERIES} queries) | planner recall | QPS | exact recall | QPS "
        "| graph recall | QPS | post_filter recall | QPS |",
        "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for case in results["cases"]:
        cells = " | ".join(cell(find(runs, case["name"], m)) for m in METHODS)
        plan = plan_label(results["plans"][case["name"]])
        lines.append(f"| {case['name']} | {case['selectivity']:.4%} | {plan} | {cells} |")
    capped = [r for r in runs if r.capped]
    if capped:
        lines += [
            "",
            "\\* capped by the time budget: "
            + "; ".join(
                f"{r.case} {r.method}: {r.answered} of {r.queries} queries "
                f"(batches of {r.batch_size}, one query alone {fmt(r.probe_ms, ',.0f')} ms)"
                for r in capped
            ),
        ]
    return lines


def run_from_dict(raw: dict[str, Any]) -> Run:
    return Run(**{k: v for k, v in raw.items() if k not in ("qps", "qps_overall")})


def fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def plans_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| filter | segment | size | candidates | strategy | k | ef | rounds | ms | reason |",
        "|---|--:|--:|--:|---|--:|--:|--:|--:|---|",
    ]
    for case in results["cases"]:
        for plan in results["plans"][case["name"]].get("first_query") or []:
            lines.append(
                f"| {case['name']} | {fmt(plan.get('segment'), '')} | {plan['segment_size']:,} "
                f"| {plan['candidates']:,} | {plan['strategy']} | {plan['k']} "
                f"| {fmt(plan.get('ef'), '')} | {plan.get('rounds')} "
                f"| {plan.get('time_ms', 0):.2f} | {plan.get('reason')} |"
            )
    return lines


def summary_table(results: dict[str, Any]) -> list[str]:
    upload, build, collection = results["upload"], results["build"], results["collection"]
    sealed = ", ".join(f"{s['points']:,}" for s in collection["sealed"])
    return [
        "| what | value |",
        "|---|--:|",
        f"| upload, {upload['points']:,} points with payload (1,000/request) "
        f"| {upload['seconds']:.1f} s ({upload['points_per_s']:,.0f} points/s) |",
        f"| payload indexes (`sel` integer, `tag` keyword) "
        f"| {results['payload_index_seconds']:.2f} s |",
        f"| background build, first job start to last finish | {fmt(build['seconds'], '.1f')} s |",
        f"| upload end to green | {build['settle']['seconds']:.1f} s |",
        f"| segments | sealed: {sealed or '-'}; appendable: {collection['appendable_points']:,} |",
    ]


def markdown_report(results: dict[str, Any]) -> str:
    m, config = results["machine"], results["config"]
    lines = [
        f"# Quiver query planner: GloVe 6B 50-d, {config['n_base']:,} base vectors, filtered",
        "",
        machine_line(m),
        "",
        f"M={M}, ef_construct={EF_CONSTRUCT} (the default search ef), indexing_threshold="
        f"{INDEXING_THRESHOLD:,}, default_segment_number={SEGMENT_NUMBER}, full_scan_threshold="
        f"{config['full_scan_threshold_kb']:,} KB; {config['queries']} queries per filter in "
        f"batches of up to {SEARCH_BATCH} (one client), {config['turns']} turns; per filter "
        f"and method at least {config['min_seconds']:g} s (queries repeated) and at most "
        f"{config['case_budget_s']:g} s. Recall@10 is against the exact top-10 among the "
        "points the filter keeps.",
        "",
        *summary_table(results),
        "",
        "## Recall@10 and queries/s per filter",
        "",
        *results_table(results),
        "",
        "## Checks",
        "",
        "| filter | check | value | target | |",
        "|---|---|--:|--:|---|",
        *(
            f"| {c['case']} | {c['name']} | {fmt(c['value'], '.3f')} | {c['target']} "
            f"| {'PASS' if c['passed'] else 'FAIL'} |"
            for c in results["checks"]
        ),
        "",
        "## The planner's plans for the first query of each filter (`explain`)",
        "",
        *plans_table(results),
        "",
        *(f"- {note}" for note in results["notes"]),
    ]
    return "\n".join(lines) + "\n"


# (colour, marker, line width, marker size, z-order): the planner is drawn last and smaller,
# so where it does what a forced strategy does, that strategy's marker rings it.
STYLES = {
    "exact": ("C0", "s", 1.2, 8, 2),
    "graph": ("C1", "^", 1.2, 8, 2),
    "post_filter": ("C2", "v", 1.2, 8, 2),
    "planner": ("k", "o", 2.0, 4.5, 4),
}
# The keyword and correlated filters all keep ~1%; near and far are drawn a little left and
# right of their true fraction so the three stay apart.
OTHER_FILTERS = {"keyword": ("D", 1.0), "near": ("P", 0.7), "far": ("X", 1.4)}


def plot(results: dict[str, Any], path: Path) -> None:
    """Recall@10 and QPS (log-log) vs the fraction kept: one line per method over the `sel`
    filters; keyword and correlated filters as lone markers; capped points hollow."""
    plt = pyplot()
    from matplotlib.axes import Axes
    from matplotlib.lines import Line2D

    runs = [run_from_dict(r) for r in results["runs"]]
    cases = results["cases"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))

    def point(ax: Axes, x: float, y: float, marker: str, method: str, capped: bool) -> None:
        color, _, _, size, z = STYLES[method]
        face = "none" if capped else color
        ax.plot([x], [y], marker, color=color, markerfacecolor=face, markersize=size, zorder=z)

    for method, (color, marker, width, _, z) in STYLES.items():
        ranged = [c for c in cases if c["kind"] == "range"]
        chosen = [find(runs, c["name"], method) for c in ranged]
        x = [c["selectivity"] for c in ranged]
        for ax, values in (
            (left, [r.recall_at_10 for r in chosen]),
            (right, [r.qps for r in chosen]),
        ):
            ax.plot(x, values, "-", color=color, linewidth=width, label=method, zorder=z)
            for xi, yi, r in zip(x, values, chosen, strict=True):
                point(ax, xi, yi, marker, method, r.capped)
        for c in (c for c in cases if c["kind"] != "range"):
            r = find(runs, c["name"], method)
            other, shift = OTHER_FILTERS[c["kind"]]
            point(left, c["selectivity"] * shift, r.recall_at_10, other, method, r.capped)
            point(right, c["selectivity"] * shift, r.qps, other, method, r.capped)
    left.axhline(RECALL_TARGET, color="grey", linestyle=":", linewidth=1)
    lowest = min((r["recall_at_10"] for r in results["runs"]), default=1.0)
    left.set_ylim(min(RECALL_TARGET - 0.01, lowest - 0.01), 1.005)
    left.set_ylabel("recall@10 (vs exact filtered top-10)")
    right.set_ylabel("queries / s (HTTP, batches of 50, one client)")
    right.set_yscale("log")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("fraction of points the filter keeps (lines: sel < T)")
        ax.grid(True, which="both", alpha=0.3)
    extra = [
        Line2D([], [], marker=mk, color="grey", linestyle="", label=f"{kind} filter (~1%)")
        for kind, (mk, _) in OTHER_FILTERS.items()
    ]
    extra.append(
        Line2D([], [], marker="o", color="grey", markerfacecolor="none", linestyle="",
               label="capped by the time budget")
    )  # fmt: skip
    handles, _ = left.get_legend_handles_labels()
    left.legend(handles=handles + extra, fontsize=8, loc="lower left")
    fig.suptitle(
        f"Quiver filtered search, GloVe 50-d, {results['config']['n_base']:,} vectors: "
        "planner vs each strategy forced"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def notes_for(results: dict[str, Any]) -> list[str]:
    notes = [
        "Each filtered query is planned per segment; the appendable segment (no graph) is "
        "always scanned exactly, whatever strategy is forced.",
        "QPS includes building each query's candidate mask on the server, which all methods "
        "pay alike: from the payload indexes for sel and tag, from parsing the has_id list "
        "and scanning every row for the correlated filters (slower for every method).",
        "Methods take turns on each part of the queries (order reversed every other turn), "
        "so they see the same background load; QPS is the best turn's rate (the JSON also "
        "has every turn's and the overall rate). A capped measurement answered fewer "
        "queries, so its recall rests on fewer queries.",
    ]
    if results["config"]["full_scan_threshold_kb"] != SERVER_FULL_SCAN_KB:
        notes.append(
            f"full_scan_threshold is {results['config']['full_scan_threshold_kb']:,} KB, not "
            f"the server's default {SERVER_FULL_SCAN_KB:,} KB (scaled to the smaller segments "
            "so the planner meets the same choices as in the full run)."
        )
    missing = [name for name, plan in results["plans"].items() if plan.get("missing")]
    if missing:
        notes.append(f"explain returned no plans for: {', '.join(missing)}")
    notes += busy_notes(results["cpu_busy_before_start"])
    return notes + [f"error: {e}" for e in results["errors"][:10]]


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = new_parser(__doc__)
    add_common_options(
        parser, quick_help=f"smoke run: first {QUICK_BASE:,} base vectors", port=True
    )
    add = parser.add_argument
    add("--queries", type=int, default=None, help="queries per filter (default 300, quick 100)")
    add(
        "--case-budget",
        type=float,
        default=None,
        help="seconds per filter and method, at most (default 8, quick 3)",
    )
    add(
        "--min-seconds",
        type=float,
        default=None,
        help="seconds per filter and method at least: the queries are repeated until then "
        "(default 2, quick 1)",
    )
    add("--turns", type=int, default=4, help="parts the queries are cut into, methods alternating")
    add(
        "--full-scan-threshold",
        type=int,
        default=None,
        help="hnsw_config.full_scan_threshold in KB (default: the server's; quick: scaled "
        "to the smaller base)",
    )
    add("--settle-timeout", type=float, default=900.0, help="seconds to wait for green")
    return parser.parse_args(argv)


def run_config(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    full_scan = args.full_scan_threshold
    if full_scan is None and quick:
        # The quick run's segments are ~8x smaller; scaling the threshold keeps the planner's
        # choices (exact below it, graph or post_filter above) at the same selectivities.
        full_scan = round(SERVER_FULL_SCAN_KB * QUICK_BASE / 390_000)
    return {
        "quick": quick,
        "n_base": QUICK_BASE if quick else None,
        "selectivities": list(QUICK_SELECTIVITIES if quick else SELECTIVITIES),
        "correlated_fraction": CORRELATED_FRACTION,
        "queries": args.queries or (100 if quick else 300),
        "case_budget_s": args.case_budget or (3.0 if quick else 8.0),
        "min_seconds": args.min_seconds or (1.0 if quick else 2.0),
        "turns": max(1, args.turns),
        "full_scan_threshold_kb": full_scan or SERVER_FULL_SCAN_KB,
        "settle_timeout_s": args.settle_timeout,
        "k": K,
        "search_batch": SEARCH_BATCH,
        "payload_seed": PAYLOAD_SEED,
    }


def build_cases(dataset: glove.GloveDataset, sel: IntArray, config: dict[str, Any]) -> list[Case]:
    queries = dataset.queries[: config["queries"]]
    cases = uniform_cases(dataset, queries, sel, config["selectivities"])
    return cases + correlated_cases(dataset, queries, config["correlated_fraction"])


def run(args: argparse.Namespace, config: dict[str, Any]) -> dict[str, Any]:
    dataset = glove.load(config["n_base"])
    config["n_base"] = dataset.n_base
    sel = sel_values(dataset.n_base)
    started = time.perf_counter()
    cases = build_cases(dataset, sel, config)
    log(
        f"data: {dataset.n_base:,} base vectors; {len(cases)} filters and their exact "
        f"filtered top-10 in {time.perf_counter() - started:.1f}s"
    )
    results: dict[str, Any] = {
        "benchmark": "planner_glove50",
        "config": config,
        "machine": machine_info(),
        "cpu_busy_before_start": cpu_busy_fraction(),
        "cases": [case.summary() for case in cases],
    }
    server = QuiverServer(args.port, keep_log=SERVER_LOG)
    with server, httpx.Client(base_url=server.url, headers=headers(), timeout=300.0) as client:
        log(f"server up at {server.url} (log: {SERVER_LOG}); ingesting")
        results |= load_collection(client, dataset, sel, config)
        queries = dataset.queries[: config["queries"]]
        runs, plans, errors = search_all(client, server, cases, queries, config)
    results |= {
        "runs": [r.as_dict() for r in runs],
        "plans": plans,
        "checks": compute_checks(cases, runs),
        "errors": errors,
        "load_average_at_end": os.getloadavg(),
    }
    results["notes"] = notes_for(results)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = run_config(args)
    return run_and_finish(lambda: run(args, config), args, "planner_glove50", markdown_report, plot)


if __name__ == "__main__":
    sys.exit(main())
