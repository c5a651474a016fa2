"""Prometheus metrics (``GET /metrics``): requests, search strategies, builds, collections.

One registry per app (tests build many apps in one process). Request counts and
latencies are recorded by the middleware with the *route template* as label
(``/collections/{name}/points/query``), never the raw path, so label cardinality stays
bounded. Collection gauges are read at scrape time from the engine, and the planner's
strategy counts from its process-wide tally; builds report their durations when they end.
A scrape walks every collection (and, in cluster mode, every shard), so the route renders
it in a worker thread, never on the event loop.

Beside Quiver's own ``quiver_*`` names, the scrape carries the Qdrant node metrics that
can be computed truthfully here (Qdrant's ``src/common/metrics.rs`` names and labels):
``app_info``, ``collections_total``, ``collections_vector_total``, ``collection_points``,
``collection_vectors``, ``optimizer_running_processes``, ``cluster_enabled`` and the
``rest_responses_*`` family. The same per-route statistics (``ResponseStats``) feed
``GET /telemetry``'s ``requests.rest.responses``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from server.api.routes.admin import quiver_version
from server.engine.build_worker import Job
from server.engine.filters import parse_filter
from server.engine.planner import PLAN_COUNTS

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
BUILD_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)
AVERAGE_WINDOW = 128
"""Qdrant's ``avg_duration_micros`` averages the latest 128 operations; so does Quiver's."""
TIMED_STATUS = 200
"""As in Qdrant, the ``rest_responses_*_duration_seconds`` gauges report 200 answers only."""
APP_NAME = "quiver"


@dataclass(slots=True)
class OperationStats:
    """Qdrant's ``OperationDurationStatistics`` for one (route, status): counts, and
    durations in seconds (rendered in microseconds)."""

    count: int = 0
    fail_count: int = 0
    total_s: float = 0.0
    min_s: float = float("inf")
    max_s: float = 0.0
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=AVERAGE_WINDOW))
    last: float = 0.0

    def add(self, seconds: float, failed: bool, at: float | None = None) -> None:
        self.count += 1
        self.fail_count += int(failed)
        self.total_s += seconds
        self.min_s = min(self.min_s, seconds)
        self.max_s = max(self.max_s, seconds)
        self.recent.append(seconds)
        self.last = time.time() if at is None else at

    @property
    def avg_s(self) -> float:
        return sum(self.recent) / len(self.recent) if self.recent else 0.0

    def to_wire(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "fail_count": self.fail_count,
            "avg_duration_micros": self.avg_s * 1e6,
            "min_duration_micros": self.min_s * 1e6 if self.count else 0.0,
            "max_duration_micros": self.max_s * 1e6,
            "total_duration_micros": int(self.total_s * 1e6),
            "last_responded": datetime.fromtimestamp(self.last, UTC).isoformat()
            if self.count
            else None,
        }


class ResponseStats:
    """Every answered request by ``"METHOD /route/template"`` and status, as Qdrant's
    REST telemetry keeps them. A response is failed when its status is 4xx or 5xx."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_route: dict[str, dict[int, OperationStats]] = {}

    def add(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            statuses = self._by_route.setdefault(f"{method} {route}", {})
            statuses.setdefault(status, OperationStats()).add(seconds, status >= 400)

    def snapshot(self) -> dict[str, dict[int, OperationStats]]:
        """A copy safe to read while requests keep arriving."""
        with self._lock:
            return {
                route: {status: _copy(stats) for status, stats in statuses.items()}
                for route, statuses in self._by_route.items()
            }

    def to_wire(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {
            route: {str(status): stats.to_wire() for status, stats in sorted(statuses.items())}
            for route, statuses in sorted(self.snapshot().items())
        }


def _copy(stats: OperationStats) -> OperationStats:
    return OperationStats(
        stats.count, stats.fail_count, stats.total_s, stats.min_s, stats.max_s,
        deque(stats.recent, maxlen=AVERAGE_WINDOW), stats.last,
    )  # fmt: skip


class Metrics:
    def __init__(self, app_state: Any) -> None:
        self.registry = CollectorRegistry()
        self.rest = ResponseStats()
        self.started = datetime.now(UTC)
        self.instance_id = str(uuid.uuid4())
        """Telemetry's ``id``: this server process (Qdrant keeps one per node)."""
        self.requests = Counter(
            "quiver_requests", "HTTP requests by route template, method and status",
            ["route", "method", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "quiver_request_duration_seconds", "HTTP request latency by route template",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        """Each (route, method, status)'s counter and histogram children: ``labels`` takes
        a lock and builds its key on every call, once per request."""
        self.builds = Histogram(
            "quiver_index_build_duration_seconds", "Background job durations by kind and end state",
            ["kind", "state"], buckets=BUILD_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.registry.register(_EngineCollector(app_state))
        self.registry.register(_QdrantCollector(app_state, self.rest))

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        series = self._series.get(key)
        if series is None:  # routes are templates: a bounded set of keys
            series = (self.requests.labels(route, method, str(status)),
                      self.latency.labels(route, method))  # fmt: skip
            self._series[key] = series
        series[0].inc()
        series[1].observe(seconds)
        self.rest.add(method, route, status, seconds)

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


class _QdrantCollector(Collector):
    """Qdrant's node metrics, under Qdrant's names and labels (see the module docstring)."""

    def __init__(self, app_state: Any, rest: ResponseStats) -> None:
        self._state = app_state
        self._rest = rest

    def collect(self) -> Iterator[Metric]:
        app = GaugeMetricFamily(
            "app_info", "information about qdrant server", labels=["name", "version"]
        )
        app.add_metric([APP_NAME, quiver_version()], 1.0)
        yield app
        yield GaugeMetricFamily("cluster_enabled", "is cluster support enabled", value=0.0)
        engine = getattr(self._state, "engine", None)
        if engine is not None:
            yield from _collection_families(engine)
        yield from _rest_families(self._rest.snapshot())


def vector_counts(collection: Any) -> dict[str, int]:
    """Per dense and sparse vector name: the live points holding it (a point may lack a
    named vector, so this is counted, not taken from the point count)."""
    config = collection.config
    names = [*config.vectors, *config.sparse_vectors]
    return {
        name: collection.count(parse_filter({"must": [{"has_vector": name}]})) for name in names
    }


def _collection_families(engine: Any) -> Iterator[Metric]:
    names = engine.names()
    points = GaugeMetricFamily(
        "collection_points", "approximate amount of points per collection", labels=["id"]
    )
    vectors = GaugeMetricFamily(
        "collection_vectors", "amount of vectors grouped by vector name",
        labels=["collection", "vector"],
    )  # fmt: skip
    running, total_vectors = 0, 0
    for name in names:
        try:
            collection = engine.get(name)
            points_count = collection.count(None)
            counts = vector_counts(collection)
            running += sum(1 for job in collection.jobs() if job["state"] == "running")
        except Exception:  # deleted while scraping
            continue
        points.add_metric([name], points_count)
        for vector, count in counts.items():
            vectors.add_metric([name, vector], count)
        total_vectors += sum(counts.values())
    yield GaugeMetricFamily("collections_total", "number of collections", value=len(names))
    yield GaugeMetricFamily(
        "collections_vector_total", "total number of vectors in all collections",
        value=total_vectors,
    )  # fmt: skip
    yield points
    yield vectors
    yield GaugeMetricFamily(
        "optimizer_running_processes", "number of currently running optimization processes",
        value=running,
    )  # fmt: skip


def _rest_families(stats: dict[str, dict[int, OperationStats]]) -> Iterator[Metric]:
    labels = ["method", "endpoint", "status"]
    total = CounterMetricFamily("rest_responses", "total number of responses", labels=labels)
    failed = CounterMetricFamily(
        "rest_responses_fail", "total number of failed responses", labels=labels
    )
    timing = {
        kind: GaugeMetricFamily(
            f"rest_responses_{kind}_duration_seconds", f"{word} response duration", labels=labels
        )
        for kind, word in (("avg", "average"), ("min", "minimum"), ("max", "maximum"))
    }
    for key, statuses in sorted(stats.items()):
        method, endpoint = key.split(" ", 1)
        for status, entry in sorted(statuses.items()):
            values = [method, endpoint, str(status)]
            total.add_metric(values, entry.count)
            failed.add_metric(values, entry.fail_count)
            if status == TIMED_STATUS:
                timing["avg"].add_metric(values, entry.avg_s)
                timing["min"].add_metric(values, entry.min_s)
                timing["max"].add_metric(values, entry.max_s)
    yield total
    yield failed
    yield from timing.values()
