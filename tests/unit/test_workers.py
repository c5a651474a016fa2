"""Multi-process serving pieces without a server: request routing, the shared
generation, a reader's read-only view of the data folder (ADR 0013), and the gates
behind the server's own protocol with the direct lane (ADR 0021)."""

from __future__ import annotations

import asyncio
import mmap
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from starlette.types import Receive, Scope, Send

from server.engine import shared_graphs
from server.engine.collection import Collection
from server.engine.config import CollectionConfig
from server.engine.id_column import IdColumn
from server.engine.limits import EngineLimits
from server.engine.point_ids import PointId
from server.engine.requests import PointsSelection, SearchSpec
from server.engine.sealed_segment import SealedSegment
from server.engine.segment_rows import ROWS_FILE, shared_rows
from server.settings import MAX_DEFAULT_WORKERS, Settings
from server.storage.aliases import save_aliases
from server.workers.generation import Generation
from server.workers.proxy import OwnerProxy
from server.workers.reader import ReaderGate
from server.workers.routing import is_write, local_read
from server.workers.view import open_view
from tests.helpers.api import Api, create_items
from tests.helpers.wire import Answer, Client, Connection, Wire, count_asgi, request, wire

C = "/collections/docs"


def test_point_reads_of_a_collection_are_answered_locally() -> None:
    assert local_read("POST", f"{C}/points/query") == "docs"
    assert local_read("POST", f"{C}/points/search/batch") == "docs"
    assert local_read("GET", f"{C}/points/7") == "docs"
    assert local_read("POST", f"{C}/facet") == "docs"


def test_everything_else_goes_to_the_owner() -> None:
    assert local_read("PUT", f"{C}/points") is None
    assert local_read("POST", f"{C}/points/delete") is None
    assert local_read("GET", C) is None  # collection info: status and jobs live in the owner
    assert local_read("GET", "/collections") is None
    assert local_read("GET", "/healthz") is None
    assert local_read("POST", "/nowhere") is None


def test_writes_are_every_route_not_marked_read_only() -> None:
    assert is_write("PUT", f"{C}/points")
    assert is_write("POST", f"{C}/points/payload")
    assert is_write("DELETE", C)
    assert is_write("POST", "/nowhere")  # unknown: counted as a write, never missed
    assert not is_write("POST", f"{C}/points/query")
    assert not is_write("GET", C)


def test_a_bump_in_a_forked_child_is_seen_by_the_parent() -> None:
    generation = Generation()
    generation.bump()
    pid = os.fork()
    if pid == 0:
        generation.bump()
        os._exit(0)
    os.waitpid(pid, 0)
    assert generation.read() == 2


def _collection(root: Path, name: str, **config: object) -> Collection:
    path = root / "collections" / name
    path.mkdir(parents=True)
    vectors = {"": {"size": 3, "distance": "Dot"}}
    model = CollectionConfig.model_validate({"vectors": vectors, "named_vectors": False} | config)
    return Collection.create(name, path, model)


def _upsert(collection: Collection, ids: list[int]) -> None:
    rng = np.random.default_rng(len(ids))
    collection.upsert(ids, [rng.random(3).tolist() for _ in ids], [None] * len(ids))


def test_a_view_holds_what_was_committed_before_it_and_no_later_write(tmp_path: Path) -> None:
    owner = _collection(tmp_path, "docs")
    _upsert(owner, [1, 2, 3])
    view = open_view(tmp_path, EngineLimits())
    assert view.current("docs")
    owner.delete(PointsSelection(ids=[2]))
    assert not view.current("docs")  # whoever wrote it: REST, gRPC's fast path
    _upsert(owner, [4, 5])
    assert view.get("docs").count(None) == 3
    assert open_view(tmp_path, EngineLimits()).get("docs").count(None) == 4  # 1, 3, 4, 5
    owner.close()


def test_a_view_resolves_aliases_and_leaves_the_owners_files_alone(tmp_path: Path) -> None:
    owner = _collection(tmp_path, "docs")
    _upsert(owner, [1])
    half_written = tmp_path / "collections" / "docs" / "segments" / ".tmp-building"
    half_written.mkdir(parents=True)
    save_aliases(tmp_path / "aliases.json", {"latest": "docs", "stale": "gone"})
    view = open_view(tmp_path, EngineLimits())
    assert view.has("latest") and not view.has("stale")
    assert view.get("latest").count(None) == 1
    assert half_written.is_dir()
    assert not view.current("stale")
    owner.close()


