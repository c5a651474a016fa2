"""The background build worker: runs optimisation jobs off the request path.

One worker thread (faiss parallelises each build with OpenMP and releases the
GIL, so queries keep being answered). Jobs are recorded in the collection's
database on every state change; after a crash, what a job was doing is derived
again from the segments on disk (a sealed segment without a current index is
due for one), so the work is redone and the old record is marked ``interrupted``.

A failed job's segments are held back for a pause that doubles with each failure
(``RETRY_BASE_S``, capped at ``RETRY_CAP_S``); after ``MAX_TRIES`` failures they stay
held and the collection is red until its config changes. Only the last
``JOB_HISTORY`` finished jobs of a collection are kept, in memory and on disk.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from server.engine.collection import Collection
from server.engine.native_memory import release_free_memory
from server.engine.optimizer import Task
from server.engine.segment_build import Cancelled

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
_SAVE_EVERY_S = 2.0
_IDLE_CHECK_S = 1.0
MAX_TRIES = 3
"""Failed builds of the same segments before they are left alone (status red)."""
RETRY_BASE_S = 0.5
RETRY_CAP_S = 60.0
JOB_HISTORY = 100
"""Finished jobs kept per collection; a failing build once retried ~75 times a second
and the job table grew without end."""


@dataclass(slots=True)
class Failure:
    """How often builds of one segment failed, and when it may be tried again."""

    tries: int
    retry_at: float
    """``time.monotonic()`` before which the segment is held back."""
    error: str

    @property
    def exhausted(self) -> bool:
        return self.tries >= MAX_TRIES

    def holds(self, now: float) -> bool:
        return self.exhausted or now < self.retry_at


def retry_pause(tries: int) -> float:
    """Seconds to wait after the ``tries``-th failure: doubling, capped."""
    return float(min(RETRY_CAP_S, RETRY_BASE_S * 2 ** (tries - 1)))


@dataclass(slots=True)
class Job:
    id: str
    collection: str
    kind: str
    segment_ids: list[int]
    state: str = "queued"
    points_done: int = 0
    points_total: int = 0
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    result_segment: int | None = None
    redo_of: str | None = None
    segment_points: list[int] = field(default_factory=list)
    """Live points of each of ``segment_ids`` when the build started (the segments are
    gone once it is done; ``GET /collections/{name}/optimizations`` still shows them)."""
    cancel: threading.Event = field(default_factory=threading.Event)
    saved_at: float = 0.0

    @property
    def progress(self) -> float:
        if self.state == "done":
            return 1.0
        return 0.0 if self.points_total == 0 else self.points_done / self.points_total

    def eta_seconds(self) -> float | None:
        if self.state != "running" or self.started is None or self.points_done == 0:
            return None
        elapsed = time.time() - self.started
        return elapsed * (self.points_total - self.points_done) / self.points_done

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "collection": self.collection,
            "kind": self.kind,
            "segment_ids": self.segment_ids,
            "state": self.state,
            "progress": round(self.progress, 4),
            "points_done": self.points_done,
            "points_total": self.points_total,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "eta_seconds": self.eta_seconds(),
            "error": self.error,
            "result_segment": self.result_segment,
            "redo_of": self.redo_of,
            "segment_points": self.segment_points,
        }

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> Job:
        fields = {k: raw[k] for k in raw if k not in ("progress", "eta_seconds")}
        return cls(**fields)


def _segment_points(collection: Collection, segment_ids: list[int]) -> list[int]:
    try:
        points = {s.segment_id: s.points for s in collection.segments_info()}
    except Exception:  # the collection may be closing; the counts are informative only
        return []
    return [points.get(segment_id, 0) for segment_id in segment_ids]


BUILD_NICENESS = 10


def _lower_priority() -> None:
    """Builds yield the CPU to requests: on Linux a thread has its own nice value, and
    the OpenMP threads faiss starts from this thread inherit it. Ingest measured
    ~2x slower on 2 cores while a build ran at equal priority."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BUILD_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not permitted: builds just compete
        log.debug("build worker priority unchanged")


