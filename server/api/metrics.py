"""Prometheus metrics (``GET /metrics``): requests, search strategies, builds, collections.

One registry per app (tests build many apps in one process). Request counts and
latencies are recorded by the middleware with the *route template* as label
(``/collections/{name}/points/query``), never the raw path, so label cardinality stays
bounded. Collection gauges are read at scrape time from the engine, and the planner's
strategy counts from its process-wide tally; builds report their durations when they end.
A scrape walks every collection (and, in cluster mode, every shard), so the route renders
it in a worker thread, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from server.engine.build_worker import Job
from server.engine.planner import PLAN_COUNTS

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
BUILD_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)


class Metrics:
    def __init__(self, app_state: Any) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "quiver_requests", "HTTP requests by route template, method and status",
            ["route", "method", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "quiver_request_duration_seconds", "HTTP request latency by route template",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.builds = Histogram(
            "quiver_index_build_duration_seconds", "Background job durations by kind and end state",
            ["kind", "state"], buckets=BUILD_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.registry.register(_EngineCollector(app_state))

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def observe_job(self, job: Job) -> None:
        if job.started is not None and job.finished is not None:
            self.builds.labels(job.kind, job.state).observe(max(0.0, job.finished - job.started))


class _EngineCollector(Collector):
    """Gauges read from the engine at scrape time, and the planner's strategy tally."""

    def __init__(self, app_state: Any) -> None:
        self._state = app_state

    def collect(self) -> Iterator[Metric]:
        plans = CounterMetricFamily(
            "quiver_search_plans", "Per-segment search strategies chosen by the planner",
            labels=["strategy"],
        )  # fmt: skip
        for strategy, count in sorted(PLAN_COUNTS.snapshot().items()):
            plans.add_metric([strategy], count)
        yield plans
        engine = getattr(self._state, "engine", None)
        if engine is None:
            return
        points = GaugeMetricFamily(
            "quiver_collection_points", "Points per collection", labels=["collection"]
        )
        segments = GaugeMetricFamily(
            "quiver_collection_segments", "Segments per collection (sealed + appendable)",
            labels=["collection"],
        )  # fmt: skip
        for name in engine.names():
            try:
                info = engine.get(name).info()
            except Exception:  # deleted while scraping
                continue
            points.add_metric([name], info.points_count)
            segments.add_metric([name], info.segments_count)
        yield points
        yield segments
