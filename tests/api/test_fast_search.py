"""The lean path for plain single-vector queries (``api/fast_search.py``): it answers what
the full route answers, and every other body still reaches the full route."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from server.api import direct_lane, render
from server.api.fast_search import LEAN, Alike, FastSearch
from server.api.hand_off import HandOff
from server.engine.results import HitColumns
from server.workers.generation import Generation
from server.workers.supervisor import owner_app
from tests.helpers.api import Api, create_items, make_client
from tests.helpers.wire import Client, Connection, answers, count_asgi, request, wire

QUERY = "/collections/items/points/query"
SEARCH = "/collections/items/points/search"


@pytest.fixture
def fast_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The collection names the lean path answered for, in order."""
    calls: list[str] = []
    prepare = FastSearch.prepare

    def counting(self: FastSearch, scope: Any, kind: tuple[str, str], shape: Any) -> Any:
        calls.append(kind[1])
        return prepare(self, scope, kind, shape)

    monkeypatch.setattr(FastSearch, "prepare", counting)
    return calls


@pytest.fixture
def asgi_paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return count_asgi(monkeypatch)


@contextmanager
def items_over_the_lane(
    tmp_path: Path, headers: dict[str, str] | None = None, **settings: Any
) -> Iterator[Connection]:
    """A served app holding ``create_items``' collection, and a connection to it."""
    with wire(tmp_path, **settings) as served:
        connection = served.connect()
        create_items(Api(Client(connection, headers)))  # type: ignore[arg-type]
        yield connection


def test_a_plain_query_is_answered_by_the_lean_path_as_the_full_route_answers(
    api: Api, collection: str, fast_calls: list[str]
) -> None:
    plain = {"query": [1.0, 0.5, 0.0, 0.0], "limit": 3, "with_payload": True}
    full = plain | {"lookup_from": None}  # a key the lean path leaves to the full route
    assert api.result("POST", QUERY, plain) == api.result("POST", QUERY, full)
    assert fast_calls == ["items"]


def test_a_plain_search_is_answered_by_the_lean_path_as_the_full_route_answers(
    api: Api, collection: str, fast_calls: list[str]
) -> None:
    plain = {"vector": [1, 0.5, 0, 0], "limit": 4, "params": {"hnsw_ef": 16, "exact": False}}
    full = plain | {"top": 4}
    assert api.result("POST", SEARCH, plain) == api.result("POST", SEARCH, full)
    assert fast_calls == ["items"]


def test_values_the_wire_model_would_coerce_are_left_to_the_full_route(
    api: Api, collection: str, fast_calls: list[str]
) -> None:
    answer = api.result("POST", QUERY, {"query": [1.0, 0.0, 0.0, 0.0], "limit": "2"})
    assert len(answer["points"]) == 2
    assert fast_calls == []


def test_a_request_with_query_parameters_takes_the_full_route(
    api: Api, collection: str, fast_calls: list[str]
) -> None:
    """``consistency`` and ``timeout`` are read by the full route only."""
    plain = {"query": [1.0, 0.5, 0.0, 0.0], "limit": 3}
    answer = api.result("POST", QUERY + "?consistency=majority", plain)
    assert len(answer["points"]) == 3
    assert api.post(QUERY + "?consistency=nonsense", plain)[0] == 400
    assert fast_calls == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"query": [1.0, 0.0, 0.0, 0.0], "limit": -1}, 400),
        ({"query": [1.0, 0.0, 0.0], "limit": 2}, 400),
        ({"query": [1.0, 0.0, 0.0, 0.0], "filter": {"must": [{"key": "n"}]}}, 400),
        ({"query": [1.0, 0.0, 0.0, 0.0], "params": {"hnsw_ef": -5}}, 400),
    ],
)
def test_bad_plain_bodies_get_the_full_routes_errors(
    api: Api, collection: str, body: dict[str, Any], status: int
) -> None:
    code, answer = api.post(QUERY, body)
    assert code == status
    assert answer["result"] is None and answer["status"]["error"]