class BuildWorker:
    def __init__(self, idle_seal_s: float = 0.0) -> None:
        """``idle_seal_s`` > 0: while it has nothing queued, the worker checks every
        second for collections quiet that long and lets them seal their exact tail."""
        self._idle_seal_s = idle_seal_s
        self._collections: dict[str, Collection] = {}
        self._cond = threading.Condition()
        self._queue: deque[tuple[Collection, Job]] = deque()
        self._jobs: dict[str, Job] = {}
        self._busy: dict[str, set[int]] = {}
        self._held_back: dict[str, set[int]] = {}
        self._failures: dict[str, dict[int, Failure]] = {}
        """Collection -> segment id -> its failed builds (cleared by a config change)."""
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="quiver-build", daemon=True)
        self.on_finished: list[Callable[[Job], None]] = []
        """Called with the worker's lock held as each job ends: keep them cheap."""
        """Called with every job that ran to an end (metrics); must not raise."""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            for job in self._jobs.values():
                job.cancel.set()
            self._cond.notify_all()
        self._thread.join(timeout=30)

    # -- registration --------------------------------------------------------

    def attach(self, collection: Collection) -> None:
        """Load the collection's job history, mark unfinished jobs interrupted, and
        queue whatever work its segments need now."""
        interrupted: dict[int, str] = {}
        for raw in collection.store.load_jobs():
            job = Job.from_wire(raw)
            if job.state in ACTIVE:
                job.state = "interrupted"
                job.finished = time.time()
                collection.store.save_job(job.id, job.to_wire())
                for segment_id in job.segment_ids:
                    interrupted[segment_id] = job.id
            with self._cond:
                self._jobs[job.id] = job
        with self._cond:
            dropped = self._prune(collection.name)
        self._forget(collection, dropped)
        collection.on_change = self.poke
        collection.status = lambda: self.status(collection.name)
        with self._cond:
            self._collections[collection.name] = collection
        self.poke(collection, redo=interrupted)

    def detach(self, name: str) -> None:
        """Cancel a deleted collection's jobs and forget them."""
        with self._cond:
            self._collections.pop(name, None)
            for job in list(self._jobs.values()):
                if job.collection == name:
                    job.cancel.set()
                    if job.state != "running":
                        del self._jobs[job.id]
            self._queue = deque((c, j) for c, j in self._queue if c.name != name)
            self._busy.pop(name, None)
            self._held_back.pop(name, None)
            self._failures.pop(name, None)

    def poke(self, collection: Collection, redo: dict[int, str] | None = None) -> None:
        """Queue the tasks the collection needs now (cheap; called after writes)."""
        with self._cond:
            if self._stopping:
                return
            busy = self._busy.setdefault(collection.name, set())
            tasks = collection.due_tasks(busy, self._held(collection.name))
            for task in tasks:
                self._enqueue(collection, task, redo or {})

    def config_changed(self, collection: Collection) -> None:
        """A new index config: cancelled and failed work may be retried, due work queued."""
        with self._cond:
            self._held_back.pop(collection.name, None)
            self._failures.pop(collection.name, None)
        self.poke(collection)

    def _held(self, name: str) -> set[int]:
        """Segments no task may touch now: cancelled ones, and failed ones pausing or
        out of tries."""
        now = time.monotonic()
        failing = {sid for sid, f in self._failures.get(name, {}).items() if f.holds(now)}
        return self._held_back.get(name, set()) | failing

    def _enqueue(self, collection: Collection, task: Task, redo: dict[int, str]) -> None:
        job = Job(
            id=uuid.uuid4().hex[:16],
            collection=collection.name,
            kind=task.kind,
            segment_ids=list(task.segment_ids),
            redo_of=next((redo[s] for s in task.segment_ids if s in redo), None),
        )
        self._busy[collection.name].update(task.segment_ids)
        self._jobs[job.id] = job
        self._queue.append((collection, job))
        self._save(collection, job)
        self._cond.notify_all()

    # -- queries ---------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        with self._cond:
            return self._jobs.get(job_id)

    def jobs_for(self, name: str) -> list[Job]:
        with self._cond:
            return sorted(
                (j for j in self._jobs.values() if j.collection == name), key=lambda j: j.created
            )

    def cancel(self, job_id: str) -> Job | None:
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None or job.state not in ACTIVE:
                return job
            job.cancel.set()
            if job.state == "queued":
                self._finish_cancelled(job)
            return job

    def status(self, name: str) -> tuple[str, Any]:
        """Qdrant's collection status: yellow while optimising (or a failed build waits
        for its retry), red when builds failed ``MAX_TRIES`` times or the last job
        failed, grey when work is due but held back (cancelled), green otherwise."""
        jobs = self.jobs_for(name)
        if any(j.state in ACTIVE for j in jobs):
            return "yellow", "ok"
        with self._cond:
            failures = self._failures.get(name, {})
            held = self._held_back.get(name, set())
            exhausted = [f for f in failures.values() if f.exhausted]
            retrying = any(not f.exhausted for s, f in failures.items() if s not in held)
        if exhausted:
            return "red", {"error": exhausted[-1].error}
        if retrying:
            return "yellow", "ok"
        finished = [j for j in jobs if j.state in ("done", "failed")]
        if finished and finished[-1].state == "failed":
            return "red", {"error": finished[-1].error}
        if self._held_back.get(name):
            return "grey", "ok"
        return "green", "ok"

    def wait_idle(self, name: str, timeout: float) -> bool:
        """Block until the collection has no queued or running job (used by tests, bench)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while any(j.state in ACTIVE for j in self._jobs.values() if j.collection == name):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    # -- the worker thread ------------------------------------------------

    def _run(self) -> None:
        _lower_priority()
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    notified = self._cond.wait(self._next_wake())
                    self._retry_due()
                    if not notified and self._idle_seal_s:
                        self._seal_idle()
                if self._stopping:
                    return
                collection, job = self._queue.popleft()
                if job.state != "queued":
                    continue
                job.state, job.started = "running", time.time()
            self._save(collection, job)
            self._execute(collection, job)

    def _next_wake(self) -> float | None:
        """Seconds until the idle check or the earliest pending retry (None: neither)."""
        now = time.monotonic()
        waits = [_IDLE_CHECK_S] if self._idle_seal_s else []
        waits += [
            max(0.0, f.retry_at - now)
            for failures in self._failures.values()
            for f in failures.values()
            if not f.exhausted and f.retry_at > now
        ]
        return min(waits, default=None)

    def _retry_due(self) -> None:
        """Called with the condition held: queue the work of failed segments whose pause
        is over (a due retry re-enters ``due_tasks`` like any other work)."""
        now = time.monotonic()
        for name, failures in self._failures.items():
            collection = self._collections.get(name)
            if collection is not None and any(
                not f.exhausted and f.retry_at <= now for f in failures.values()
            ):
                self.poke(collection)

    def _seal_idle(self) -> None:
        """Called with the condition held and nothing queued; sealing queues an index job."""
        for collection in list(self._collections.values()):
            if collection.seal_if_idle(self._idle_seal_s):
                self.poke(collection)

    def _execute(self, collection: Collection, job: Job) -> None:
        task = Task(job.kind, tuple(job.segment_ids))
        job.segment_points = _segment_points(collection, job.segment_ids)

        def progress(done: int, total: int) -> None:
            job.points_done, job.points_total = done, total
            if time.time() - job.saved_at > _SAVE_EVERY_S:
                self._save(collection, job)

        try:
            job.result_segment = collection.run_task(task, progress, job.cancel.is_set)
            state, error = "done", None
        except Cancelled:
            # a shutdown stops the build too, but nobody cancelled it: the next start
            # redoes the work, so the record says interrupted, as after a crash
            state, error = ("interrupted" if self._stopping else "cancelled"), None
        except Exception as exc:  # a failed build must not kill the worker
            log.exception("build failed", extra={"job": job.id, "collection": job.collection})
            state, error = "failed", f"{type(exc).__name__}: {exc}"
        with self._cond:
            self._busy.get(job.collection, set()).difference_update(job.segment_ids)
            if state == "cancelled":
                self._held_back.setdefault(job.collection, set()).update(job.segment_ids)
            self._count_failure(job, state, error)
            # queue what this job made due *before* it reads as finished, so the
            # collection never flickers green between two jobs
            self.poke(collection)
            job.state, job.error, job.finished = state, error, time.time()
            # before the job reads as finished to anyone (cheap: metrics), so a client
            # that saw the collection turn green also sees the build counted
            for listener in self.on_finished:
                listener(job)
            dropped = self._prune(job.collection)
            self._cond.notify_all()
        self._save(collection, job)
        self._forget(collection, dropped)
        release_free_memory()  # the build's transient buffers, not kept at peak

    def _count_failure(self, job: Job, state: str, error: str | None) -> None:
        """Called with the condition held: a failed job pauses its segments (longer after
        each failure); a successful one clears them (they are replaced anyway)."""
        failures = self._failures.setdefault(job.collection, {})
        if state == "done":
            for segment_id in job.segment_ids:
                failures.pop(segment_id, None)
        if state != "failed" or error is None:
            return
        tries = 1 + max((failures[s].tries for s in job.segment_ids if s in failures), default=0)
        retry_at = time.monotonic() + retry_pause(tries)
        for segment_id in job.segment_ids:
            failures[segment_id] = Failure(tries, retry_at, error)
        if tries >= MAX_TRIES:
            log.error(
                "build failed %d times; its segments wait for a config change",
                tries, extra={"job": job.id, "collection": job.collection},
            )  # fmt: skip

    def _prune(self, name: str) -> list[str]:
        """Called with the condition held: drop all but the last ``JOB_HISTORY`` finished
        jobs of ``name``; returns the ids dropped."""
        jobs = self._jobs.values()
        finished = [j for j in jobs if j.collection == name and j.state not in ACTIVE]
        if len(finished) <= JOB_HISTORY:
            return []
        finished.sort(key=lambda j: (j.finished or j.created, j.created))
        dropped = [j.id for j in finished[: len(finished) - JOB_HISTORY]]
        for job_id in dropped:
            del self._jobs[job_id]
        return dropped

    @staticmethod
    def _forget(collection: Collection, job_ids: list[str]) -> None:
        """Delete pruned job records (best effort, like saving them)."""
        if not job_ids:
            return
        try:
            collection.store.delete_jobs(job_ids)
        except Exception:  # the collection may be closing
            log.debug("pruned job records not deleted", extra={"collection": collection.name})

    def _finish_cancelled(self, job: Job) -> None:
        job.state, job.finished = "cancelled", time.time()
        self._busy.get(job.collection, set()).difference_update(job.segment_ids)
        self._held_back.setdefault(job.collection, set()).update(job.segment_ids)
        self._cond.notify_all()

    @staticmethod
    def _save(collection: Collection, job: Job) -> None:
        job.saved_at = time.time()
        try:
            collection.store.save_job(job.id, job.to_wire())
        except Exception:  # the collection may be closing; the record is best effort
            log.debug("job record not saved", extra={"job": job.id})
