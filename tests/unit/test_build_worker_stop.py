"""A build stopped by a shutdown is recorded as interrupted, not cancelled.

The state machine test found it: a restart while a vacuum ran left a ``cancelled``
record, which reads as if a user had cancelled the job; the next start redoes the work,
so the record must say ``interrupted`` (as after a crash)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from server.engine.build_worker import BuildWorker
from server.engine.optimizer import Task
from server.engine.segment_build import Cancelled


class _Store:
    def __init__(self) -> None:
        self.saved: dict[str, dict[str, Any]] = {}

    def save_job(self, job_id: str, wire: dict[str, Any]) -> None:
        self.saved[job_id] = dict(wire)

    def load_jobs(self) -> list[dict[str, Any]]:
        return list(self.saved.values())

    def delete_jobs(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            self.saved.pop(job_id, None)


class _SlowCollection:
    """One due vacuum whose build runs until it is cancelled."""

    name = "c"

    def __init__(self) -> None:
        self.store = _Store()
        self.started = threading.Event()
        self.queued = False

    def due_tasks(self, busy: set[int], held: set[int]) -> list[Task]:
        if self.queued or 7 in held:
            return []
        self.queued = True
        return [Task("vacuum", (7,))]

    def run_task(
        self, task: Task, progress: Callable[[int, int], None], cancelled: Callable[[], bool]
    ) -> int:
        self.started.set()
        while not cancelled():
            threading.Event().wait(0.01)
        raise Cancelled()

    def seal_if_idle(self, idle_s: float) -> bool:
        return False


def _running_worker() -> tuple[BuildWorker, _SlowCollection]:
    worker = BuildWorker(idle_seal_s=0)
    collection = _SlowCollection()
    worker.attach(collection)  # type: ignore[arg-type]
    worker.start()
    assert collection.started.wait(10)
    return worker, collection


def test_a_build_stopped_by_shutdown_is_recorded_interrupted() -> None:
    worker, collection = _running_worker()
    worker.stop()
    [record] = collection.store.saved.values()
    assert record["state"] == "interrupted"


def test_a_build_a_user_cancels_is_recorded_cancelled() -> None:
    worker, collection = _running_worker()
    [job] = worker.jobs_for("c")
    worker.cancel(job.id)
    assert worker.wait_idle("c", 10)
    worker.stop()
    [record] = collection.store.saved.values()
    assert record["state"] == "cancelled"