def test_zero_workers_means_one_per_cpu_and_the_default_is_one_per_cpu_up_to_a_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("QUIVER_WORKERS", raising=False)  # tests/conftest.py pins 1
    cpus = len(os.sched_getaffinity(0))
    assert Settings(workers=0).workers == cpus
    assert Settings().workers == min(cpus, MAX_DEFAULT_WORKERS)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(64)))
    assert Settings().workers == MAX_DEFAULT_WORKERS and Settings(workers=0).workers == 64
    monkeypatch.setenv("QUIVER_WORKERS", "1")
    assert Settings().workers == 1


def test_cluster_mode_defaults_to_one_process_unless_workers_are_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("QUIVER_WORKERS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(8)))
    assert Settings(ray_address="local").workers == 1
    assert Settings(ray_address="local", workers=3).workers == 3
    monkeypatch.setenv("QUIVER_RAY_ADDRESS", "local")
    assert Settings().workers == 1
    monkeypatch.setenv("QUIVER_WORKERS", "2")
    assert Settings().workers == 2


def _build(collection: Collection) -> None:
    """Run the collection's due builds here, as the build worker would."""
    while tasks := collection.due_tasks(set()):
        for task in tasks:
            collection.run_task(task, lambda _done, _total: None, lambda: False)


def _mapped_files(root: Path) -> set[str]:
    """This process's memory-mapped files under ``root`` (``/proc/self/maps``)."""
    lines = Path("/proc/self/maps").read_text().splitlines()
    return {line.split()[-1] for line in lines if str(root) in line}


def test_with_shared_graphs_the_owner_and_a_view_map_a_built_graph_from_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared_graphs._Switch, "on", False)
    shared_graphs.share_graphs()  # as the supervisor does before it forks the workers
    owner = _collection(tmp_path, "docs", optimizers_config={"indexing_threshold": 100})
    _upsert(owner, list(range(300)))
    _build(owner)
    view = open_view(tmp_path, EngineLimits()).get("docs")
    for collection in (owner, view):
        parts = collection.info().vectors_memory[""].bytes
        assert parts["vectors"] == 0 and parts["vectors_mapped"] == 300 * 3 * 4
    index_files = {f for f in _mapped_files(tmp_path) if f.endswith(".index")}
    assert index_files and all("/collections/docs/segments/" in f for f in index_files)
    owner.close()


def _file_mapping(array: np.ndarray) -> mmap.mmap | None:
    """The memory map ``array``'s memory belongs to, if any."""
    base = array.base
    while isinstance(base, np.ndarray | memoryview):
        base = base.base if isinstance(base, np.ndarray) else base.obj
    return base if isinstance(base, mmap.mmap) else None


def _sealed(collection: Collection) -> SealedSegment:
    (segment,) = collection._segments.sealed.values()
    return segment


def test_with_shared_graphs_ids_and_versions_are_mapped_from_one_file_and_answers_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared_graphs._Switch, "on", False)
    shared_graphs.share_graphs()
    owner = _collection(tmp_path, "docs", optimizers_config={"indexing_threshold": 100})
    _upsert(owner, list(range(300)))
    _build(owner)  # the owner writes the segment's rows file and maps it
    owner.set_payload({"k": 1}, PointsSelection(ids=[7]), None)  # row 7: a newer version
    view = open_view(tmp_path, EngineLimits()).get("docs")
    rows_files = {f for f in _mapped_files(tmp_path) if f.endswith("/" + ROWS_FILE)}
    assert len(rows_files) == 1  # owner and view map the same file: one page-cache copy
    for collection in (owner, view):
        column = _sealed(collection).ids
        assert isinstance(column, IdColumn)
        for array in (column.values, column.order, column.sorted_lo):
            assert _file_mapping(array) is not None and not array.flags.writeable
        versions = _sealed(collection).versions
        assert _file_mapping(versions) is not None  # copy-on-write: private once written
    versions = [
        [_sealed(c).version(_sealed(c).row_of(i) or 0) for i in (7, 8)] for c in (owner, view)
    ]
    assert versions[0] == versions[1] and versions[0][0] > versions[0][1]
    query = SearchSpec(using="", vector=np.ones(3, dtype=np.float32), limit=20)
    assert view.search([query]) == owner.search([query])
    alone = Collection.open("docs", tmp_path / "collections" / "docs", read_only=True)
    shared_graphs.share_graphs(False)  # a single process: its own arrays, same answers
    single = Collection.open("docs", tmp_path / "collections" / "docs", read_only=True)
    assert _file_mapping(_sealed(single).ids.values) is None  # type: ignore[attr-defined]
    assert single.search([query]) == alone.search([query]) == owner.search([query])
    for collection in (owner, alone, single):
        collection.close()


