"""Requests to a benchmark's server and what they produced.

Every search helper returns ids, never raises on a bad answer: a failed request is counted
in an `HttpOutcome` with its message, so a run reports errors next to its rates instead of
stopping. Set-up requests (create, upsert, info) use `expect_ok`, which stops the run."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from typing import Any

import httpx
import numpy as np
import orjson

from harness.cli import log

COLLECTION = "glove"
K = 10
MAX_ERRORS_KEPT = 5
# BLAS/OpenMP worker threads spin for a while after a call before they sleep; a pause before
# each timed turn keeps one side's spinning threads from slowing the other side.
QUIET_S = 1.0
# After the first `green`, keep polling this long: a status that turns yellow again means the
# server reported green while work was still due (counted as a "flicker").
GREEN_CONFIRM_S = 2.0
POLL_S = 0.25
PROGRESS_EVERY_S = 15.0
SETTLE_S = 15.0
"""How long a segment layout must stay the same to count as settled: longer than the
server's 10 s idle seal, so the seal of an exact tail and the merge after it have begun."""

BatchAnswer = list[list[int]] | str
"""The ids found per search of a batch, or the error message of the whole batch."""


@dataclass
class HttpOutcome:
    """What a stretch of HTTP requests produced: ids per query (-1 = no answer) and errors."""

    ids: np.ndarray
    answered: np.ndarray
    latencies_s: list[float]
    errors: int
    error_samples: list[str]
    started: float
    finished: float


def new_outcome(n_queries: int, k: int = K) -> HttpOutcome:
    return HttpOutcome(
        ids=np.full((n_queries, k), -1, dtype=np.int64),
        answered=np.zeros(n_queries, dtype=bool),
        latencies_s=[],
        errors=0,
        error_samples=[],
        started=0.0,
        finished=0.0,
    )


def record(outcome: HttpOutcome, row: int, ids: list[int] | None, error: str | None) -> None:
    """Store one query's answer, or count its error (keeping the first few messages)."""
    if ids is None:
        outcome.errors += 1
        if len(outcome.error_samples) < MAX_ERRORS_KEPT:
            outcome.error_samples.append(error or "unknown error")
        return
    outcome.ids[row, : len(ids)] = ids
    outcome.answered[row] = True


def record_batch(outcome: HttpOutcome, rows: range, answer: BatchAnswer) -> None:
    for offset, row in enumerate(rows):
        if isinstance(answer, str):
            record(outcome, row, None, answer)
        else:
            record(outcome, row, answer[offset], None)


# --------------------------------------------------------------------------- requests


def describe_error(response: httpx.Response | None, exc: Exception | None = None) -> str:
    if response is None:
        return f"transport error: {exc!r}"
    return f"HTTP {response.status_code}: {response.text[:500]}"


def expect_ok(response: httpx.Response, what: str) -> Any:
    """Decode a 200 envelope's `result`, or stop the benchmark showing the body."""
    if response.status_code != 200:
        raise RuntimeError(f"{what} failed: {describe_error(response)}")
    return orjson.loads(response.content)["result"]


def point_ids(points: list[dict[str, Any]], k: int = K) -> list[int]:
    return [int(point["id"]) for point in points[:k]]


def send_one(
    client: httpx.Client, url: str, body: bytes, k: int = K
) -> tuple[list[int] | None, str | None]:
    """POST one query; returns (ids, None) or (None, error message)."""
    try:
        response = client.post(url, content=body)
    except httpx.HTTPError as exc:
        return None, describe_error(None, exc)
    if response.status_code != 200:
        return None, describe_error(response)
    return point_ids(orjson.loads(response.content)["result"]["points"], k), None


def send_batch(
    client: httpx.Client, body: bytes, n_searches: int, collection: str = COLLECTION
) -> BatchAnswer:
    """POST one `points/query/batch`; returns the ids found per search, or an error message."""
    url = f"/collections/{collection}/points/query/batch"
    try:
        response = client.post(url, content=body)
    except httpx.HTTPError as exc:
        return describe_error(None, exc)
    if response.status_code != 200:
        return describe_error(response)
    results = orjson.loads(response.content)["result"]
    if len(results) != n_searches:
        return f"{len(results)} results for a batch of {n_searches}"
    return [point_ids(result["points"]) for result in results]


def send_singles(
    client: httpx.Client,
    bodies: list[bytes],
    deadline_s: float,
    barrier: Barrier | None = None,
    collection: str = COLLECTION,
) -> HttpOutcome:
    """Send each query alone, in order, until done or past `deadline_s`.

    After a short warm-up (connection, code paths) it waits at `barrier`, if given, so that
    client processes start their timed queries together."""
    url = f"/collections/{collection}/points/query"
    outcome = new_outcome(len(bodies))
    for body in bodies[:3]:
        send_one(client, url, body)
    if barrier is not None:
        barrier.wait(timeout=deadline_s + 120)
    outcome.started = time.monotonic()
    for row, body in enumerate(bodies):
        if time.monotonic() - outcome.started > deadline_s:
            break
        before = time.perf_counter()
        ids, error = send_one(client, url, body)
        outcome.latencies_s.append(time.perf_counter() - before)
        record(outcome, row, ids, error)
    outcome.finished = time.monotonic()
    return outcome


