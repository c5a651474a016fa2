"""A collection deleted while its index build runs: the build ends quietly (issue 17,
item 9). Before, the build reached the segment write after the folder was gone and
logged an ERROR with a FileNotFoundError."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest

from index.hnsw_faiss import HnswIndex
from server.engine.build_worker import Job
from tests.helpers.api import Api
from tests.helpers.indexing import create, data, upsert


def test_a_build_of_a_deleted_collection_ends_without_an_error(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    started, release = threading.Event(), threading.Event()
    finished: list[Job] = []
    add = HnswIndex.add

    def held_add(self: HnswIndex, vectors: np.ndarray) -> None:
        started.set()  # past the build's last cancel check, as a long graph build is
        assert release.wait(20)
        add(self, vectors)

    monkeypatch.setattr(HnswIndex, "add", held_add)
    engine = api.client.app.state.engine  # type: ignore[attr-defined]
    engine.worker.on_finished.append(finished.append)
    create(api, "gone", threshold=100, optimizers_config={"indexing_threshold": 100})
    upsert(api, "gone", data(150))  # one request: one sealed segment, one index job
    assert started.wait(20)
    with caplog.at_level(logging.INFO):
        assert api.result("DELETE", "/collections/gone") is True
        release.set()
        deadline = time.monotonic() + 20
        while not finished and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [job.collection for job in finished] == ["gone"]
    assert finished[0].state == "done" and finished[0].error is None
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert errors == []
    assert "build ended: collection deleted" in caplog.text
    status, _ = api.get("/collections/gone")
    assert status == 404
