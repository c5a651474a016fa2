"""``quiver import``'s request loop against an in-process fake of the bulk endpoint
(httpx.MockTransport): request boundaries, the state file, resuming, retries, rejected
rows, and the checks made before the first row is sent."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.ipc
import pytest

from client.errors import CliError, ServerError, StateMismatch
from client.http import QuiverClient
from client.importer import Importer, ImportOptions, ImportState, default_state_path
from client.readers import ReadOptions, open_reader

URL = "http://quiver.test"


class FakeServer:
    """Keeps the points it was sent; ``fail`` may answer a bulk request instead."""

    def __init__(self, dim: int = 4, exists: bool = True) -> None:
        self.dim = dim
        self.exists = exists
        self.points: dict[Any, Any] = {}
        self.requests: list[list[Any]] = []
        self.batches: list[int] = []
        self.created: list[dict[str, Any]] = []
        self.fail: Callable[[int], httpx.Response | None] = lambda number: None
        self.reject: Callable[[Any], str | None] = lambda point_id: None

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path == "/collections/c":
            if not self.exists:
                return _error(404, "Collection `c` doesn't exist!")
            vectors = {"size": self.dim, "distance": "Cosine"}
            return _ok(
                {"points_count": len(self.points), "config": {"params": {"vectors": vectors}}}
            )
        if request.method == "PUT" and path == "/collections/c":
            self.created.append(orjson.loads(request.read()))
            self.exists = True
            return _ok(True)
        assert (request.method, path) == ("POST", "/collections/c/points/bulk")
        body = request.read()  # the whole streamed body, as the server would read it
        rows = _rows(body, request.headers["content-type"])
        if request.headers["content-type"] == "application/vnd.apache.arrow.stream":
            self.batches += [batch.num_rows for batch in pyarrow.ipc.open_stream(body)]
        self.requests.append([point_id for point_id, _ in rows])
        failure = self.fail(len(self.requests) - 1)
        if failure is not None:
            return failure
        errors = []
        for number, (point_id, vector) in enumerate(rows):
            reason = self.reject(point_id)
            if reason is None:
                self.points[point_id] = vector
            else:
                errors.append({"row": number, "error": reason})
        accepted = len(rows) - len(errors)
        return _ok({"accepted": accepted, "rejected": len(errors), "errors": errors[:2]})


def _rows(body: bytes, content_type: str) -> list[tuple[Any, Any]]:
    if content_type == "application/x-ndjson":
        points = [orjson.loads(line) for line in body.splitlines()]
        return [(p["id"], p["vector"]) for p in points]
    assert content_type == "application/vnd.apache.arrow.stream"
    reader = pyarrow.ipc.open_stream(io.BytesIO(body))
    table = reader.read_all()
    return list(
        zip(table.column("id").to_pylist(), table.column("vector").to_pylist(), strict=True)
    )


def _ok(result: Any) -> httpx.Response:
    return httpx.Response(200, json={"result": result, "status": "ok", "time": 0.0})


def _error(status: int, message: str, result: Any = None) -> httpx.Response:
    return httpx.Response(status, json={"result": result, "status": {"error": message}})


def _import(server: FakeServer, path: Path, log: io.StringIO | None = None, **options: Any) -> Any:
    settings = {
        "collection": "c",
        "state_path": default_state_path(path),
        "retries": 2,
        "progress": False,
        "request_rows": 10,
        "batch_rows": 4,
    } | options
    client = QuiverClient(URL, transport=httpx.MockTransport(server.handle))
    reader = open_reader(path, ReadOptions())
    return Importer(client, reader, ImportOptions(**settings), log or io.StringIO()).run()


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("client.importer.time.sleep", lambda seconds: None)


@pytest.fixture
def npy(tmp_path: Path) -> Path:
    path = tmp_path / "v.npy"
    np.save(path, np.arange(35 * 4, dtype=np.float32).reshape(35, 4))
    return path


def test_requests_hold_request_rows_each_and_the_state_records_every_row(npy: Path) -> None:
    server = FakeServer()
    result = _import(server, npy)
    assert [len(ids) for ids in server.requests] == [10, 10, 10, 5]
    assert list(range(35)) == sorted(server.points)
    saved = ImportState.load(default_state_path(npy))
    assert saved is not None
    assert (
        saved.rows_done,
        saved.rows_total,
        saved.accepted,
        saved.rejected,
        saved.complete,
    ) == (35, 35, 35, 0, True)
    assert (result.rows_sent, result.exit_code) == (35, 0)


def test_wide_vectors_go_in_smaller_record_batches(
    npy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch holds at most MAX_BATCH_VECTOR_BYTES of vectors (here 48 bytes: three
    4-d rows), so the server's bound on one Arrow message is not met with defaults."""
    monkeypatch.setattr("client.importer.MAX_BATCH_VECTOR_BYTES", 48)
    server = FakeServer()
    _import(server, npy, batch_rows=4)
    assert max(server.batches) == 3 and sum(server.batches) == 35
    assert list(range(35)) == sorted(server.points)


