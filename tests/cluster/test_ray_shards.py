"""Sharded collections answer exactly as a single-node collection holding the same
points, with the shards in this process and as actors of a local Ray; a killed shard
actor comes back from its folder without losing an acknowledged point. The Ray tests
carry the ``cluster`` marker (run them alone with ``pytest -m cluster``) and are
skipped when Ray (the ``cluster`` extra) is not installed."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.metrics import Distance
from server.catalog import open_sharded_collection
from server.cluster.shards import LocalShardGroup, ShardedCollection, on_collection, shard_of
from server.engine.collection import Collection, PointsSelection, SearchSpec
from server.engine.config import CollectionConfig, VectorParams
from server.engine.examples import ContextPair, Discover, Recommend
from server.engine.filters import parse_filter
from server.engine.groups import GroupRequest, run_groups
from server.engine.payload import PayloadSelector, parse_json_path
from server.engine.point_ids import PointId
from server.engine.query import run_queries
from server.engine.requests import Query
from server.engine.results import ScoredPoint
from server.errors import InvalidVector, PointNotFound
from tests.helpers.sharded import COLORS, DIM, FILTERS, SHARDS

SHARD_CPUS = 0.25
"""Two groups of three shards fit the 2-CPU test node."""
ALL = PayloadSelector.of("all")
NONE = PayloadSelector.of("none")


def make_config(shards: int) -> CollectionConfig:
    return CollectionConfig(
        vectors={
            "dot": VectorParams(size=DIM, distance=Distance.DOT),
            "cos": VectorParams(size=DIM, distance=Distance.COSINE),
        },
        named_vectors=True,
        shard_number=shards,
    )


def make_points(count: int, seed: int) -> tuple[list[PointId], list[Any], list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    ids: list[PointId] = list(range(count - 20))
    ids += [str(uuid.UUID(int=int(rng.integers(1, 2**62)))) for _ in range(20)]
    vectors = [
        {"dot": rng.normal(size=DIM).tolist(), "cos": rng.normal(size=DIM).tolist()} for _ in ids
    ]
    payloads = [{"color": COLORS[i % 3], "n": i % 50} for i in range(len(ids))]
    return ids, vectors, payloads


def with_keyword_index(config: CollectionConfig) -> CollectionConfig:
    return config.with_updates(payload_schema={"color": {"type": "keyword"}})


def ray_group(root: Path, name: str, config: CollectionConfig) -> Any:
    from server.cluster.ray_shards import RayShardGroup

    return RayShardGroup(root, name, config, cpus=SHARD_CPUS)


@pytest.fixture(
    scope="module", params=["in-process", pytest.param("ray", marks=pytest.mark.cluster)]
)
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Collection, ShardedCollection]]:
    """The same 300 points in a single-node collection and in a 3-shard one."""
    root = tmp_path_factory.mktemp("pair")
    (root / "single").mkdir()
    single = Collection.create("c", root / "single", make_config(1))
    config = make_config(SHARDS)
    if request.param == "ray":
        request.getfixturevalue("local_ray")
        sharded = ShardedCollection("c", config, ray_group(root / "cluster", "c", config))
    else:
        sharded = open_sharded_collection(root / "cluster", "c", config, None)
        assert isinstance(sharded.group, LocalShardGroup)
    ids, vectors, payloads = make_points(300, seed=7)
    for start in range(0, len(ids), 100):
        batch = slice(start, start + 100)
        single.upsert(ids[batch], vectors[batch], payloads[batch])
        sharded.upsert(ids[batch], vectors[batch], payloads[batch])
    single.update_config(with_keyword_index(single.config))
    sharded.update_config(with_keyword_index(sharded.config))
    yield single, sharded
    sharded.close()
    single.close()


def test_shard_of_is_stable_and_spreads_strided_ids() -> None:
    assert [shard_of(i, 3) for i in (0, 1, 2)] == [shard_of(i, 3) for i in (0, 1, 2)]
    counts = np.bincount([shard_of(i * 3, 3) for i in range(3000)], minlength=3)
    assert counts.min() > 900


def make_specs(single: Collection) -> list[SearchSpec]:
    rng = np.random.default_rng(11)
    specs = []
    for using in ("dot", "cos"):
        queries = single.prepare_queries(using, rng.normal(size=(3, DIM)).tolist())
        for query in queries:
            for raw in FILTERS:
                for offset in (0, 7):
                    specs.append(
                        SearchSpec(
                            using=using,
                            vector=np.asarray(query),
                            limit=10,
                            offset=offset,
                            filter=parse_filter(raw),
                            with_payload=ALL,
                        )
                    )
    return specs


def assert_same_hits(expected: list[list[ScoredPoint]], actual: list[list[ScoredPoint]]) -> None:
    assert sum(len(hits) for hits in expected) > len(expected) * 5
    assert [[h.id for h in hits] for hits in expected] == [[h.id for h in hits] for hits in actual]
    for want, got in zip(expected, actual, strict=True):
        assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-5)
        assert [h.payload for h in got] == [h.payload for h in want]


def scroll_all(collection: Collection | ShardedCollection, raw: Any) -> list[PointId]:
    seen: list[PointId] = []
    offset: PointId | None = None
    while True:
        page = collection.scroll(parse_filter(raw), 37, offset, NONE, False)
        seen += [record.id for record in page.records]
        offset = page.next_offset
        if offset is None:
            return seen


def test_points_are_spread_over_every_shard(pair: tuple[Collection, ShardedCollection]) -> None:
    _single, sharded = pair
    counts = sharded.group.call(dict.fromkeys(range(SHARDS), on_collection(Collection.count, None)))
    assert sum(counts.values()) == 300
    assert all(count > 50 for count in counts.values())


def test_search_matches_single_node(pair: tuple[Collection, ShardedCollection]) -> None:
    single, sharded = pair
    specs = make_specs(single)
    assert_same_hits(single.search(specs), sharded.search(specs))


def test_custom_score_searches_match_single_node(
    pair: tuple[Collection, ShardedCollection],
) -> None:
    """Recommend and discover: example ids read in one call per shard, and the specs
    carry their custom score to every shard (packed for Ray too) and merge by it."""
    single, sharded = pair
    rng = np.random.default_rng(3)
    queries = []
    for strategy in ("best_score", "sum_scores"):
        ids = rng.choice(280, size=5, replace=False).tolist()
        examples = Recommend(tuple(ids[:3]), tuple(ids[3:]), strategy)
        queries.append(Query(examples=examples, using="cos", limit=10))
    pair_of = ContextPair(int(rng.integers(280)), int(rng.integers(280)))
    queries.append(Query(examples=Discover(7, (pair_of,)), using="dot", limit=10, offset=3))
    names = [0, 150, 279]
    assert [v.tolist() for v in single.query_vectors_of(names, "cos")] == [
        v.tolist() for v in sharded.query_vectors_of(names, "cos")
    ]
    expected = [answer.points for answer in run_queries(single, queries)]
    assert_same_hits(expected, [answer.points for answer in run_queries(sharded, queries)])


def test_count_scroll_and_retrieve_match_single_node(
    pair: tuple[Collection, ShardedCollection],
) -> None:
    single, sharded = pair
    for raw in FILTERS:
        assert single.count(parse_filter(raw)) == sharded.count(parse_filter(raw))
        assert scroll_all(single, raw) == scroll_all(sharded, raw)
    ids: list[PointId] = [5, 299_999, 17, 3, 17, 250]
    assert single.retrieve(ids, ALL, True) == sharded.retrieve(ids, ALL, True)


def test_groups_payload_values_and_explain_match_single_node(
    pair: tuple[Collection, ShardedCollection],
) -> None:
    """Grouping reads each candidate's key from the shard owning it, and ``explain``
    brings back every shard's plans (``shard``-tagged)."""
    single, sharded = pair
    ids: list[PointId] = [5, 299_999, 17, 3, 250]
    path = parse_json_path("n")
    assert single.payload_values(ids, path) == sharded.payload_values(ids, path)
    assert single.payload_values(ids, path) == [[5], [], [17], [3], [0]]  # 299_999: none
    query = Query(vector=[0.5] * DIM, using="cos", explain=True)
    request = GroupRequest(query=query, group_by="n", group_size=3, limit=4)
    want, got = run_groups(single, request), run_groups(sharded, request)
    assert [(g.id, [h.id for h in g.hits]) for g in got.groups] == [
        (g.id, [h.id for h in g.hits]) for g in want.groups
    ]
    assert [len(g.hits) for g in want.groups] == [3, 3, 3, 3]
    assert got.explain is not None and [step["stage"] for step in got.explain] == [
        "find groups",
        "fill groups",
    ]
    shards = {plan["shard"] for step in got.explain for plan in step["plans"]}
    assert shards == set(range(SHARDS))


