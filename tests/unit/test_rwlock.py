"""The collection's readers-writer lock (``server/engine/rwlock.py``): readers share it,
a writer holds it alone, a waiting writer goes before readers that come after it, and
no waiter is left asleep when the lock is free."""

from __future__ import annotations

import random
import threading
import time

from server.engine.rwlock import ReadWriteLock

WAIT_S = 5.0


def _started(target: object) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


def test_readers_share_the_lock() -> None:
    lock = ReadWriteLock()
    both_inside = threading.Barrier(2, timeout=WAIT_S)

    def read() -> None:
        with lock.read():
            both_inside.wait()  # breaks (and raises) unless the two are in at once

    threads = [_started(read) for _ in range(2)]
    for thread in threads:
        thread.join(WAIT_S)
    assert not both_inside.broken


def test_a_waiting_writer_goes_before_later_readers() -> None:
    lock = ReadWriteLock()
    order: list[str] = []
    reading, writer_queued = threading.Event(), threading.Event()
    release_first = threading.Event()

    def first_reader() -> None:
        with lock.read():
            reading.set()
            release_first.wait(WAIT_S)

    def writer() -> None:
        writer_queued.set()
        with lock.write():
            order.append("writer")

    def later_reader() -> None:
        with lock.read():
            order.append("reader")

    threads = [_started(first_reader)]
    assert reading.wait(WAIT_S)
    threads.append(_started(writer))
    assert writer_queued.wait(WAIT_S)
    _until(lambda: lock._writers_waiting == 1)
    threads.append(_started(later_reader))
    time.sleep(0.05)
    assert order == []  # the later reader waits behind the queued writer
    release_first.set()
    for thread in threads:
        thread.join(WAIT_S)
    assert order == ["writer", "reader"]


def test_writers_are_alone_and_every_waiter_gets_through() -> None:
    lock = ReadWriteLock()
    inside = {"readers": 0, "writers": 0}
    count = threading.Lock()
    broken: list[str] = []

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(300):
            with lock.read():
                with count:
                    inside["readers"] += 1
                    if inside["writers"]:
                        broken.append("a reader beside a writer")
                time.sleep(rng.random() * 1e-4)
                with count:
                    inside["readers"] -= 1

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(150):
            with lock.write():
                with count:
                    inside["writers"] += 1
                    if inside["writers"] > 1 or inside["readers"]:
                        broken.append("a writer not alone")
                time.sleep(rng.random() * 1e-4)
                with count:
                    inside["writers"] -= 1

    threads = [_started(lambda s=s: reader(s)) for s in range(6)]
    threads += [_started(lambda s=s: writer(100 + s)) for s in range(6)]
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)  # no lost wake-up
    assert broken == []
    assert (lock._readers, lock._writer, lock._writers_waiting, lock._readers_waiting) == (
        0, False, 0, 0
    )  # fmt: skip


def test_an_exception_inside_leaves_the_lock_free() -> None:
    lock = ReadWriteLock()
    for side in (lock.read, lock.write):
        try:
            with side():
                raise ValueError("boom")
        except ValueError:
            pass
    with lock.write():  # would wait forever if either side were still held
        pass


def _until(condition: object, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(0.001)
