"""Client processes for concurrent single queries. A Python HTTP client tops out around
500 requests/s per process, so concurrency needs processes (own interpreter, own GIL), and
they wait at a barrier after their warm-up so that the timed stretch starts together."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from typing import Any

import numpy as np

from harness.http import MAX_ERRORS_KEPT, HttpOutcome


def run_client_processes(
    target: Callable[..., Any], worker_args: Sequence[tuple[Any, ...]], timeout_s: float
) -> list[Any]:
    """Spawn one process per `worker_args` entry, each calling `target(barrier, *args)` (a
    module-level function, so it pickles); returns what they returned, in worker order."""
    context = mp.get_context("spawn")
    barrier, results = context.Barrier(len(worker_args)), context.Queue()
    processes = [
        context.Process(target=_client, args=(target, worker, barrier, results, args))
        for worker, args in enumerate(worker_args)
    ]
    for process in processes:
        process.start()
    try:
        by_worker = dict(results.get(timeout=timeout_s) for _ in processes)
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
    return [by_worker[worker] for worker in range(len(worker_args))]


def _client(
    target: Callable[..., Any], worker: int, barrier: Barrier, results: Any, args: tuple[Any, ...]
) -> None:
    results.put((worker, target(barrier, *args)))


@dataclass
class MergedOutcome:
    """The clients' outcomes as one measurement: QPS is answered queries over first start
    to last finish; latencies are per request."""

    rows: np.ndarray
    """Query rows answered, in the order of `ids`."""
    ids: np.ndarray
    seconds: float
    latencies_s: list[float]
    errors: int
    error_samples: list[str]


def merge_outcomes(outcomes: Sequence[HttpOutcome], rows: Sequence[np.ndarray]) -> MergedOutcome:
    """Join the outcomes of clients that each sent the queries `rows[i]`."""
    return MergedOutcome(
        rows=np.concatenate([r[o.answered] for r, o in zip(rows, outcomes, strict=True)]),
        ids=np.concatenate([o.ids[o.answered] for o in outcomes]),
        seconds=max(o.finished for o in outcomes) - min(o.started for o in outcomes),
        latencies_s=[t for o in outcomes for t in o.latencies_s],
        errors=sum(o.errors for o in outcomes),
        error_samples=[e for o in outcomes for e in o.error_samples][:MAX_ERRORS_KEPT],
    )
