"""The filter-aware query planner: how one segment answers one (filtered) search.

The payload indexes give the exact number of candidates before any vector is
touched, so the choice is a few comparisons (docs/adr/0004-query-planner.md):

1. no candidates                       -> ``none``: answer nothing, touch nothing;
2. exact asked, no graph, or few
   candidates (under ``full_scan_threshold`` KB of vectors, or <= k) -> ``exact`` over
   the candidate rows: cheaper than a graph walk and never loses recall;
3. the filter passes most points (selectivity >= ``post_filter_min_selectivity``)
                                       -> ``post_filter``: unfiltered graph search for
   k / selectivity x ``oversampling`` results, checked against the candidates, grown
   until ``limit`` are found;
4. the filter pins a value (a top-level ``must`` ``match``) that has its own graph in
   the segment (``hnsw_config.payload_m``: ``tenant_layout.py``)
                                       -> ``graph`` over that value's graph (the plan's
   ``payload_graph`` names it), ``ef`` raised as in 6 by the share of the value's rows
   passing the filter; ``m: 0`` leaves no main graph, and this is the only graph path;
5. the filter pins one tenant (a ``match`` on a keyword / uuid ``is_tenant`` index in
   the top-level ``must``) whose rows are at most ``tenant_exact_fraction`` of the
   segment                             -> ``exact`` over the tenant's rows, whatever
   ``full_scan_threshold`` says: a small tenant is scored directly, with full recall,
   instead of a graph walk where few nodes pass (the plan's ``tenant`` names it); rows
   laid out by tenant (``tenant_layout.py``) are read as one slice;
6. otherwise                           -> ``graph``: HNSW traversal with the candidate
   bitmap checked in native code, ``ef`` raised by 1 / sqrt(selectivity) (capped),
   because each kept result costs ~1 / selectivity visited nodes.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Literal

Strategy = Literal["none", "exact", "graph", "post_filter"]


class PlanCounts:
    """How often each strategy was chosen, process-wide (exported by ``GET /metrics``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, strategy: str) -> None:
        with self._lock:
            self._counts[strategy] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


PLAN_COUNTS = PlanCounts()


@dataclass(frozen=True, slots=True)
class PlannerConfig:
    """Thresholds of the cost model; see the ADR for how they were measured."""

    post_filter_min_selectivity: float = 0.5
    oversampling: float = 1.5
    max_ef_boost: float = 8.0
    max_ef: int = 4096
    tenant_exact_fraction: float = 0.1
    """The tenant rule (4 above): a pinned tenant with at most this share of the
    segment's rows is scored exactly; a bigger one takes the ordinary rules."""


@dataclass(slots=True)
class Plan:
    strategy: Strategy
    segment_size: int
    candidates: int
    k: int
    ef: int | None
    reason: str
    estimated: int | None = None
    rounds: int = 1
    time_ms: float = 0.0
    tenant: str | None = None
    """``field=value`` of the tenant the filter pins (an ``is_tenant`` index), if any."""
    payload_graph: str | None = None
    """``field=value`` of the per-value graph a ``graph`` plan walks instead of the main one."""

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)


def choose_plan(
    *,
    segment_size: int,
    candidates: int,
    estimated: int | None,
    k: int,
    dim: int,
    has_graph: bool,
    exact: bool,
    ef: int,
    full_scan_kb: int,
    config: PlannerConfig = PlannerConfig(),
    tenant: str | None = None,
    payload_graph: tuple[str, int] | None = None,
) -> Plan:
    """Pick the strategy for one segment (``candidates`` = live rows passing the filter;
    ``tenant``: the pinned tenant, which the plan carries whatever it picks;
    ``payload_graph``: the label and row count of a pinned value's own graph)."""

    def plan(strategy: Strategy, k_used: int, ef_used: int | None, reason: str) -> Plan:
        return Plan(
            strategy, segment_size, candidates, k_used, ef_used, reason, estimated, tenant=tenant
        )

    if candidates == 0:
        return plan("none", 0, None, "no point passes the filter")
    if exact:
        return plan("exact", k, None, "exact requested")
    small = candidates <= k or candidates * dim * 4 < full_scan_kb * 1024
    if payload_graph is not None and not small:
        label, rows = payload_graph
        share = min(1.0, candidates / max(rows, 1))
        chosen = plan("graph", k, graph_ef(max(ef, k), share, config), f"graph of {label}")
        chosen.payload_graph = label
        return chosen
    if not has_graph:
        return plan("exact", k, None, "segment has no graph")
    if small:
        return plan("exact", k, None, f"{candidates} candidates under full_scan_threshold")
    selectivity = candidates / max(segment_size, 1)
    if tenant is not None and selectivity <= config.tenant_exact_fraction:
        return plan("exact", k, None, f"tenant holds {selectivity:.4f} of the segment")
    base_ef = max(ef, k)
    if selectivity >= 1.0:
        return plan("graph", k, base_ef, "no filter")
    if selectivity >= config.post_filter_min_selectivity:
        k_used = min(segment_size, math.ceil(k / selectivity * config.oversampling))
        return plan("post_filter", k_used, max(base_ef, k_used), f"selectivity {selectivity:.3f}")
    return plan(
        "graph", k, graph_ef(base_ef, selectivity, config), f"selectivity {selectivity:.4f}"
    )


def graph_ef(base_ef: int, selectivity: float, config: PlannerConfig) -> int:
    """Beam width for a filtered graph walk: wider as fewer nodes pass the filter."""
    boost = min(config.max_ef_boost, 1.0 / math.sqrt(max(selectivity, 1e-12)))
    return min(config.max_ef, math.ceil(base_ef * boost))


def force(
    plan: Plan, strategy: Strategy, segment_size: int, k: int, ef: int, config: PlannerConfig
) -> Plan:
    """Override the planner (benchmarks and tests compare each strategy alone)."""
    if strategy == "post_filter":
        selectivity = max(plan.candidates / max(segment_size, 1), 1e-9)
        k_used = min(segment_size, math.ceil(k / selectivity * config.oversampling))
        return Plan(
            strategy, segment_size, plan.candidates, k_used, max(ef, k_used), "forced",
            plan.estimated, tenant=plan.tenant,
        )  # fmt: skip
    selectivity = plan.candidates / max(segment_size, 1)
    ef_used = None if strategy == "exact" else graph_ef(max(ef, k), selectivity, config)
    return Plan(
        strategy, segment_size, plan.candidates, k, ef_used, "forced", plan.estimated,
        tenant=plan.tenant,
    )  # fmt: skip