def test_the_owner_writes_a_missing_or_damaged_rows_file_and_a_reader_never_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared_graphs._Switch, "on", False)
    owner = _collection(tmp_path, "docs", optimizers_config={"indexing_threshold": 100})
    _upsert(owner, list(range(300)))
    _build(owner)  # one process: no rows file
    owner.close()
    (folder,) = (tmp_path / "collections" / "docs" / "segments").iterdir()
    assert not (folder / ROWS_FILE).exists()
    shared_graphs.share_graphs()
    view = open_view(tmp_path, EngineLimits()).get("docs")
    assert not (folder / ROWS_FILE).exists()  # a reader computes its own
    assert _file_mapping(_sealed(view).ids.values) is None  # type: ignore[attr-defined]
    Collection.open("docs", folder.parent.parent).close()  # the owner's restart writes it
    written = (folder / ROWS_FILE).read_bytes()
    (folder / ROWS_FILE).write_bytes(written[:-8] + bytes(8))  # a torn tail
    reopened = Collection.open("docs", folder.parent.parent)  # damaged: written again
    assert (folder / ROWS_FILE).read_bytes() == written
    assert _file_mapping(_sealed(reopened).ids.values) is not None  # type: ignore[attr-defined]
    assert reopened.count(None) == view.count(None) == 300
    reopened.close()


def test_without_shared_graphs_a_view_copies_a_graph_as_a_single_process_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared_graphs._Switch, "on", False)
    owner = _collection(tmp_path, "docs", optimizers_config={"indexing_threshold": 100})
    _upsert(owner, list(range(300)))
    _build(owner)
    parts = open_view(tmp_path, EngineLimits()).get("docs").info().vectors_memory[""].bytes
    assert parts["vectors"] == 300 * 3 * 4 and "vectors_mapped" not in parts
    owner.close()


def test_a_new_view_keeps_the_collections_that_did_not_change_and_reloads_the_rest(
    tmp_path: Path,
) -> None:
    a, b = _collection(tmp_path, "a"), _collection(tmp_path, "b")
    _upsert(a, [1])
    _upsert(b, [1])
    first = open_view(tmp_path, EngineLimits())
    _upsert(a, [2])
    second = open_view(tmp_path, EngineLimits(), first)
    assert second.get("b") is first.get("b")
    assert second.get("a") is not first.get("a") and second.get("a").count(None) == 2
    a.close()
    b.close()


def test_a_build_or_a_collection_created_again_is_loaded_again(tmp_path: Path) -> None:
    owner = _collection(tmp_path, "docs", optimizers_config={"indexing_threshold": 100})
    _upsert(owner, list(range(300)))
    first = open_view(tmp_path, EngineLimits())
    _build(owner)  # same points, same operation id: only the segment folders differ
    built = open_view(tmp_path, EngineLimits(), first)
    assert built.get("docs") is not first.get("docs")
    owner.close()
    shutil.rmtree(tmp_path / "collections" / "docs")
    again = _collection(tmp_path, "docs", optimizers_config={"indexing_threshold": 100})
    _upsert(again, list(range(300)))
    assert open_view(tmp_path, EngineLimits(), built).get("docs") is not built.get("docs")
    again.close()