def test_a_missing_collection_is_a_qdrant_shaped_404(api: Api, fast_calls: list[str]) -> None:
    body = {"query": [1.0, 0.0], "filter": {"must": [{"key": "n"}]}}  # also a bad filter
    code, answer = api.post("/collections/nothing/points/query", body)
    assert code == 404
    assert "nothing" in answer["status"]["error"]
    assert fast_calls == ["nothing"]


def test_a_body_over_the_limit_is_refused_413(tmp_path: Path) -> None:
    with make_client(tmp_path, max_request_bytes=4096) as client:
        api = Api(client)
        create_items(api)
        body = {"query": [1.0, 0.0, 0.0, 0.0], "limit": 3, "with_payload": ["x" * 5000]}
        response = client.post(QUERY, json=body, headers={"transfer-encoding": "chunked"})
        assert response.status_code == 413
        assert api.result("POST", QUERY, {"query": [1.0, 0.0, 0.0, 0.0], "limit": 1})["points"]


def test_a_plain_grouped_query_is_answered_by_the_lean_path_as_the_full_route_answers(
    api: Api, collection: str, fast_calls: list[str]
) -> None:
    grouped = {"query": [1.0, 0.5, 0.0, 0.0], "group_by": "tags", "group_size": 2}
    full = grouped | {"lookup_from": None}  # a key the lean path leaves to the full route
    answer = api.result("POST", QUERY + "/groups", grouped)
    assert answer == api.result("POST", QUERY + "/groups", full)
    assert [len(group["hits"]) for group in answer["groups"]] == [2, 2, 2]
    assert fast_calls == ["items"]


def test_a_plain_grouped_search_is_answered_by_the_lean_path_as_the_full_route_answers(
    api: Api, collection: str, fast_calls: list[str]
) -> None:
    grouped = {"vector": [1, 0.5, 0, 0], "group_by": "city", "group_size": 3, "limit": 2}
    full = grouped | {"shard_key": None}
    answer = api.result("POST", SEARCH + "/groups", grouped | {"with_payload": True})
    assert answer == api.result("POST", SEARCH + "/groups", full | {"with_payload": True})
    assert [group["id"] for group in answer["groups"]] == ["London", "Berlin"]
    assert fast_calls == ["items"]


@pytest.mark.parametrize(
    "extra",
    [
        {"group_size": 0},
        {"group_by": ""},
        {"limit": None},
        {"offset": 1},
        {"with_lookup": "items"},
        {"group_size": True},
    ],
)
def test_grouped_bodies_the_lean_path_cannot_vouch_for_take_the_full_route(
    api: Api, collection: str, fast_calls: list[str], extra: dict[str, Any]
) -> None:
    body = {"query": [1.0, 0.0, 0.0, 0.0], "group_by": "city"} | extra
    api.post(QUERY + "/groups", body)
    assert fast_calls == []


def test_a_grouped_search_without_its_required_fields_is_refused_by_the_full_route(
    api: Api, collection: str, fast_calls: list[str]
) -> None:
    code, answer = api.post(SEARCH + "/groups", {"vector": [1, 0, 0, 0], "group_by": "city"})
    assert code == 400 and "group_size" in answer["status"]["error"]
    assert fast_calls == []


def test_a_grouped_query_over_the_limit_gets_the_full_routes_error(
    api: Api, collection: str
) -> None:
    body = {"query": [1.0, 0.0, 0.0, 0.0], "group_by": "city", "group_size": 10**9}
    code, fast = api.post(QUERY + "/groups", body)
    full = api.post(QUERY + "/groups", body | {"lookup_from": None})[1]
    assert code == 400
    assert fast["status"] == full["status"]


BERLIN = {"key": "city", "match": {"value": "Berlin"}}
BATCH_ITEMS = [
    {"query": [1.0, 0.5, 0.0, 0.0], "limit": 3, "with_payload": True},
    {"query": [0.0, 1.0, 0.0, 0.0], "limit": 2, "filter": {"must": [BERLIN]}},
    {"query": [1.0, 0.0, 0.0, 1.0], "offset": 2, "score_threshold": 1.5, "params": {"hnsw_ef": 8}},
]  # fmt: skip