def search_batches(
    client: httpx.Client,
    bodies: list[bytes],
    batches: list[range],
    deadline_s: float,
    collection: str = COLLECTION,
) -> tuple[HttpOutcome, float]:
    """Batches from one client, in order, after a pause and one untimed batch, until done or
    past `deadline_s`; returns the outcome and the seconds the timed batches took."""
    outcome = new_outcome(batches[-1].stop if batches else 0)
    time.sleep(QUIET_S)
    send_batch(client, bodies[0], len(batches[0]), collection)
    started = time.perf_counter()
    for rows, body in zip(batches, bodies, strict=True):
        if time.perf_counter() - started > deadline_s:
            break
        before = time.perf_counter()
        answer = send_batch(client, body, len(rows), collection)
        outcome.latencies_s.append(time.perf_counter() - before)
        record_batch(outcome, rows, answer)
    return outcome, time.perf_counter() - started


def batch_ranges(n: int, size: int) -> list[range]:
    """`range(0, size), range(size, 2 size), ...` covering `n` rows."""
    return [range(s, min(s + size, n)) for s in range(0, n, size)]


# --------------------------------------------------------------------------- collection state


def collection_info(client: httpx.Client, collection: str = COLLECTION) -> dict[str, Any]:
    result: dict[str, Any] = expect_ok(client.get(f"/collections/{collection}"), "collection info")
    return result


def jobs(client: httpx.Client, collection: str = COLLECTION) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = expect_ok(client.get(f"/collections/{collection}/jobs"), "jobs")
    return result


def segments(client: httpx.Client, collection: str = COLLECTION) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = expect_ok(
        client.get(f"/collections/{collection}/segments"), "segments"
    )
    return result


def wait_green(
    client: httpx.Client, timeout_s: float, what: str, collection: str = COLLECTION
) -> dict[str, Any]:
    """Poll until status is green and stays green for GREEN_CONFIRM_S.

    Returns the seconds until the green that held, the number of greens that did not hold,
    and the statuses seen. Raises RuntimeError on `red` or on timeout."""
    started = time.perf_counter()
    green_since: float | None = None
    flickers, seen, last_progress = 0, Counter[str](), started
    while True:
        now = time.perf_counter()
        status = collection_info(client, collection)["status"]
        seen[status] += 1
        if status == "red" or now - started > timeout_s:
            raise RuntimeError(f"{what}: status {status} after {now - started:.0f}s")
        if status == "green":
            green_since = now if green_since is None else green_since
            if now - green_since >= GREEN_CONFIRM_S:
                return {
                    "seconds": round(green_since - started, 3),
                    "flickers": flickers,
                    "statuses_seen": dict(seen),
                }
        elif green_since is not None:
            flickers, green_since = flickers + 1, None
        if now - last_progress > PROGRESS_EVERY_S:
            last_progress = now
            log(f"{what}: {status}; {describe_jobs(jobs(client, collection))}")
        time.sleep(POLL_S)


def wait_settled(
    client: httpx.Client, timeout_s: float = 900.0, collection: str = COLLECTION
) -> dict[str, Any]:
    """Until the collection is green and its segments have stayed the same for
    ``SETTLE_S`` (no seal or merge started meanwhile): green comes before the idle seal of
    an exact tail and the merge after it, which would otherwise run under what a benchmark
    measures next. The seconds waited and the layout reached; RuntimeError on timeout."""
    started = since = time.monotonic()
    deadline = started + timeout_s
    layout: tuple[str, list[Any]] | None = None
    while time.monotonic() < deadline:
        status = collection_info(client, collection)["status"]
        found = segments(client, collection)
        now = (status, [(s["segment_id"], s["kind"], s["points"]) for s in found])
        if now != layout:
            layout, since = now, time.monotonic()
        elif status == "green" and time.monotonic() - since >= SETTLE_S:
            return {"waited_s": round(time.monotonic() - started, 1), "segments": found}
        time.sleep(1.0)
    raise RuntimeError(f"collection not settled after {timeout_s:.0f}s: {layout}")


def describe_jobs(job_list: list[dict[str, Any]]) -> str:
    states = Counter(job["state"] for job in job_list)
    running = [
        f"{job['kind']} {job['points_total']:,} pts {job['progress']:.0%}"
        for job in job_list
        if job["state"] == "running"
    ]
    return f"jobs {dict(states)}" + (f", running: {', '.join(running)}" if running else "")