def test_query_by_point_id_and_bad_input_match_single_node(
    pair: tuple[Collection, ShardedCollection],
) -> None:
    single, sharded = pair
    for point_id in (0, 150, make_points(300, seed=7)[0][-1]):
        expected = single.query_vector_of(point_id, "cos")
        assert np.array_equal(expected, sharded.query_vector_of(point_id, "cos"))
    with pytest.raises(PointNotFound) as raised:
        sharded.query_vector_of(299_999, "cos")
    assert type(raised.value) is PointNotFound
    with pytest.raises(InvalidVector):
        sharded.upsert([1], [{"cos": [1.0] * (DIM + 1)}], [None])
    assert (
        single.prepare_query([1.0] * DIM, "dot")[0] == sharded.prepare_query([1.0] * DIM, "dot")[0]
    )


def test_deletes_and_payload_writes_match_single_node(
    pair: tuple[Collection, ShardedCollection],
) -> None:
    single, sharded = pair
    by_ids = PointsSelection(ids=[1, 2, 3, 100, 101])
    by_filter = PointsSelection(filter=parse_filter(FILTERS[2]))
    tagged = PointsSelection(filter=parse_filter(FILTERS[1]))
    for collection in (single, sharded):
        collection.delete(by_ids)
        collection.delete(by_filter)
        collection.set_payload({"tag": "x"}, tagged, None)
    assert single.count(None) == sharded.count(None)
    tag = parse_filter({"must": [{"key": "tag", "match": {"value": "x"}}]})
    assert single.count(tag) == sharded.count(tag) > 0
    assert scroll_all(single, None) == scroll_all(sharded, None)
    specs = make_specs(single)
    assert_same_hits(single.search(specs), sharded.search(specs))