def test_a_plain_query_batch_is_answered_by_the_lean_path_as_the_full_route_answers(
    api: Api, collection: str, fast_calls: list[str]
) -> None:
    plain = {"searches": BATCH_ITEMS}
    # one item with a key the lean path leaves to the full route sends the whole batch there
    full = {"searches": [*BATCH_ITEMS[:2], BATCH_ITEMS[2] | {"lookup_from": None}]}
    answer = api.result("POST", QUERY + "/batch", plain)
    assert fast_calls == ["items"]
    assert answer == api.result("POST", QUERY + "/batch", full)
    assert fast_calls == ["items"]
    assert [len(one["points"]) for one in answer] == [3, 2, len(answer[2]["points"])]
    alone = [api.result("POST", QUERY, item) for item in BATCH_ITEMS]  # each by itself
    assert answer == alone


def test_a_plain_search_batch_is_answered_by_the_lean_path_as_the_full_route_answers(
    api: Api, collection: str, fast_calls: list[str]
) -> None:
    items = [{"vector": [1, 0.5, 0, 0], "limit": 4}, {"vector": [0, 1, 0, 0], "limit": 1}]
    answer = api.result("POST", SEARCH + "/batch", {"searches": items})
    assert fast_calls == ["items"]
    full = {"searches": [items[0], items[1] | {"top": 1}]}  # `top`: the full route's alias
    assert answer == api.result("POST", SEARCH + "/batch", full)
    assert [len(hits) for hits in answer] == [4, 1]


ALIKE = {"limit": 2, "filter": {"must": [BERLIN]}, "params": {"hnsw_ef": 8}, "with_payload": True}
VECTORS = [[1.0, 0.5, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.2, 0.1, 0.9, 0.0], [1, 0, 0, 1]]


@pytest.mark.parametrize(("route", "key"), [(QUERY, "query"), (SEARCH, "vector")])
def test_a_batch_alike_but_for_its_vectors_is_answered_as_each_item_alone(
    api: Api, collection: str, fast_calls: list[str], route: str, key: str
) -> None:
    """Parsed once and copied per vector (``Alike``): the answers are each item's own."""
    items = [ALIKE | {key: vector} for vector in VECTORS]
    answer = api.result("POST", route + "/batch", {"searches": items})
    assert fast_calls == ["items"]
    full = api.result("POST", route + "/batch", {"searches": items, "shard_key": None})
    alone = [api.result("POST", route, item) for item in items]
    body = {"searches": [ALIKE | {key: vector} for vector in VECTORS]}  # shape() edits it
    assert isinstance(LEAN[route.rsplit("/", 1)[1] + "/batch"].shape(body), Alike)
    points = answer if route == SEARCH else [one["points"] for one in answer]
    assert answer == full
    assert points == [a if route == SEARCH else a["points"] for a in alone]
    assert len({tuple(p["id"] for p in hits) for hits in points}) > 1  # not one answer 4x


@pytest.mark.parametrize(("route", "key"), [(QUERY, "query"), (SEARCH, "vector")])
def test_a_bare_alike_batch_is_rendered_in_one_pass_from_its_hit_columns(
    api: Api, collection: str, monkeypatch: pytest.MonkeyPatch, route: str, key: str
) -> None:
    """No payload, no vector: the engine answers pages of one batch's columns
    (``HitPage``) and the renderer writes every hit in one pass, as each item alone."""
    passes: list[int] = []
    column_points = render._column_points

    def counted(columns: HitColumns, start: int, stop: int) -> Any:
        passes.append(stop - start)
        return column_points(columns, start, stop)

    monkeypatch.setattr(render, "_column_points", counted)
    items = [{"limit": 3, key: vector} for vector in VECTORS]
    answer = api.result("POST", route + "/batch", {"searches": items})
    assert passes == [3 * len(VECTORS)]
    alone = [api.result("POST", route, item) for item in items]
    assert answer == alone
    assert passes == [3 * len(VECTORS)] + [3] * len(VECTORS)  # a single query: a batch of one


