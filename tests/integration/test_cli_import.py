"""The ``quiver`` client commands as a user runs them: subprocesses against a real server.

The interrupted import is the one that matters most: the CLI is killed (SIGKILL) in the
middle of an upload after at least one acknowledged request, the same command is run
again, and the collection must end with exactly the intended points.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers.process import REPO_ROOT, ServerFactory
from tests.integration import conftest

pytestmark = pytest.mark.integration

CLI_TIMEOUT_S = 60.0


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("QUIVER_")}


def _command(url: str, *args: str | Path) -> list[str]:
    return [sys.executable, "-m", "client", *map(str, args), "--url", url]


def quiver(url: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(url, *args),
        cwd=REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done.stdout


def _api(url: str, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(method, f"{url}{path}", json=body, timeout=30.0)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def _points(url: str, collection: str) -> dict[Any, dict[str, Any]]:
    """Every point of the collection, by id."""
    found: dict[Any, dict[str, Any]] = {}
    offset = None
    while True:
        body = {"limit": 1000, "with_payload": True, "with_vector": True, "offset": offset}
        page = _api(url, "POST", f"/collections/{collection}/points/scroll", body)
        for point in page["points"]:
            assert point["id"] not in found
            found[point["id"]] = point
        offset = page["next_page_offset"]
        if offset is None:
            return found


def _ids(url: str, collection: str) -> list[Any]:
    """Every id of the collection, in scroll order, repeats included."""
    ids: list[Any] = []
    offset = None
    while True:
        body = {"limit": 10_000, "with_payload": False, "with_vector": False, "offset": offset}
        page = _api(url, "POST", f"/collections/{collection}/points/scroll", body)
        ids.extend(point["id"] for point in page["points"])
        offset = page["next_page_offset"]
        if offset is None:
            return ids


def _count(url: str, collection: str) -> int:
    return int(
        _api(url, "POST", f"/collections/{collection}/points/count", {"exact": True})["count"]
    )


def _matrix(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)


def test_import_npy_creates_the_collection_and_loads_every_row(
    module_server_url: str, tmp_path: Path
) -> None:
    matrix = _matrix(2500, 8)
    np.save(tmp_path / "v.npy", matrix)
    out = _ok(
        quiver(
            module_server_url,
            "import",
            tmp_path / "v.npy",
            "-c",
            "npy",
            "--create-distance",
            "Euclid",
            "--id-offset",
            "10",
            "--request-rows",
            "1000",
        )
    )
    assert "2,500 accepted, 0 rejected" in out
    points = _points(module_server_url, "npy")
    assert list(range(10, 2510)) == sorted(points)
    stored = np.array([points[i + 10]["vector"] for i in range(2500)], dtype=np.float32)
    np.testing.assert_allclose(matrix, stored, rtol=1e-6)


def test_import_parquet_maps_ids_vectors_and_payload_columns(
    module_server_url: str, tmp_path: Path
) -> None:
    table = pa.table(
        {
            "key": pa.array([7, 8, 9], pa.int32()),
            "emb": [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
            "city": ["Berlin", "Paris", None],
            "payload": pa.array([{"rank": 1}, {"rank": 2}, {"rank": 3}]),
        }
    )
    pq.write_table(table, tmp_path / "p.parquet")
    _ok(
        quiver(
            module_server_url,
            "import",
            tmp_path / "p.parquet",
            "-c",
            "pq",
            "--create-distance",
            "Dot",
            "--id-column",
            "key",
            "--vector-column",
            "emb",
        )
    )
    points = _points(module_server_url, "pq")
    assert {i: p["payload"] for i, p in points.items()} == {
        7: {"city": "Berlin", "rank": 1},
        8: {"city": "Paris", "rank": 2},
        9: {"rank": 3},
    }
    assert points[9]["vector"] == [1.0, 1.0]


def test_interrupted_import_resumes_and_ends_with_exactly_the_intended_points(
    module_server_url: str, tmp_path: Path
) -> None:
    rows, request_rows = 100_000, 500
    np.save(tmp_path / "big.npy", _matrix(rows, 8))
    state_path = tmp_path / "big.npy.quiver-import.json"
    _api(
        module_server_url,
        "PUT",
        "/collections/resume",
        {
            "vectors": {"size": 8, "distance": "Euclid"},
            "optimizers_config": {"indexing_threshold": 0},  # no index builds competing for CPU
        },
    )
    args = (
        "import",
        tmp_path / "big.npy",
        "-c",
        "resume",
        "--request-rows",
        str(request_rows),
        "--batch-rows",
        "200",
    )

    first = subprocess.Popen(
        _command(module_server_url, *args),
        cwd=REPO_ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        done = _wait_for_acknowledged(state_path, first, at_least=request_rows)
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.wait(CLI_TIMEOUT_S)
    assert first.returncode == -signal.SIGKILL, "the import ended before it could be killed"
    killed_at = orjson.loads(state_path.read_bytes())["rows_done"]
    assert done <= killed_at < rows, "kill the first run before its last request"
    assert killed_at % request_rows == 0
    assert _count(module_server_url, "resume") >= killed_at  # acknowledged means durable

    second = quiver(module_server_url, *args)
    out = _ok(second)
    assert f"resuming after row {killed_at:,} of {rows:,}" in second.stderr
    assert f"this run sent {rows - killed_at:,} rows" in out
    state = orjson.loads(state_path.read_bytes())
    assert (rows, rows, True) == (state["rows_done"], state["accepted"], state["complete"])
    assert rows == _count(module_server_url, "resume")
    assert sorted(_ids(module_server_url, "resume")) == list(range(rows))


def _wait_for_acknowledged(
    state_path: Path, process: subprocess.Popen[bytes], at_least: int
) -> int:
    deadline = time.monotonic() + CLI_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, "the import ended before one request was seen done"
        try:
            done = int(orjson.loads(state_path.read_bytes())["rows_done"])
        except (FileNotFoundError, orjson.JSONDecodeError):
            done = 0
        if done >= at_least:
            return done
        time.sleep(0.002)
    raise AssertionError("no request was acknowledged in time")


def test_export_to_jsonl_and_import_back_round_trips(
    module_server_url: str, tmp_path: Path
) -> None:
    table = pa.table(
        {
            "id": [1, 2, 3, 4],
            "vector": [[0.5, 1.5, 2.5]] * 2 + [[3.0, 2.0, 1.0]] * 2,
            "tags": [["a"], ["b", "c"], [], None],
            "n": [1.5, 2.5, 3.5, 4.5],
        }
    )
    pq.write_table(table, tmp_path / "src.parquet")
    _ok(
        quiver(
            module_server_url,
            "import",
            tmp_path / "src.parquet",
            "-c",
            "src",
            "--create-distance",
            "Euclid",
        )
    )
    _ok(
        quiver(module_server_url, "export", tmp_path / "out.jsonl", "-c", "src", "--page-size", "3")
    )
    _ok(
        quiver(
            module_server_url,
            "import",
            tmp_path / "out.jsonl",
            "-c",
            "copy",
            "--create-distance",
            "Euclid",
        )
    )
    assert _points(module_server_url, "src") == _points(module_server_url, "copy")
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 4


def test_export_to_npy_writes_vectors_and_payloads_row_for_row(
    module_server_url: str, tmp_path: Path
) -> None:
    matrix = _matrix(30, 4)
    np.save(tmp_path / "v.npy", matrix)
    _ok(
        quiver(
            module_server_url,
            "import",
            tmp_path / "v.npy",
            "-c",
            "tonpy",
            "--create-distance",
            "Euclid",
        )
    )
    _ok(
        quiver(module_server_url, "export", tmp_path / "out.npy", "-c", "tonpy", "--page-size", "7")
    )
    exported = np.load(tmp_path / "out.npy")
    lines = [orjson.loads(x) for x in (tmp_path / "out.payload.jsonl").read_bytes().splitlines()]
    ids = [line["id"] for line in lines]
    assert list(range(30)) == sorted(ids)
    np.testing.assert_allclose(matrix[ids], exported, rtol=1e-6)


def test_rejected_rows_exit_1_and_are_printed_with_their_line(
    module_server_url: str, tmp_path: Path
) -> None:
    lines = [
        '{"id": 1, "vector": [1, 2]}',
        '{"id": 2, "vector": [1, 2, 3]}',
        '{"id": 3, "vector": [3, 4], "payload": {"k": "v"}}',
    ]
    (tmp_path / "p.jsonl").write_text("\n".join(lines) + "\n")
    done = quiver(
        module_server_url,
        "import",
        tmp_path / "p.jsonl",
        "-c",
        "rejects",
        "--create-distance",
        "Dot",
    )
    assert done.returncode == 1, done.stderr
    assert "rejected line 2:" in done.stderr
    assert "2 accepted, 1 rejected" in done.stdout
    assert sorted(_points(module_server_url, "rejects")) == [1, 3]


def test_failures_exit_2_with_the_reason(module_server_url: str, tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", _matrix(3, 2))
    missing = quiver(module_server_url, "import", tmp_path / "v.npy", "-c", "nowhere")
    assert (missing.returncode, missing.stdout) == (2, "")
    assert "collection 'nowhere' does not exist" in missing.stderr
    unreachable = quiver("http://127.0.0.1:9", "collections")
    assert unreachable.returncode == 2
    assert "no answer from the server at http://127.0.0.1:9: ConnectError" in unreachable.stderr


def test_collections_lists_names_points_and_status(module_server_url: str, tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", _matrix(5, 3))
    _ok(
        quiver(
            module_server_url,
            "import",
            tmp_path / "v.npy",
            "-c",
            "listed",
            "--create-distance",
            "Cosine",
        )
    )
    rows = orjson.loads(_ok(quiver(module_server_url, "collections", "--json")))
    assert {"name": "listed", "points": 5, "status": "green", "vectors": "3 Cosine"} in rows
    table = _ok(quiver(module_server_url, "collections"))
    assert any(line.split()[:3] == ["listed", "5", "green"] for line in table.splitlines())


def test_snapshot_create_download_and_restore(module_server_url: str, tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", _matrix(40, 3))
    _ok(
        quiver(
            module_server_url,
            "import",
            tmp_path / "v.npy",
            "-c",
            "snap",
            "--create-distance",
            "Euclid",
        )
    )
    created = quiver(
        module_server_url,
        "snapshot",
        "create",
        "-c",
        "snap",
        "--download",
        tmp_path / "snap.snapshot",
    )
    if created.returncode == 2 and "HTTP 404" in created.stderr:
        pytest.skip("the server has no snapshot endpoints (POST .../snapshots answered 404)")
    _ok(created)
    name = created.stdout.split("\t")[0]
    assert name in _ok(quiver(module_server_url, "snapshot", "list", "-c", "snap"))
    _ok(
        quiver(
            module_server_url, "snapshot", "restore", "-c", "uploaded", tmp_path / "snap.snapshot"
        )
    )
    # a location may only name a file in the server's snapshots folder (issue 18)
    location = next(tmp_path.parent.glob(f"quiver*/data/snapshots/snap/{name}")).as_uri()
    _ok(quiver(module_server_url, "snapshot", "restore", "-c", "recovered", location))
    _ok(
        quiver(
            module_server_url,
            "snapshot",
            "download",
            "-c",
            "snap",
            name,
            "-o",
            tmp_path / "again.snapshot",
        )
    )
    expected = _points(module_server_url, "snap")
    assert expected == _points(module_server_url, "uploaded")
    assert expected == _points(module_server_url, "recovered")
    assert (tmp_path / "snap.snapshot").read_bytes() == (tmp_path / "again.snapshot").read_bytes()


def test_every_command_has_help() -> None:
    for command in (
        ["import"],
        ["export"],
        ["snapshot"],
        ["snapshot", "create"],
        ["snapshot", "list"],
        ["snapshot", "download"],
        ["snapshot", "restore"],
        ["collections"],
        ["bench"],
        ["serve"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "client", *command, "--help"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
        )
        assert done.returncode == 0, done.stderr
        assert "usage: quiver" in done.stdout


def test_bench_lists_the_benchmark_scripts() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "client", "bench"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    names = [line.split()[0] for line in _ok(done).splitlines()]
    assert {"core", "hnsw"} <= set(names)


def test_api_key_and_url_come_from_the_flags_or_the_environment(
    quiver_factory: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyed_env = {**conftest._server_env(), "QUIVER_API_KEY": "sesame"}
    monkeypatch.setattr(conftest, "_server_env", lambda: keyed_env)
    server = quiver_factory(tmp_path / "data")
    url = server.start()
    refused = quiver(url, "collections")
    assert refused.returncode == 2
    assert "HTTP 401: Must provide a valid API key" in refused.stderr
    _ok(quiver(url, "collections", "--api-key", "sesame"))
    from_env = subprocess.run(  # the URL from QUIVER_URL as well
        [sys.executable, "-m", "client", "collections"],
        cwd=REPO_ROOT,
        env={**_env(), "QUIVER_API_KEY": "sesame", "QUIVER_URL": url},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    _ok(from_env)