def test_a_collection_with_a_read_rate_limit_is_left_to_the_owner(tmp_path: Path) -> None:
    """One token bucket for the server: a reader's own would multiply the limit."""
    limited = {"enabled": True, "read_rate_limit": 10}
    _collection(tmp_path, "limited", strict_mode_config=limited).close()
    _collection(tmp_path, "off", strict_mode_config=limited | {"enabled": False}).close()
    _collection(tmp_path, "plain").close()
    view = open_view(tmp_path, EngineLimits())
    assert not view.answers("limited")
    assert view.answers("off") and view.answers("plain")


def test_a_rows_file_maps_back_the_same_lookups_for_integer_and_uuid_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared_graphs._Switch, "on", True)
    ids: list[PointId] = [5, "6e2c1f0a-0d5e-4f4b-9f57-2b1c9a7e0c11", 3, 5]
    ids.append("00000000-0000-0000-0000-00000000000a")
    versions = [1, 2, 3, 4, 5]
    assert shared_rows(tmp_path, ids, versions, owner=False) is None  # a reader writes none
    written = shared_rows(tmp_path, ids, versions, owner=True)
    mapped = shared_rows(tmp_path, ids, [1, 2, 9, 4, 5], owner=False)  # row 2: newer since
    assert written is not None and mapped is not None
    column, mapped_versions = mapped
    computed = IdColumn(ids)
    assert list(column) == ids and column.take([1, 4]) == computed.take([1, 4])
    assert [column.rows_of(i).tolist() for i in ids] == [computed.rows_of(i).tolist() for i in ids]
    assert mapped_versions.tolist() == [1, 2, 9, 4, 5] and written[1].tolist() == versions


class RecordingProxy(OwnerProxy):
    """In place of the owner's socket: what was forwarded, answered 200 ``forwarded``."""

    def __init__(self) -> None:
        super().__init__("")
        self.paths: list[str] = []

    async def forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope["path"])
        while (await receive()).get("more_body", False):
            pass
        body = b'"forwarded"'
        headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


QUERY = "/collections/items/points/query"
POINTS = "/collections/items/points"
PLAIN = {"query": [1.0, 0.5, 0.0, 0.0], "limit": 3, "with_payload": True}


def _answered_by_reader(served: Wire, connection: Connection, deadline_s: float = 10.0) -> Answer:
    """A plain query, sent again until the reader answers it from its view (reloaded)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        answer = connection.send(request("POST", QUERY, PLAIN))[0]
        if answer.body != "forwarded":
            return answer
        served.loop.run_until_complete(asyncio.sleep(0.05))
    raise AssertionError("the reader never loaded a current view")


def test_a_reader_answers_current_queries_in_the_direct_lane_and_forwards_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with wire(tmp_path) as single:
        create_items(Api(Client(single.connect())))  # type: ignore[arg-type]
    generation, proxy = Generation(), RecordingProxy()
    asgi = count_asgi(monkeypatch)
    with wire(tmp_path, serve=lambda app: ReaderGate(app, generation, proxy, 1)) as served:
        connection = served.connect()
        full = request("POST", QUERY, PLAIN | {"lookup_from": None})  # the full route's body
        lane, routed = connection.send(request("POST", QUERY, PLAIN), full)
        assert lane.status == routed.status == 200 and lane.body["result"]["points"]
        assert lane.body["result"] == routed.body["result"]
        assert lane.headers[b"x-quiver-worker"] == routed.headers[b"x-quiver-worker"] == b"1"
        assert lane.headers[b"x-quiver-generation"] == b"0"
        assert asgi == [QUERY] and proxy.paths == []  # only the body the lane cannot vouch for
        generation.bump()  # the owner acknowledged a write this view may not hold
        write = request("PUT", POINTS, {"points": [{"id": 1, "vector": [1.0] * 4}]})
        stale, written = connection.send(request("POST", QUERY, PLAIN), write)
        assert stale.body == written.body == "forwarded"  # a lean write, too, in a reader
        assert proxy.paths == [QUERY, POINTS] and asgi == [QUERY, QUERY, POINTS]
        _answered_by_reader(served, connection)  # its view reloaded in the background
        taken = len(asgi)
        again = connection.send(request("POST", QUERY, PLAIN))[0]
        assert again.headers[b"x-quiver-generation"] == b"1" and len(asgi) == taken
        assert again.body["result"] == lane.body["result"]
