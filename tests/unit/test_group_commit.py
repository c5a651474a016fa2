"""Group commit (docs/adr/0016-group-commit.md): concurrent writes to one point store
share fsyncs, each returns only once its commit is covered by one, and a failing
write fails alone."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from server.errors import StorageError
from server.storage import point_store
from server.storage.group_commit import GroupSync, deferred_sync
from server.storage.point_store import PointRows, PointStore, WriteBatch

WRITERS = 8
WRITES_EACH = 25


def _batch(pid: str) -> WriteBatch:
    return WriteBatch(put_points=PointRows([pid], [b"{}"], [(pid, "", b"\0\0\0\0")]))


def _write_concurrently(store: PointStore) -> None:
    def writer(number: int) -> None:
        for i in range(WRITES_EACH):
            store.commit(_batch(f"{number}-{i}"))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_concurrent_writers_share_fsyncs_and_every_write_is_stored(tmp_path: Path) -> None:
    store = PointStore.create(tmp_path, {})
    _write_concurrently(store)
    assert store.last_op_id() == WRITERS * WRITES_EACH
    assert len(store.load_columns([]).pids) == WRITERS * WRITES_EACH
    assert 0 < store.fsyncs < WRITERS * WRITES_EACH + 1
    store.close()


def test_without_group_commit_sqlite_syncs_each_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(point_store, "_group_commit", False)
    store = PointStore.create(tmp_path, {})
    store.commit(_batch("a"))
    assert store.fsyncs == 0
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()


def test_a_deferred_commit_is_durable_after_sync(tmp_path: Path) -> None:
    store = PointStore.create(tmp_path, {})
    before = store.fsyncs
    store.commit(_batch("a"), durable=False)
    assert store.fsyncs == before
    store.sync()
    assert store.fsyncs == before + 1
    store.sync()  # nothing new committed: no second fsync
    assert store.fsyncs == before + 1
    store.close()


def test_a_failing_write_leaves_its_neighbours_written(tmp_path: Path) -> None:
    store = PointStore.create(tmp_path, {})
    store.commit(_batch("a"), durable=False)
    bad = WriteBatch(put_points=PointRows(["b"], [None], []))  # type: ignore[list-item]
    with pytest.raises(sqlite3.IntegrityError):
        store.commit(bad)
    store.commit(_batch("c"))
    assert sorted(store.load_columns([]).pids) == ["a", "c"]
    store.close()


def _failing_disk(tmp_path: Path) -> PointStore:
    """A store whose fsyncs fail (their files are in a folder that is not there)."""
    store = PointStore.create(tmp_path, {})
    assert store._sync is not None
    store._sync._wal_file = tmp_path / "missing-dir" / "wal"
    store._sync._db_file = tmp_path / "missing-dir" / "db"
    return store


def test_an_fsync_error_fails_every_later_write(tmp_path: Path) -> None:
    store = _failing_disk(tmp_path)
    with pytest.raises(StorageError, match="durable"):
        store.commit(_batch("a"))
    with pytest.raises(StorageError, match="durable"):
        store.commit(_batch("b"))
    store.close()


def test_wait_returns_at_once_when_nothing_was_committed(tmp_path: Path) -> None:
    sync = GroupSync(tmp_path / "none.sqlite")
    sync.wait()
    assert sync.fsyncs == 0


def _settled() -> tuple[list[StorageError | None], threading.Event, Any]:
    outcomes: list[StorageError | None] = []
    done = threading.Event()

    def callback(error: StorageError | None) -> None:
        outcomes.append(error)
        done.set()

    return outcomes, done, callback


def test_a_deferred_write_returns_before_its_fsync_and_is_settled_after_one(
    tmp_path: Path,
) -> None:
    """The direct lane's writes (``deferred_sync``): nothing waits in the writer's
    thread; the flusher thread fsyncs, and only then the callback says durable."""
    store = PointStore.create(tmp_path, {})
    before = store.fsyncs
    with deferred_sync() as owed:
        store.commit(_batch("a"))
    assert store.fsyncs == before  # returned without an fsync
    [(sync, target)] = owed
    outcomes, done, callback = _settled()
    sync.when_durable(target, callback)
    assert done.wait(10)
    assert outcomes == [None] and store.fsyncs == before + 1
    outcomes.clear()
    sync.when_durable(target, callback)  # already durable: answered at once, no fsync
    assert outcomes == [None] and store.fsyncs == before + 1
    store.close()


def test_deferred_writes_from_many_threads_each_get_an_fsync_begun_after_their_commit(
    tmp_path: Path,
) -> None:
    store = PointStore.create(tmp_path, {})
    assert store._sync is not None
    sync = store._sync
    started: list[int] = []  # the commit count at the start of every fsync
    fsync = sync._fsync

    def recorded() -> StorageError | None:
        started.append(sync._committed)
        return fsync()

    sync._fsync = recorded  # type: ignore[method-assign]
    settled: list[tuple[int, int]] = []  # (target, fsyncs begun when it was settled)
    lock = threading.Lock()

    def writer(number: int) -> None:
        for i in range(WRITES_EACH):
            with deferred_sync() as owed:
                store.commit(_batch(f"{number}-{i}"))
            [(_, target)] = owed
            done = threading.Event()

            def callback(
                error: StorageError | None, target: int = target, done: threading.Event = done
            ) -> None:
                assert error is None
                with lock:
                    settled.append((target, len(started)))
                done.set()

            sync.when_durable(target, callback)
            assert done.wait(10)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(settled) == WRITERS * WRITES_EACH
    for target, begun in settled:  # some fsync begun before the callback covered it
        assert any(count >= target for count in started[:begun])
    assert len(started) < WRITERS * WRITES_EACH  # and they shared fsyncs
    store.close()


def test_a_deferred_write_hears_of_a_failed_fsync(tmp_path: Path) -> None:
    store = _failing_disk(tmp_path)
    with deferred_sync() as owed:
        store.commit(_batch("a"))
    outcomes, done, callback = _settled()
    owed[0][0].when_durable(owed[0][1], callback)
    assert done.wait(10)
    assert isinstance(outcomes[0], StorageError)
    with pytest.raises(StorageError, match="durable"):  # and the store refuses writes since
        store.commit(_batch("b"))
    store.close()


def test_a_failing_callback_does_not_stop_the_flusher(tmp_path: Path) -> None:
    """One thread flushes for every store: a caller's broken callback (say, a closed
    event loop) must not leave later deferred writes waiting forever."""
    store = PointStore.create(tmp_path, {})

    def broken(error: StorageError | None) -> None:
        raise RuntimeError("Event loop is closed")

    for name, callback in (("a", broken), ("b", None)):
        with deferred_sync() as owed:
            store.commit(_batch(name))
        [(sync, target)] = owed
        if callback is None:
            outcomes, done, settle = _settled()
            sync.when_durable(target, settle)
            assert done.wait(10) and outcomes == [None]
        else:
            sync.when_durable(target, callback)
    store.close()
