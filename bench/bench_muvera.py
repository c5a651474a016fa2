"""MUVERA benchmark: multi-vector search on real token embeddings, against brute-force MaxSim.

Data (`token_embeddings.py`, cached): all-MiniLM-L6-v2 token vectors of 20,000 Debian long
descriptions (73 tokens each on average, reduced to 128-d, unit norm, float16 on disk) and
1,000 queries (the one-line synopses of other packages, 12 tokens on average). Ground truth
is the exact MaxSim top-10 over the whole collection.

In one run, on this machine:

1. **Brute force** (the reference): exact MaxSim over all documents with numpy BLAS
   (`index/multivector.py`, tokens as float32), one query at a time.
2. **Encoding**: documents/s of the Fixed Dimensional Encoding for several
   (k_sim, d_proj, repetitions).
3. **MUVERA** (`index/muvera_index.py`): for each setting, an HNSW graph over 8-bit codes of
   the encodings (inner "hnsw_sq8", m 16, ef_construct 100), then `candidates` re-ranked by
   exact MaxSim: recall@10 against the ground truth and the single-query latency, for
   several candidate counts; plus memory per document. The default setting is also
   measured with a float graph (inner "hnsw") and an exact scan of the encodings (inner
   "flat"), to separate the encoding's loss from the graph's and the codes'.
4. **Token pooling** (`index/pooling.py`): top-10 agreement of exact MaxSim over pooled
   documents with the unpooled ground truth, at pool factors 2 and 3, and the tokens kept.
5. **Over HTTP**: a real server process, a `muvera` collection loaded through the JSON API,
   single queries from one client: recall@10 and latency, and exact (`params.exact`).

    python bench/bench_muvera.py            # ~10 min on 2 cores; --quick for a smoke run
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
from harness.cli import add_common_options, finish, log, new_parser
from harness.machine import cpu_busy_fraction, machine_info
from harness.metrics import latency_summary, recall_at_k
from harness.results import pyplot
from harness.server import QuiverServer, headers
from token_embeddings import TokenDataset, load

from index.base import SearchParams
from index.metrics import Distance
from index.multivector import MaxSimIndex, Ragged
from index.muvera import MuveraEncoder, MuveraParams
from index.muvera_index import MuveraIndex, MuveraIndexParams
from index.pooling import pool_tokens

K = 10
SETTINGS = [(3, 8, 10), (4, 8, 20), (3, 16, 20), (4, 16, 10), (4, 16, 20), (5, 16, 20)]
DEFAULT = (4, 16, 20)
CANDIDATES = [50, 100, 200, 400, 600]
EF = 128
LATENCY_QUERIES = 200
POOL_QUERIES = 300
HTTP_BATCH = 200


def single_queries(
    index: MaxSimIndex | MuveraIndex, queries: Ragged, n: int, params: SearchParams | None
) -> tuple[np.ndarray, list[float]]:
    """Each of the first ``n`` queries alone; ids and per-query latency (s)."""
    ids, latencies = np.full((n, K), -1), []
    for q in range(n):
        one = queries.take(np.array([q]))
        started = time.perf_counter()
        found, _ = index.search(one, K, params=params)
        latencies.append(time.perf_counter() - started)
        ids[q] = found[0]
    return ids, latencies


def ms(latencies: list[float]) -> dict[str, float]:
    return latency_summary(latencies, (50, 95), decimals=2)


def brute_force(docs: Ragged, queries: Ragged, truth: np.ndarray, n: int) -> dict[str, Any]:
    index = MaxSimIndex(docs.tokens.shape[1], Distance.DOT)
    index.add(docs)
    ids, latencies = single_queries(index, queries, n, None)
    started = time.perf_counter()
    batch_ids, _ = index.search(queries, K)
    batch_s = time.perf_counter() - started
    return {
        "recall_at_10": recall_at_k(ids, truth[:n]),
        "latency_ms": ms(latencies),
        "batch_queries_per_s": round(len(queries) / batch_s, 1),
        "batch_recall_at_10": recall_at_k(batch_ids, truth),
        "tokens_mb": round(index.stats().memory_bytes / 2**20, 1),
    }


def muvera_setting(
    setting: tuple[int, int, int],
    inner: str,
    docs: Ragged,
    queries: Ragged,
    truth: np.ndarray,
    n_latency: int,
) -> dict[str, Any]:
    k_sim, d_proj, reps = setting
    params = MuveraIndexParams(k_sim=k_sim, d_proj=d_proj, repetitions=reps, inner=inner)  # type: ignore[arg-type]
    encoder = MuveraEncoder(docs.tokens.shape[1], MuveraParams(k_sim, d_proj, reps))
    started = time.perf_counter()
    encoder.encode_documents(docs.tokens, docs.offsets)
    encode_s = time.perf_counter() - started
    index = MuveraIndex(docs.tokens.shape[1], Distance.DOT, params)
    started = time.perf_counter()
    index.add(docs)
    build_s = time.perf_counter() - started
    stats = index.stats()
    rows = []
    for candidates in CANDIDATES:
        search = SearchParams(ef=max(EF, candidates), oversampling=candidates / K)
        _, latencies = single_queries(index, queries, n_latency, search)
        all_ids, _ = index.search(queries, K, params=search)
        rows.append(
            {
                "candidates": candidates,
                "recall_at_10": round(recall_at_k(all_ids, truth), 4),
                "latency_ms": ms(latencies),
            }
        )
        log(
            f"  {setting} {inner} c={candidates}: recall {rows[-1]['recall_at_10']:.3f}, "
            f"p50 {rows[-1]['latency_ms']['p50']} ms"
        )
    n_docs = len(docs)
    return {
        "k_sim": k_sim,
        "d_proj": d_proj,
        "repetitions": reps,
        "inner": inner,
        "output_dim": encoder.output_dim,
        "encode_docs_per_s": round(n_docs / encode_s, 1),
        "build_s": round(build_s, 1),
        "bytes_per_doc": {
            part: round(size / n_docs, 1) for part, size in (stats.parts or {}).items()
        },
        "rows": rows,
    }


def pooling(docs: Ragged, queries: Ragged, truth: np.ndarray, n: int) -> list[dict[str, Any]]:
    out = []
    sub = queries.take(np.arange(n))
    for factor in (2.0, 3.0):
        started = time.perf_counter()
        pooled = pool_tokens(docs, factor, None)
        pool_s = time.perf_counter() - started
        index = MaxSimIndex(docs.tokens.shape[1], Distance.DOT)
        index.add(pooled)
        ids, _ = index.search(sub, K)
        out.append(
            {
                "pool_factor": factor,
                "top10_agreement": round(recall_at_k(ids, truth[:n]), 4),
                "tokens_kept": round(len(pooled.tokens) / len(docs.tokens), 4),
                "pool_docs_per_s": round(len(docs) / pool_s, 1),
            }
        )
        log(f"  pooling x{factor}: agreement {out[-1]['top10_agreement']:.3f}")
    return out


def http(
    data: TokenDataset, docs: Ragged, queries: Ragged, truth: np.ndarray, n: int
) -> dict[str, Any]:
    name = "tokens"
    config = {
        "vectors": {
            "size": docs.tokens.shape[1],
            "distance": "Dot",
            "multivector_config": {"comparator": "max_sim"},
        },
        "optimizers_config": {"indexing_threshold": len(docs)},
        "index": {"type": "muvera"},
    }
    with (
        QuiverServer() as server,
        httpx.Client(base_url=server.url, headers=headers(), timeout=600) as client,
    ):
        client.put(f"/collections/{name}", json=config).raise_for_status()
        started = time.perf_counter()
        for start in range(0, len(docs), HTTP_BATCH):
            stop = min(len(docs), start + HTTP_BATCH)
            points = [{"id": i, "vector": docs.item(i).tolist()} for i in range(start, stop)]
            response = client.put(
                f"/collections/{name}/points?wait=true",
                content=orjson.dumps({"points": points}),
                headers={"content-type": "application/json"},
            )
            response.raise_for_status()
        upload_s = time.perf_counter() - started
        while client.get(f"/collections/{name}").json()["result"]["status"] != "green":
            time.sleep(0.5)
        ready_s = time.perf_counter() - started
        info = client.get(f"/collections/{name}").json()["result"]
        out: dict[str, Any] = {
            "upload_s": round(upload_s, 1),
            "searchable_indexed_s": round(ready_s, 1),
            "memory": info["vectors_memory"][""],
        }
        for label, params, count in (("muvera", {}, n), ("exact", {"exact": True}, min(n, 50))):
            ids, latencies = np.full((count, K), -1), []
            for q in range(count):
                body = orjson.dumps(
                    {"query": queries.item(q).tolist(), "limit": K, "params": params}
                )
                started = time.perf_counter()
                response = client.post(
                    f"/collections/{name}/points/query",
                    content=body,
                    headers={"content-type": "application/json"},
                )
                latencies.append(time.perf_counter() - started)
                found = [p["id"] for p in response.json()["result"]["points"]]
                ids[q, : len(found)] = found
            out[label] = {
                "recall_at_10": recall_at_k(ids, truth[:count]),
                "latency_ms": ms(latencies),
                "queries": count,
            }
            log(
                f"  HTTP {label}: recall {out[label]['recall_at_10']:.3f}, "
                f"p50 {out[label]['latency_ms']['p50']} ms"
            )
    return out


def markdown(results: dict[str, Any]) -> str:
    bf = results["brute_force"]
    lines = [
        "# MUVERA on real token embeddings",
        "",
        f"{results['data']['docs']:,} Debian long descriptions (all-MiniLM-L6-v2 tokens, "
        f"{results['data']['tokens_per_doc']['mean']} per doc, 128-d), "
        f"{results['data']['queries']:,} synopsis queries; recall@10 against exact MaxSim; "
        "latency = one query at a time, in process. Command: `python bench/bench_muvera.py`.",
        "",
        f"Brute-force MaxSim (numpy BLAS, float32 tokens): p50 {bf['latency_ms']['p50']} ms / "
        f"query, {bf['batch_queries_per_s']} q/s batched, recall {bf['recall_at_10']:.3f}.",
        "",
        "| k_sim | d_proj | reps | dim | inner | enc docs/s | build s | candidates | recall@10 "
        "| p50 ms | speed-up vs brute force | FDE+graph B/doc |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in results["settings"]:
        fde = sum(v for k, v in s["bytes_per_doc"].items() if k.startswith("fde_"))
        for row in s["rows"]:
            speedup = bf["latency_ms"]["p50"] / max(row["latency_ms"]["p50"], 1e-9)
            lines.append(
                f"| {s['k_sim']} | {s['d_proj']} | {s['repetitions']} | {s['output_dim']} | "
                f"{s['inner']} | {s['encode_docs_per_s']:,.0f} | {s['build_s']} | "
                f"{row['candidates']} | {row['recall_at_10']:.3f} | {row['latency_ms']['p50']} | "
                f"{speedup:.1f}x | {fde:,.0f} |"
            )
    lines += [
        "",
        "Token pooling (exact MaxSim over pooled documents vs unpooled ground truth):",
        "",
        "| pool factor | top-10 agreement | tokens kept | docs/s |",
        "|---|---|---|---|",
    ]
    for p in results["pooling"]:
        lines.append(
            f"| {p['pool_factor']:g} | {p['top10_agreement']:.3f} | {p['tokens_kept']:.2f} "
            f"| {p['pool_docs_per_s']:,.0f} |"
        )
    if "http" in results:
        h = results["http"]
        lines += [
            "",
            f"Over HTTP (real server, `index.type` muvera at its defaults): load "
            f"{h['upload_s']} s, searchable and indexed after {h['searchable_indexed_s']} s; "
            f"muvera recall {h['muvera']['recall_at_10']:.3f} at p50 "
            f"{h['muvera']['latency_ms']['p50']} ms; "
            f"exact {h['exact']['latency_ms']['p50']} ms p50.",
        ]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s in results["settings"]:
        xs = [r["latency_ms"]["p50"] for r in s["rows"]]
        ys = [r["recall_at_10"] for r in s["rows"]]
        ax.plot(
            xs,
            ys,
            marker="o",
            label=f"k{s['k_sim']} d{s['d_proj']} r{s['repetitions']} {s['inner']}",
        )
    bf = results["brute_force"]
    ax.scatter(
        [bf["latency_ms"]["p50"]],
        [bf["recall_at_10"]],
        color="black",
        marker="*",
        s=120,
        label="brute force",
    )
    ax.set_xscale("log")
    ax.set_xlabel("p50 latency per query (ms, log)")
    ax.set_ylabel("recall@10 vs exact MaxSim")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    parser = new_parser(__doc__, raw=True)
    add_common_options(parser, quick_help="2,000 docs, fewer settings (smoke run)")
    parser.add_argument("--no-http", action="store_true", help="skip the real-server part")
    args = parser.parse_args()
    busy = cpu_busy_fraction()
    data = load()
    n_docs = 2000 if args.quick else data.n_docs
    docs = Ragged(
        data.doc_tokens[: data.doc_offsets[n_docs]].astype(np.float32),
        data.doc_offsets[: n_docs + 1],
    )
    queries = Ragged(data.query_tokens.astype(np.float32), data.query_offsets)
    truth = data.ground_truth[:, :K]
    if args.quick:
        truth = MaxSimIndex(docs.tokens.shape[1], Distance.DOT)
        truth.add(docs)
        truth = truth.search(queries, K)[0]
    n_latency = 20 if args.quick else LATENCY_QUERIES
    log(f"{n_docs} docs, {len(queries)} queries; CPU busy before start {busy}")
    results: dict[str, Any] = {
        "machine": machine_info(),
        "cpu_busy_before": busy,
        "data": data.meta | {"docs": n_docs},
        "params": {
            "k": K,
            "ef": EF,
            "candidates": CANDIDATES,
            "latency_queries": n_latency,
            "defaults": asdict(MuveraIndexParams()),
        },
    }
    log("brute force")
    results["brute_force"] = brute_force(docs, queries, truth, n_latency)
    settings = [DEFAULT] if args.quick else SETTINGS
    results["settings"] = []
    for setting in settings:
        log(f"setting {setting}")
        results["settings"].append(
            muvera_setting(setting, "hnsw_sq8", docs, queries, truth, n_latency)
        )
    for inner in ("hnsw", "flat"):
        log(f"default setting, inner {inner}")
        results["settings"].append(muvera_setting(DEFAULT, inner, docs, queries, truth, n_latency))
    log("pooling")
    results["pooling"] = pooling(docs, queries, truth, 50 if args.quick else POOL_QUERIES)
    if not args.no_http:
        log("HTTP")
        results["http"] = http(data, docs, queries, truth, 20 if args.quick else LATENCY_QUERIES)
    return finish(results, args, "muvera", markdown, plot)


if __name__ == "__main__":
    sys.exit(main())