def test_a_rerun_resumes_after_the_acknowledged_requests(npy: Path) -> None:
    server = FakeServer()
    server.fail = lambda number: _error(400, "stream refused") if number == 2 else None
    with pytest.raises(ServerError, match="stream refused"):
        _import(server, npy)
    saved = ImportState.load(default_state_path(npy))
    assert saved is not None and (saved.rows_done, saved.complete) == (20, False)
    server.fail = lambda number: None
    server.requests.clear()
    log = io.StringIO()
    result = _import(server, npy, log=log)
    assert [list(range(20, 30)), list(range(30, 35))] == server.requests
    assert list(range(35)) == sorted(server.points)
    assert "resuming after row 20 of 35" in log.getvalue()
    assert result.rows_sent == 15


def test_a_broken_connection_is_retried_from_the_acknowledged_row(npy: Path) -> None:
    server = FakeServer()

    def fail(number: int) -> httpx.Response | None:
        if number == 1:
            raise httpx.RemoteProtocolError("server disconnected")
        return _error(503, "busy") if number == 2 else None

    server.fail = fail
    log = io.StringIO()
    _import(server, npy, log=log)
    starts = [ids[0] for ids in server.requests if ids]
    assert starts == [0, 10, 10, 10, 20, 30]
    assert list(range(35)) == sorted(server.points)
    assert "retry 1 of 2 from row 10" in log.getvalue()


def test_retries_give_up_after_the_limit(npy: Path) -> None:
    server = FakeServer()
    server.fail = lambda number: _error(502, "bad gateway")
    with pytest.raises(ServerError, match="bad gateway"):
        _import(server, npy, retries=1)
    assert len(server.requests) == 2


def test_restart_ignores_the_state_file(npy: Path) -> None:
    server = FakeServer()
    _import(server, npy)
    server.requests.clear()
    _import(server, npy, restart=True)
    assert len(server.requests) == 4


def test_a_completed_import_sends_nothing_again(npy: Path) -> None:
    server = FakeServer()
    _import(server, npy)
    server.requests.clear()
    log = io.StringIO()
    _import(server, npy, log=log)
    assert server.requests == []
    assert "already imported" in log.getvalue()


def test_a_state_file_of_another_import_is_refused(npy: Path) -> None:
    server = FakeServer()
    server.fail = lambda number: _error(400, "stop") if number == 1 else None
    with pytest.raises(ServerError):
        _import(server, npy)
    other = QuiverClient("http://elsewhere.test", transport=httpx.MockTransport(server.handle))
    reader = open_reader(npy, ReadOptions(id_offset=5))
    options = ImportOptions(collection="c", state_path=default_state_path(npy), progress=False)
    with pytest.raises(StateMismatch, match=r"url: .*reader: .*--restart"):
        Importer(other, reader, options, io.StringIO()).run()


def test_a_changed_file_is_not_resumed(npy: Path) -> None:
    server = FakeServer()
    server.fail = lambda number: _error(400, "stop") if number == 1 else None
    with pytest.raises(ServerError):
        _import(server, npy)
    np.save(npy, np.zeros((36, 4), dtype=np.float32))
    with pytest.raises(StateMismatch, match="file_size"):
        _import(server, npy)