def test_items_alike_in_python_but_not_in_json_are_each_answered_as_alone(
    api: Api, collection: str, fast_calls: list[str]
) -> None:
    """``1 == True`` in Python, but a filter matching ``1`` is not one matching ``true``:
    such items are parsed one by one."""
    points = [{"id": 101, "vector": [0.9, 0.1, 0.0, 0.0], "payload": {"flag": 1}},
              {"id": 102, "vector": [0.9, 0.0, 0.1, 0.0], "payload": {"flag": True}}]  # fmt: skip
    api.result("PUT", f"/collections/{collection}/points?wait=true", {"points": points})
    items = [
        {"query": [1.0, 0.0, 0.0, 0.0], "limit": 5,
         "filter": {"must": [{"key": "flag", "match": {"value": value}}]}}
        for value in (1, True)
    ]  # fmt: skip
    answer = api.result("POST", QUERY + "/batch", {"searches": items})
    assert fast_calls == ["items"]
    assert [[p["id"] for p in one["points"]] for one in answer] == [[101], [102]]
    assert answer == [api.result("POST", QUERY, item) for item in items]


@pytest.mark.parametrize("second", [{"query": "not a vector"}, {"query": 3}])  # 3: a point id
def test_items_alike_but_for_a_vector_of_another_kind_take_the_full_route(
    api: Api, collection: str, fast_calls: list[str], second: dict[str, Any]
) -> None:
    first = {"query": [1.0, 0.0, 0.0, 0.0]}
    lean = api.post(QUERY + "/batch", {"searches": [first, second]})
    full = api.post(QUERY + "/batch", {"searches": [first, second], "shard_key": None})
    assert fast_calls == []
    assert lean[0] == full[0]
    assert lean[1].get("result") == full[1].get("result")
    assert lean[1]["status"] == full[1]["status"]


def test_an_alike_search_batch_with_a_word_in_a_vector_gets_the_full_routes_error(
    api: Api, collection: str, fast_calls: list[str]
) -> None:
    items = [{"vector": [1, 0, 0, 0], "limit": 1}, {"vector": [1, "x", 0, 0], "limit": 1}]
    lean = api.post(SEARCH + "/batch", {"searches": items})
    full = api.post(SEARCH + "/batch", {"searches": items, "shard_key": None})
    assert fast_calls == []
    assert lean[0] == full[0] and 400 <= lean[0] < 500
    assert lean[1]["status"] == full[1]["status"]


@pytest.mark.parametrize(
    "body",
    [
        {"searches": []},
        {"searches": [BATCH_ITEMS[0]], "shard_key": None},
        {"searches": [BATCH_ITEMS[0], "not an object"]},
        {"searches": {"query": [1.0, 0.0, 0.0, 0.0]}},
        {"searches": [BATCH_ITEMS[0], {"query": [1.0, 0.0, 0.0, 0.0], "limit": "2"}]},
    ],
)
def test_batch_bodies_the_lean_path_cannot_vouch_for_take_the_full_route(
    api: Api, collection: str, fast_calls: list[str], body: dict[str, Any]
) -> None:
    api.post(QUERY + "/batch", body)
    assert fast_calls == []


def test_a_batch_over_the_limit_gets_the_full_routes_error(tmp_path: Path) -> None:
    with make_client(tmp_path, max_search_batch=2) as client:
        api = Api(client)
        create_items(api)
        for route, item in (
            (QUERY, BATCH_ITEMS[0]),
            (SEARCH, {"vector": [1, 0, 0, 0], "limit": 1}),
        ):
            lean = api.post(route + "/batch", {"searches": [item] * 3})
            full = api.post(route + "/batch", {"searches": [item] * 3, "shard_key": None})
            assert lean[0] == full[0] == 400
            assert lean[1]["status"] == full[1]["status"]
            assert "limit of 2" in lean[1]["status"]["error"]
            assert len(api.result("POST", route + "/batch", {"searches": [item] * 2})) == 2