@pytest.mark.cluster
def test_killed_shard_restarts_without_losing_acknowledged_points(
    local_ray: Any, tmp_path: Path
) -> None:
    ray = local_ray
    config = make_config(SHARDS)
    group = ray_group(tmp_path, "k", config)
    sharded = ShardedCollection("k", config, group)
    ids, vectors, payloads = make_points(420, seed=3)
    acknowledged: list[PointId] = []
    three_batches, killed = threading.Event(), threading.Event()

    def write() -> None:
        for start in range(0, len(ids), 30):
            batch = slice(start, start + 30)
            sharded.upsert(ids[batch], vectors[batch], payloads[batch])
            acknowledged.extend(ids[batch])
            if len(acknowledged) == 90:
                three_batches.set()
                killed.wait(timeout=60)

    victim = group.actors[1]
    pid_before = ray.get(victim.pid.remote())
    writer = threading.Thread(target=write)
    writer.start()
    assert three_batches.wait(timeout=60)
    ray.kill(victim, no_restart=False)
    killed.set()
    writer.join(timeout=120)
    try:
        assert not writer.is_alive()
        assert ray.get(victim.pid.remote()) != pid_before
        assert acknowledged == ids
        assert sharded.count(None) == len(ids)
        found = sharded.retrieve(ids, ALL, False)
        assert [record.id for record in found] == ids
        assert [record.payload for record in found] == payloads
    finally:
        sharded.close()


@pytest.mark.cluster
def test_build_jobs_run_in_shards_and_are_listed_with_their_shard(
    local_ray: Any, tmp_path: Path
) -> None:
    config = make_config(SHARDS).with_updates(optimizers_config={"indexing_threshold": 40})
    group = ray_group(tmp_path, "j", config)
    sharded = ShardedCollection("j", config, group)
    try:
        ids, vectors, payloads = make_points(300, seed=5)
        sharded.upsert(ids, vectors, payloads)
        assert group.wait_idle(timeout=60)
        jobs = sharded.jobs()
        assert {job["shard"] for job in jobs} == set(range(SHARDS))
        assert {job["state"] for job in jobs} == {"done"}
        assert sharded.count(None) == len(ids)
    finally:
        sharded.close()


def test_a_local_ray_refuses_to_start_off_loopback() -> None:
    """Ray imported before ``connect("local")`` would resolve 127.0.0.1 to the machine's
    outward address: connect refuses instead of starting it there."""
    pytest.importorskip("ray", reason="cluster mode needs Ray: pip install '.[cluster]'")
    code = (
        "import ray\n"
        "from server.cluster.ray_shards import connect\n"
        "try:\n    connect('local', 1)\nexcept RuntimeError as e:\n    print('refused:', e)\n"
        "else:\n    print('started on', ray.nodes()[0]['NodeManagerAddress'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert "refused: Ray was imported before a local Ray was started" in result.stdout


def test_joining_a_cluster_retries_a_refused_ray_client_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Ray Client proxy may fail to start its per-client server right after the
    head comes up: the join is tried again, and gives up after ``CONNECT_ATTEMPTS``."""
    from server.cluster import ray_shards

    monkeypatch.setattr(ray_shards, "CONNECT_RETRY_S", 0.0)

    class FlakyRay:
        def __init__(self, failures: int) -> None:
            self.failures, self.inits, self.shutdowns = failures, 0, 0

        def init(self, **_: Any) -> None:
            self.inits += 1
            if self.inits <= self.failures:
                raise ConnectionAbortedError("Starting Ray client server failed")

        def shutdown(self) -> None:
            self.shutdowns += 1

    flaky = FlakyRay(failures=1)
    ray_shards._join(flaky, "ray://127.0.0.1:10001")
    assert (flaky.inits, flaky.shutdowns) == (2, 1)
    hopeless = FlakyRay(failures=99)
    with pytest.raises(ConnectionAbortedError):
        ray_shards._join(hopeless, "ray://127.0.0.1:10001")
    assert hopeless.inits == ray_shards.CONNECT_ATTEMPTS