def test_rejected_rows_are_named_by_file_row_and_counted(npy: Path) -> None:
    server = FakeServer()
    server.reject = lambda point_id: "bad vector" if point_id in (3, 12, 13, 14) else None
    log = io.StringIO()
    result = _import(server, npy, log=log)
    assert (result.state.accepted, result.state.rejected, result.exit_code) == (31, 4, 1)
    lines = log.getvalue().splitlines()
    assert "rejected row 3: bad vector" in lines
    assert "rejected row 12: bad vector" in lines
    assert "1 more rejected rows not shown" in lines


def test_rejected_jsonl_rows_are_named_by_file_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    points = [orjson.dumps({"id": i, "vector": [1.0, 2.0, 3.0, 4.0]}).decode() for i in range(6)]
    path.write_text("\n".join([points[0], "", *points[1:]]) + "\n")
    server = FakeServer()
    server.reject = lambda point_id: "no" if point_id == 4 else None
    log = io.StringIO()
    _import(server, path, log=log, request_rows=3)
    assert "rejected line 6: no" in log.getvalue().splitlines()
    assert sorted(server.points) == [0, 1, 2, 3, 5]


def test_a_short_acknowledgement_stops_the_import(npy: Path) -> None:
    server = FakeServer()
    server.fail = lambda number: _ok({"accepted": 9, "rejected": 0, "errors": []})
    with pytest.raises(CliError, match="acknowledged 9 rows of the 10 sent"):
        _import(server, npy)
    assert ImportState.load(default_state_path(npy)) is None  # nothing was acknowledged


def test_missing_collection_needs_create_distance(npy: Path) -> None:
    with pytest.raises(CliError, match="--create-distance"):
        _import(FakeServer(exists=False), npy)
    server = FakeServer(exists=False)
    _import(server, npy, create_distance="Dot")
    assert server.created == [{"vectors": {"size": 4, "distance": "Dot"}}]


def test_a_collection_of_another_dimension_is_refused_before_sending(npy: Path) -> None:
    server = FakeServer(dim=8)
    with pytest.raises(CliError, match="size 8, the file's vectors have 4"):
        _import(server, npy)
    assert server.requests == []


def test_resuming_into_a_deleted_collection_is_refused(npy: Path) -> None:
    server = FakeServer()
    server.fail = lambda number: _error(400, "stop") if number == 1 else None
    with pytest.raises(ServerError):
        _import(server, npy)
    with pytest.raises(StateMismatch, match="does not exist any more"):
        _import(FakeServer(exists=False), npy, create_distance="Cosine")


def test_the_state_file_is_replaced_atomically(npy: Path, tmp_path: Path) -> None:
    state = ImportState.for_import(open_reader(npy, ReadOptions()), URL, "c")
    path = tmp_path / "state.json"
    state.save(path)
    state.rows_done = 10
    state.save(path)
    assert [path] == list(tmp_path.glob("state.json*"))
    loaded = ImportState.load(path)
    assert loaded is not None and loaded.rows_done == 10


def test_an_unreadable_state_file_asks_for_restart(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text('{"version": 99}')
    with pytest.raises(StateMismatch, match="--restart"):
        ImportState.load(tmp_path / "s.json")


def test_arrow_requests_are_one_stream_of_several_batches(npy: Path) -> None:
    bodies: list[bytes] = []
    server = FakeServer()

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/bulk"):
            bodies.append(request.read())
        return server.handle(request)

    client = QuiverClient(URL, transport=httpx.MockTransport(handle))
    options = ImportOptions(
        collection="c",
        state_path=default_state_path(npy),
        progress=False,
        request_rows=10,
        batch_rows=4,
    )
    Importer(client, open_reader(npy, ReadOptions()), options, io.StringIO()).run()
    sizes = [[b.num_rows for b in pyarrow.ipc.open_stream(io.BytesIO(body))] for body in bodies]
    assert sizes == [[4, 4, 2], [2, 4, 4], [4, 4, 2], [2, 3]]
    batch = next(iter(pyarrow.ipc.open_stream(io.BytesIO(bodies[0]))))
    assert pa.list_(pa.float32(), 4) == batch.schema.field("vector").type