def test_the_direct_lane_answers_pipelined_queries_in_order_as_the_full_route(
    tmp_path: Path, asgi_paths: list[str]
) -> None:
    with items_over_the_lane(tmp_path) as connection:
        asgi_paths.clear()
        plain = {"query": [1.0, 0.5, 0.0, 0.0], "limit": 3, "with_payload": True}
        bad = {"query": [1.0, 0.5], "limit": 3}
        bodies = [plain, plain | {"lookup_from": None}, bad, bad | {"lookup_from": None}]
        answers = connection.send(*(request("POST", QUERY, body) for body in bodies))
        assert [a.status for a in answers] == [200, 200, 400, 400]
        assert answers[0].body["result"] == answers[1].body["result"]
        assert answers[2].body["status"] == answers[3].body["status"]
        assert asgi_paths == [QUERY, QUERY]  # only the bodies with an extra key
        again = connection.send(request("POST", QUERY, plain))  # kept alive
        assert again[0].body["result"] == answers[0].body["result"]
        closing = connection.send(request("POST", QUERY, plain, {"connection": "close"}))
        assert closing[0].headers[b"connection"] == b"close"
        assert connection.transport.closed


def test_the_direct_lane_answers_a_plain_batch_as_the_full_route(
    tmp_path: Path, asgi_paths: list[str]
) -> None:
    with items_over_the_lane(tmp_path) as connection:
        asgi_paths.clear()
        full = {"searches": [*BATCH_ITEMS[:2], BATCH_ITEMS[2] | {"lookup_from": None}]}
        bodies = [{"searches": BATCH_ITEMS}, full]
        answers = connection.send(*(request("POST", QUERY + "/batch", body) for body in bodies))
        assert [a.status for a in answers] == [200, 200]
        assert answers[0].body["result"] == answers[1].body["result"]
        assert len(answers[0].body["result"]) == 3
        assert asgi_paths == [QUERY + "/batch"]  # only the body with an extra key


def test_the_lane_takes_only_what_the_middleware_passes_on_and_refuses_the_same(
    tmp_path: Path, asgi_paths: list[str]
) -> None:
    """``QuiverMiddleware.admits`` and its ASGI path share one verdict (``_verdict``): a
    request refused there (401, 415, 413) reaches ASGI and is refused as before; one it
    passes on with a declared length is answered by the lane."""
    key = {"api-key": "admin-key"}
    with items_over_the_lane(tmp_path, key, api_key="admin-key", max_request_bytes=4096) as (
        connection
    ):
        asgi_paths.clear()
        plain = {"query": [1.0, 0.5, 0.0, 0.0], "limit": 3}
        big = plain | {"with_payload": ["x" * 5000]}
        text = {"content-type": "text/plain"}
        sent = [
            request("POST", QUERY, plain, key),
            request("POST", QUERY, plain),
            request("POST", QUERY, plain, key | text),
            request("POST", QUERY, big, key),
        ]
        answers = connection.send(*sent)
        assert [a.status for a in answers] == [200, 401, 415, 413]
        assert answers[0].body["result"]["points"]
        assert asgi_paths == [QUERY, QUERY, QUERY]  # the three refused ones


def test_the_direct_lane_can_be_switched_off(tmp_path: Path, asgi_paths: list[str]) -> None:
    with wire(tmp_path, direct_lane=False) as served:
        api = Api(Client(served.connect()))  # type: ignore[arg-type]
        create_items(api)
        assert api.result("POST", QUERY, {"query": [1.0, 0.0, 0.0, 0.0], "limit": 2})["points"]
        assert asgi_paths[-1] == QUERY


def test_direct_lane_queries_beyond_the_cpu_limiter_wait_for_a_token(
    tmp_path: Path, asgi_paths: list[str]
) -> None:
    with wire(tmp_path, search_threads=1) as served:
        create_items(Api(Client(served.connect())))  # type: ignore[arg-type]
        asgi_paths.clear()
        connections = [served.connect() for _ in range(3)]
        body = request("POST", QUERY, {"query": [1.0, 0.5, 0.0, 0.0], "limit": 3})
        for connection in connections:  # all three arrive before any is answered
            served.loop.call_soon(connection.protocol.data_received, body)
        served.run_until(
            lambda: all(answers(c.transport.data) for c in connections),
            [c.transport for c in connections],
        )
        results = [answers(c.transport.data)[0].body["result"] for c in connections]
        assert results[0]["points"] and results == [results[0]] * 3
        assert asgi_paths == []


