"""Does inserting GloVe-50 into faiss HNSW in order of local intrinsic dimensionality help recall?

Elliott & Clark (ICTIR 2024) report that HNSW recall moves by up to 12 points with insertion
order on some embedding sets, and that LID-ordered insertion is one lever. This measures it
on ours: faiss `IndexHNSWFlat` (M=16, efConstruction=100, inner product on the normalised
GloVe-50 vectors of `glove.py`), built once per order, then recall@10 against exact ground
truth and QPS at efSearch 16/32/64/128 over the 10,000 held-out queries.

Builds (each row of the table):

- `none`: the base set as `glove.py` gives it (already a seeded random permutation);
- `lid_desc` / `lid_asc`: highest / lowest LID first (`index.insertion_order`, one LID estimate
  for both, timed on its own);
- `shuffle sN`: `--shuffles` more random orders, to show how much recall moves with *any*
  change of order (and with the thread scheduling of a parallel build);
- `none, efC=E`: the given order with efConstruction raised so its build costs about as much
  CPU time as LID estimate + `lid_desc` build: the "equal build budget" comparison;
- `lid_desc, sample N`: LID from a `--cheap-sample` reference only (faster, noisier), to see
  whether a cheaper estimate keeps whatever `lid_desc` gains;
- `lid_desc, one add()`: the LID order added in a single call, where faiss shuffles each
  level's rows itself (see below), as a check that the ordering really reached the graph.

faiss inserts the rows of one `add` call level by level and shuffles each level's rows with a
fixed seed, so an order survives only between calls: every other build adds `--add-batch`
rows per call. Results are positions in insertion order and are mapped back to base ids.

It prints a markdown table and saves it with the raw numbers to
`bench/results/insertion_order.{md,json}`.

Run it with `OMP_WAIT_POLICY=PASSIVE` on a shared machine: spinning OpenMP threads otherwise
inflate both wall and CPU time when the cores are oversubscribed.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/insertion_order.py   # 390,000 base (~12 min)
    .venv/bin/python bench/insertion_order.py --base 100000   # subset (~4 min)
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import faiss
import glove
import numpy as np
from harness.cli import add_common_options, finish, new_parser
from harness.machine import git_commit, utc_now
from harness.metrics import recall_at_k

from index.insertion_order import InsertionOrder, estimate_lid, order_by_lid
from index.metrics import Distance

M = 16
EF_CONSTRUCTION = 100
EF_SEARCH = (16, 32, 64, 128)
RECALL_K = 10
SEARCH_REPEATS = 3


@dataclass(frozen=True)
class LidEstimate:
    """Per-row LID of the base set and what estimating it cost."""

    lid: np.ndarray
    sample: int
    wall_s: float
    cpu_s: float


@dataclass
class Build:
    """One HNSW graph: how it was ordered and built, and what it measured."""

    name: str
    order: str
    ef_construction: int
    add_batch: int
    lid_s: float
    lid_cpu_s: float
    build_s: float
    build_cpu_s: float
    recall: dict[int, float] = field(default_factory=dict)
    qps: dict[int, float] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return self.lid_s + self.build_s

    @property
    def total_cpu_s(self) -> float:
        return self.lid_cpu_s + self.build_cpu_s


def estimate(dataset: glove.GloveDataset, args: argparse.Namespace, sample: int) -> LidEstimate:
    wall, cpu = time.perf_counter(), time.process_time()
    lid = estimate_lid(dataset.base, Distance.COSINE, k=args.lid_k, sample=sample, seed=args.seed)
    return LidEstimate(lid, sample, time.perf_counter() - wall, time.process_time() - cpu)


def build_index(
    base: np.ndarray, permutation: np.ndarray | None, ef_construction: int, add_batch: int
) -> tuple[Any, float, float]:
    """A graph over `base` inserted in `permutation` order; `(index, wall s, process CPU s)`."""
    ordered = base if permutation is None else np.ascontiguousarray(base[permutation])
    index = faiss.IndexHNSWFlat(base.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    step = add_batch or len(ordered)
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(ordered), step):
        index.add(ordered[start : start + step])
    return index, time.perf_counter() - wall, time.process_time() - cpu


def measure_search(
    index: Any, permutation: np.ndarray | None, dataset: glove.GloveDataset, build: Build
) -> None:
    """Recall@10 and best-of-3 QPS at each efSearch, all queries in one batch (OpenMP)."""
    for ef in EF_SEARCH:
        params = faiss.SearchParametersHNSW(efSearch=ef)
        elapsed = float("inf")
        for _ in range(SEARCH_REPEATS):  # best of a few: other processes share the CPUs
            started = time.perf_counter()
            _, found = index.search(dataset.queries, RECALL_K, params=params)
            elapsed = min(elapsed, time.perf_counter() - started)
        if permutation is not None:
            found = np.where(found >= 0, permutation[np.maximum(found, 0)], -1)
        build.recall[ef] = recall_at_k(found, dataset.ground_truth, RECALL_K)
        build.qps[ef] = len(dataset.queries) / elapsed


def run_build(
    name: str,
    dataset: glove.GloveDataset,
    *,
    order: str = "none",
    permutation: np.ndarray | None = None,
    lid: LidEstimate | None = None,
    ef_construction: int = EF_CONSTRUCTION,
    add_batch: int,
) -> Build:
    index, build_s, build_cpu_s = build_index(dataset.base, permutation, ef_construction, add_batch)
    lid_s, lid_cpu_s = (lid.wall_s, lid.cpu_s) if lid else (0.0, 0.0)
    build = Build(name, order, ef_construction, add_batch, lid_s, lid_cpu_s, build_s, build_cpu_s)
    measure_search(index, permutation, dataset, build)
    print(row_markdown(build), flush=True)
    return build


def lid_build(
    name: str, dataset: glove.GloveDataset, lid: LidEstimate, order: InsertionOrder, add_batch: int
) -> Build:
    permutation = order_by_lid(lid.lid, order)
    return run_build(
        name, dataset, order=order, permutation=permutation, lid=lid, add_batch=add_batch
    )


def matched_ef_construction(none: Build, lid_desc: Build) -> int:
    """efConstruction whose build should cost as much CPU as LID + the `lid_desc` build.

    CPU seconds, not wall: other processes on the machine stretch wall time unevenly.
    Build cost grows roughly linearly with efConstruction here (M=16, efC >= 100), so scale.
    """
    return round(EF_CONSTRUCTION * lid_desc.total_cpu_s / none.build_cpu_s)


def run(args: argparse.Namespace) -> dict[str, Any]:
    dataset = glove.load(args.base)
    load_before = os.getloadavg()
    print(f"GloVe-50: {dataset.n_base:,} base, {len(dataset.queries):,} queries")
    print(TABLE_HEADER, flush=True)
    batch = args.add_batch
    none = run_build("none", dataset, add_batch=batch)
    lid = estimate(dataset, args, args.lid_sample)
    builds = [
        none,
        lid_build("lid_desc", dataset, lid, "lid_desc", batch),
        lid_build("lid_asc", dataset, lid, "lid_asc", batch),
    ]
    for seed in range(1, args.shuffles + 1):
        shuffle = np.random.default_rng(seed).permutation(dataset.n_base).astype(np.int64)
        builds.append(
            run_build(
                f"shuffle s{seed}", dataset, order="random", permutation=shuffle, add_batch=batch
            )
        )
    if args.budget_check:
        ef = matched_ef_construction(none, builds[1])
        builds.append(run_build(f"none, efC={ef}", dataset, ef_construction=ef, add_batch=batch))
    if args.cheap_sample:
        cheap = estimate(dataset, args, args.cheap_sample)
        name = f"lid_desc, sample {args.cheap_sample:,}"
        builds.append(lid_build(name, dataset, cheap, "lid_desc", batch))
    if args.single_add_check:
        builds.append(lid_build("lid_desc, one add()", dataset, lid, "lid_desc", 0))
    return {
        "benchmark": "insertion_order",
        "dataset": {
            "name": "GloVe 6B 50-d (normalised)",
            "n_base": dataset.n_base,
            "n_queries": len(dataset.queries),
            "dimension": dataset.dimension,
        },
        "hnsw": {"M": M, "efConstruction": EF_CONSTRUCTION, "metric": "inner product"},
        "settings": {
            key: str(value) if isinstance(value, Path) else value
            for key, value in vars(args).items()
        },
        "lid": {
            "seconds": lid.wall_s,
            "cpu_seconds": lid.cpu_s,
            "k": args.lid_k,
            "sample": args.lid_sample,
            "percentiles": {
                str(p): float(v)
                for p, v in zip(
                    (1, 10, 25, 50, 75, 90, 99),
                    np.percentile(lid.lid, (1, 10, 25, 50, 75, 90, 99)),
                    strict=True,
                )
            },
        },
        "builds": [
            asdict(build) | {"total_s": build.total_s, "total_cpu_s": build.total_cpu_s}
            for build in builds
        ],
        "machine": machine_info(load_before),
    }


TABLE_HEADER = (
    "| build | LID s (CPU s) | build s (CPU s) | LID + build s (CPU s) | "
    + " | ".join(f"R@10 ef{ef}" for ef in EF_SEARCH)
    + " | "
    + " | ".join(f"QPS ef{ef}" for ef in EF_SEARCH)
    + " |\n|---|--:|--:|--:|"
    + "--:|" * (2 * len(EF_SEARCH))
)


def row_markdown(build: Build) -> str:
    recalls = " | ".join(f"{build.recall[ef]:.4f}" for ef in EF_SEARCH)
    rates = " | ".join(f"{build.qps[ef]:,.0f}" for ef in EF_SEARCH)
    return (
        f"| {build.name} | {build.lid_s:.1f} ({build.lid_cpu_s:.1f}) | "
        f"{build.build_s:.1f} ({build.build_cpu_s:.1f}) | "
        f"{build.total_s:.1f} ({build.total_cpu_s:.1f}) | {recalls} | {rates} |"
    )


def markdown_report(results: dict[str, Any]) -> str:
    data, lid, machine = results["dataset"], results["lid"], results["machine"]
    settings = results["settings"]
    builds = [
        Build(**{k: v for k, v in row.items() if not k.startswith("total")})
        for row in results["builds"]
    ]
    lines = [
        f"# HNSW insertion order on GloVe 6B 50-d, {data['n_base']:,} base vectors",
        "",
        f"{machine['time']} · commit `{machine['commit']}` · {machine['cpus']} CPUs · "
        f"faiss {machine['faiss']} · numpy {machine['numpy']} · Python {machine['python']}",
        "",
        f"faiss `IndexHNSWFlat` M={M}, inner product; {data['n_queries']:,} queries in one "
        f"batch; rows added {settings['add_batch'] or 'all'} per `add()` call unless noted. "
        f"LID: MLE over k={lid['k']} neighbours in a reference sample of "
        f"{lid['sample']:,}, {lid['seconds']:.1f} s.",
        "",
        TABLE_HEADER,
        *(row_markdown(build) for build in builds),
        "",
        "LID percentiles (1/10/25/50/75/90/99): "
        + " / ".join(f"{v:.1f}" for v in lid["percentiles"].values()),
        "",
        f"- Load average (1 min) before / after: {machine['load_before'][0]:.2f} / "
        f"{machine['load_after'][0]:.2f} on {machine['cpus']} CPUs; other processes share the "
        "machine, so seconds and QPS are noisy, recall is not.",
        "- `shuffle sN` rows are other random orders: their spread is the noise floor for any "
        "difference between orders.",
        "- CPU s is this process's CPU time, all threads (OMP_WAIT_POLICY="
        f"{machine['omp_wait_policy']}; with the default, waiting OpenMP threads spin and "
        "count).",
    ]
    return "\n".join(lines) + "\n"


def machine_info(load_before: tuple[float, float, float]) -> dict[str, Any]:
    """This script's own shape of the machine record (its saved results use these keys)."""
    return {
        "time": utc_now(),
        "commit": git_commit(),
        "cpus": os.cpu_count(),
        "omp_threads": faiss.omp_get_max_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "faiss": faiss.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "load_before": list(load_before),
        "load_after": list(os.getloadavg()),
    }


def main() -> int:
    parser = new_parser(__doc__)
    add_common_options(parser)
    parser.add_argument("--base", type=int, default=None, help="first N base vectors (all)")
    parser.add_argument("--add-batch", type=int, default=10_000, help="rows per add() (0: one)")
    parser.add_argument("--lid-k", type=int, default=20, help="neighbours per LID estimate")
    parser.add_argument("--lid-sample", type=int, default=20_000, help="LID reference rows")
    parser.add_argument(
        "--cheap-sample", type=int, default=2000, help="also lid_desc from this sample (0: skip)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the LID reference sample")
    parser.add_argument("--shuffles", type=int, default=2, help="extra random-order builds")
    parser.add_argument(
        "--no-budget-check",
        dest="budget_check",
        action="store_false",
        help="skip the equal-build-time `none` build",
    )
    parser.add_argument(
        "--no-single-add-check",
        dest="single_add_check",
        action="store_false",
        help="skip the lid_desc build added in one call",
    )
    args = parser.parse_args()
    return finish(run(args), args, "insertion_order", markdown_report)


if __name__ == "__main__":
    sys.exit(main())