def test_a_query_runs_on_the_event_loop_until_one_is_slow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(direct_lane, "INLINE_SLOW_S", 60.0)  # the set-up's writes are not slow
    handed: list[Any] = []
    submit = HandOff.submit
    monkeypatch.setattr(HandOff, "submit", lambda *args: (handed.append(args), submit(*args)))
    with wire(tmp_path) as served:
        connection = served.connect()
        create_items(Api(Client(connection)))  # type: ignore[arg-type]
        monkeypatch.setattr(direct_lane, "INLINE_SLOW_S", -1.0)  # every inline search is slow
        handed.clear()
        body = request("POST", QUERY, {"query": [1.0, 0.5, 0.0, 0.0], "limit": 3})
        first = connection.send(body)  # on the loop: nothing else was running
        assert handed == []
        second = connection.send(body)  # the first was "slow": a worker thread now
        assert len(handed) == 1 and first[0].body["result"] == second[0].body["result"]


def test_lean_writes_and_filtered_queries_run_on_the_loop_while_other_work_holds_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every lean request runs on the event loop, whatever else is in flight: a loop
    that handed work to threads whenever another request held a CPU token served a
    mixed stream of writes and queries at 0.5-0.7x the rate (session 41)."""
    monkeypatch.setattr(direct_lane, "INLINE_SLOW_S", 60.0)  # a busy machine trips no guard
    handed: list[Any] = []
    submit = HandOff.submit
    monkeypatch.setattr(HandOff, "submit", lambda *args: (handed.append(args), submit(*args)))
    apps: list[Any] = []
    with wire(tmp_path, serve=lambda app: apps.append(app) or app, search_threads=2) as served:
        connection = served.connect()
        api = Api(Client(connection))  # type: ignore[arg-type]
        create_items(api)
        limiter = apps[0].state.cpu_limiter
        elsewhere = object()  # another request's work, on a thread
        limiter.acquire_on_behalf_of_nowait(elsewhere)
        handed.clear()
        upsert = {"points": [{"id": 40, "vector": [4.0, 1.0, 0.0, -1.0], "payload": {"n": 40}}]}
        filtered = {"query": [1.0, 0.5, 0.0, 0.0], "limit": 2,
                    "filter": {"must": [{"key": "n", "range": {"gte": 40}}]}}  # fmt: skip
        written, found = connection.send(
            request("PUT", "/collections/items/points?wait=true", upsert),
            request("POST", QUERY, filtered),
        )
        assert handed == []
        assert written.body["result"]["status"] == "completed"
        assert [p["id"] for p in found.body["result"]["points"]] == [40]
        limiter.release_on_behalf_of(elsewhere)


def test_behind_the_owner_workers_gate_the_lane_answers_as_the_full_route_or_is_off(
    tmp_path: Path, asgi_paths: list[str]
) -> None:
    generation = Generation()
    plain = {"query": [1.0, 0.5, 0.0, 0.0], "limit": 3, "with_payload": True}
    bodies = [request("POST", QUERY, body) for body in (plain, plain | {"lookup_from": None})]
    for lane in (True, False):
        serve = partial(owner_app, generation=generation)
        with wire(tmp_path / str(lane), serve=serve, direct_lane=lane) as served:
            connection = served.connect()
            create_items(Api(Client(connection)))  # type: ignore[arg-type]
            asgi_paths.clear()
            fast, full = connection.send(*bodies)
            assert fast.body["result"] == full.body["result"] and fast.body["result"]["points"]
            for answer in (fast, full):
                assert answer.headers[b"x-quiver-worker"] == b"0"
                assert answer.headers[b"x-quiver-generation"] == str(generation.read()).encode()
            assert asgi_paths == ([QUERY] if lane else [QUERY, QUERY])
