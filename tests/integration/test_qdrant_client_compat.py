"""The official ``qdrant-client`` against a real Quiver process, checked against local mode.

Every operation runs twice: through ``QdrantClient(url=...)`` (REST) against the
server, and through ``QdrantClient(":memory:")``, qdrant-client's in-process
implementation of Qdrant's semantics. The answers must be equal: ids and
payloads exactly, scores and vectors within a float tolerance. The data are
seeded and continuous, so no two scores tie and the order is well defined.
"""

from __future__ import annotations

import importlib.metadata
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.common.version_check import get_server_version, is_compatible

pytestmark = pytest.mark.integration

T = TypeVar("T")

SEED = 20_240_611
DIM = 8
N_POINTS = 300
N_INT_IDS = 200
REL_TOL = 1e-4
ABS_TOL = 1e-5
MAX_PAGES = 500

COLORS = ("red", "green", "blue", "yellow")
TAGS = ("x", "y", "z", "w")
SKUS = ("s1", "s2", "s3")
NAMED_VECTORS: dict[str, tuple[int, models.Distance]] = {
    "cos": (8, models.Distance.COSINE),
    "dot": (6, models.Distance.DOT),
    "euc": (5, models.Distance.EUCLID),
    "man": (4, models.Distance.MANHATTAN),
}

PointId = int | str


# -- seeded data --------------------------------------------------------------


def _ids(rng: np.random.Generator) -> list[PointId]:
    """Integers first, then UUIDs (canonical lowercase form, as the server returns them)."""
    int_ids: list[PointId] = [int(i) for i in rng.choice(10_000, N_INT_IDS, replace=False)]
    uuids: list[PointId] = [
        str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(N_POINTS - N_INT_IDS)
    ]
    return int_ids + uuids


def _payload(index: int, rng: np.random.Generator) -> dict[str, Any]:
    """Ints, floats, keywords, arrays, nested objects, with some keys missing or null."""
    payload: dict[str, Any] = {
        "i": index,
        "word": "".join(rng.choice(list("abcdefgh"), 6)),
        "flag": bool(rng.random() < 0.5),
        "tags": [str(t) for t in rng.choice(TAGS, int(rng.integers(0, 4)), replace=False)],
        "nums": [int(x) for x in rng.integers(0, 100, int(rng.integers(0, 4)))],
    }
    if rng.random() < 0.9:
        payload["n"] = int(rng.integers(0, 50))
    roll = rng.random()
    if roll < 0.1:
        payload["f"] = None
    elif roll < 0.9:
        payload["f"] = round(float(rng.random()), 6)
    if rng.random() < 0.85:
        payload["color"] = str(rng.choice(COLORS))
    if rng.random() < 0.8:
        payload["meta"] = {
            "a": {"b": int(rng.integers(0, 5))},
            "kind": str(rng.choice(["k1", "k2"])),
        }
    maybe = int(rng.integers(0, 5))  # missing / null / [] / [value] / value
    if maybe == 1:
        payload["maybe"] = None
    elif maybe == 2:
        payload["maybe"] = []
    elif maybe == 3:
        payload["maybe"] = [int(rng.integers(0, 3))]
    elif maybe == 4:
        payload["maybe"] = "v"
    payload["items"] = [
        {"sku": str(rng.choice(SKUS)), "price": round(float(rng.random()), 4)}
        for _ in range(int(rng.integers(0, 3)))
    ]
    return payload


def _vector(rng: np.random.Generator, dim: int) -> list[float]:
    """Values exactly representable as float32, so both sides start from the same numbers."""
    return [float(x) for x in rng.normal(size=dim).astype(np.float32)]


@dataclass(frozen=True)
class Dataset:
    ids: list[PointId]
    vectors: list[list[float]]
    named: list[dict[str, list[float]]]
    payloads: list[dict[str, Any]]
    queries: list[list[float]]

    def points(self) -> list[models.PointStruct]:
        return [
            models.PointStruct(id=i, vector=v, payload=p)
            for i, v, p in zip(self.ids, self.vectors, self.payloads, strict=True)
        ]

    def named_points(self) -> list[models.PointStruct]:
        return [
            models.PointStruct(id=i, vector=dict(v), payload=p)
            for i, v, p in zip(self.ids, self.named, self.payloads, strict=True)
        ]


def _make_dataset(seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    ids = _ids(rng)
    vectors = [_vector(rng, DIM) for _ in ids]
    named: list[dict[str, list[float]]] = []
    for index in range(len(ids)):
        vecs = {name: _vector(rng, dim) for name, (dim, _) in NAMED_VECTORS.items()}
        if index % 7 == 3:  # a few points lack one named vector
            del vecs["man"]
        named.append(vecs)
    payloads = [_payload(index, rng) for index in range(len(ids))]
    queries = [_vector(rng, DIM) for _ in range(4)]
    return Dataset(ids, vectors, named, payloads, queries)


DATA = _make_dataset(SEED)
SOME_INT_IDS = DATA.ids[:N_INT_IDS:23]
SOME_UUIDS = DATA.ids[N_INT_IDS::17]


# -- filters (every one is checked by query, count and scroll) ---------------


def _match(key: str, value: Any) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def _range(key: str, **bounds: float) -> models.FieldCondition:
    return models.FieldCondition(key=key, range=models.Range(**bounds))


FILTERS: dict[str, models.Filter] = {
    "match_keyword": models.Filter(must=[_match("color", "red")]),
    "match_int": models.Filter(must=[_match("n", 7)]),
    "match_bool": models.Filter(must=[_match("flag", True)]),
    "should": models.Filter(should=[_match("color", "red"), _match("color", "blue")]),
    "must_not": models.Filter(must_not=[_match("color", "red")]),
    "match_any": models.Filter(
        must=[models.FieldCondition(key="tags", match=models.MatchAny(any=["x", "y"]))]
    ),
    "match_any_int": models.Filter(
        must=[models.FieldCondition(key="n", match=models.MatchAny(any=[1, 2, 3, 40]))]
    ),
    "match_except": models.Filter(
        must=[
            models.FieldCondition(
                key="color", match=models.MatchExcept(**{"except": ["red", "green"]})
            )
        ]
    ),
    "range_int": models.Filter(must=[_range("n", gte=10, lt=30)]),
    "range_float": models.Filter(must=[_range("f", gt=0.25, lte=0.75)]),
    "range_array": models.Filter(must=[_range("nums", gte=90)]),
    "is_empty": models.Filter(
        must=[models.IsEmptyCondition(is_empty=models.PayloadField(key="maybe"))]
    ),
    "is_null": models.Filter(
        must=[models.IsNullCondition(is_null=models.PayloadField(key="maybe"))]
    ),
    "not_is_empty": models.Filter(
        must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key="maybe"))]
    ),
    "has_id": models.Filter(must=[models.HasIdCondition(has_id=SOME_INT_IDS + SOME_UUIDS)]),
    "must_not_has_id": models.Filter(must_not=[models.HasIdCondition(has_id=SOME_INT_IDS)]),
    "nested_key": models.Filter(must=[_match("meta.a.b", 3)]),
    "nested_key_range": models.Filter(must=[_range("meta.a.b", lt=2)]),
    "nested_keyword": models.Filter(must=[_match("meta.kind", "k2")]),
    "array_contains": models.Filter(must=[_match("tags", "z")]),
    "array_of_objects": models.Filter(must=[_range("items[].price", gt=0.8)]),
    "nested_condition": models.Filter(
        must=[
            models.NestedCondition(
                nested=models.Nested(
                    key="items",
                    filter=models.Filter(must=[_match("sku", "s1"), _range("price", gt=0.5)]),
                )
            )
        ]
    ),
    "combined": models.Filter(
        must=[_range("n", gte=5)],
        should=[
            models.FieldCondition(key="tags", match=models.MatchAny(any=["x"])),
            _match("flag", True),
        ],
        must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key="maybe"))],
    ),
    "recursive": models.Filter(
        must=[
            models.Filter(should=[_match("color", "green"), _range("n", gt=40)]),
            models.Filter(must_not=[_match("meta.kind", "k1")]),
        ]
    ),
    "min_should": models.Filter(
        min_should=models.MinShould(
            conditions=[_match("color", "red"), _match("flag", True), _range("n", lt=20)],
            min_count=2,
        )
    ),
    "values_count": models.Filter(
        must=[models.FieldCondition(key="tags", values_count=models.ValuesCount(gte=2))]
    ),
    "matches_nothing": models.Filter(must=[_match("color", "purple")]),
    "empty_filter": models.Filter(),
    "match_text": models.Filter(
        must=[models.FieldCondition(key="word", match=models.MatchText(text="ab"))]
    ),
    "array_of_objects_any": models.Filter(
        must=[models.FieldCondition(key="items[].sku", match=models.MatchAny(any=["s2", "s3"]))]
    ),
    "int_inside_array": models.Filter(must=[_match("maybe", 1)]),
    "range_over_mixed_types": models.Filter(must=[_range("maybe", gte=1)]),
    "must_not_nested": models.Filter(
        must_not=[
            models.NestedCondition(
                nested=models.Nested(key="items", filter=models.Filter(must=[_match("sku", "s2")]))
            )
        ]
    ),
    "should_with_must_not_inside": models.Filter(
        should=[
            models.Filter(must_not=[_match("flag", True)]),
            models.HasIdCondition(has_id=SOME_UUIDS),
        ]
    ),
}


# -- comparison ---------------------------------------------------------------


def _close(actual: float, expected: float) -> bool:
    return abs(actual - expected) <= max(ABS_TOL, REL_TOL * abs(expected))


def _assert_vectors_equal(remote: Any, local: Any, where: str) -> None:
    if isinstance(local, dict):
        assert isinstance(remote, dict), f"{where}: expected named vectors, got {remote!r}"
        assert sorted(remote) == sorted(local), f"{where}: vector names differ"
        for name in local:
            _assert_vectors_equal(remote[name], local[name], f"{where}[{name}]")
        return
    if local is None:
        assert remote is None, f"{where}: expected no vector, got {remote!r}"
        return
    assert remote is not None, f"{where}: vector missing"
    np.testing.assert_allclose(remote, local, rtol=REL_TOL, atol=ABS_TOL, err_msg=where)


def assert_points_equal(remote: Sequence[Any], local: Sequence[Any], where: str = "") -> None:
    """Records or scored points: same ids in the same order, same payloads and vectors,
    scores within tolerance."""
    assert [p.id for p in remote] == [p.id for p in local], f"{where}: ids differ"
    for r, loc in zip(remote, local, strict=True):
        at = f"{where} id={loc.id}"
        assert r.payload == loc.payload, f"{at}: payload differs"
        _assert_vectors_equal(r.vector, loc.vector, at)
        local_score = getattr(loc, "score", None)
        if local_score is not None:
            assert _close(r.score, local_score), f"{at}: score {r.score} != {local_score}"


def _selected(ids: list[PointId]) -> models.PointIdsList:
    return models.PointIdsList(points=ids)


def _by_id(points: Sequence[Any]) -> list[Any]:
    return sorted(points, key=lambda p: (isinstance(p.id, str), str(p.id).zfill(40)))


# -- clients and collections ----------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """The server (``remote``) and qdrant-client's reference implementation (``local``)."""

    remote: QdrantClient
    local: QdrantClient

    def both(self, call: Callable[[QdrantClient], T]) -> tuple[T, T]:
        return call(self.remote), call(self.local)

    def run(self, call: Callable[[QdrantClient], Any]) -> None:
        for client in (self.remote, self.local):
            call(client)


def _remote_client(url: str) -> QdrantClient:
    return QdrantClient(url=url, prefer_grpc=False, timeout=30)


@pytest.fixture(scope="module")
def pair(module_server_url: str) -> Iterator[Pair]:
    remote = _remote_client(module_server_url)
    local = QdrantClient(":memory:")
    yield Pair(remote, local)
    remote.close()
    local.close()


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def _create_plain(pair: Pair, name: str, distance: models.Distance) -> None:
    pair.run(
        lambda c: c.create_collection(
            name, vectors_config=models.VectorParams(size=DIM, distance=distance)
        )
    )


def _create_named(pair: Pair, name: str) -> None:
    config = {
        n: models.VectorParams(size=d, distance=dist) for n, (d, dist) in NAMED_VECTORS.items()
    }
    pair.run(lambda c: c.create_collection(name, vectors_config=config))


@pytest.fixture(scope="module")
def plain(pair: Pair) -> Iterator[str]:
    """300 points with one unnamed Cosine vector; read-only for the tests that use it."""
    name = _unique("plain")
    _create_plain(pair, name, models.Distance.COSINE)
    pair.run(lambda c: c.upsert(name, DATA.points(), wait=True))
    yield name
    pair.run(lambda c: c.delete_collection(name))


@pytest.fixture(scope="module")
def named(pair: Pair) -> Iterator[str]:
    """300 points with four named vectors (Cosine, Dot, Euclid, Manhattan); read-only."""
    name = _unique("named")
    _create_named(pair, name)
    pair.run(lambda c: c.upsert(name, DATA.named_points(), wait=True))
    yield name
    pair.run(lambda c: c.delete_collection(name))


@pytest.fixture
def scratch(pair: Pair) -> Iterator[str]:
    """A fresh copy of the plain data set (Dot distance) that a test may change."""
    name = _unique("scratch")
    _create_plain(pair, name, models.Distance.DOT)
    pair.run(lambda c: c.upsert(name, DATA.points(), wait=True))
    yield name
    pair.run(lambda c: c.delete_collection(name))


def scroll_all(
    client: QdrantClient,
    name: str,
    *,
    flt: models.Filter | None = None,
    page: int = 37,
    with_vectors: bool = False,
) -> list[models.Record]:
    """Every point, following ``next_page_offset`` page by page (bounded)."""
    records: list[models.Record] = []
    offset: PointId | None = None
    for _ in range(MAX_PAGES):
        batch, next_offset = client.scroll(
            name,
            scroll_filter=flt,
            limit=page,
            offset=offset,
            with_payload=True,
            with_vectors=with_vectors,
        )
        records.extend(batch)
        if next_offset is None:
            return records
        assert len(batch) == page, "a page before the last one must be full"
        offset = next_offset  # type: ignore[assignment]
    raise AssertionError(f"scroll did not end after {MAX_PAGES} pages")


def assert_same_contents(pair: Pair, name: str) -> None:
    remote, local = pair.both(lambda c: scroll_all(c, name, with_vectors=True))
    assert_points_equal(remote, local, "full scroll")
    counts = pair.both(lambda c: c.count(name, exact=True).count)
    assert counts[0] == counts[1]


# -- service ----------------------------------------------------------------------


def test_client_compatibility_check_emits_no_warning(module_server_url: str) -> None:
    client_version = importlib.metadata.version("qdrant-client")
    server_version = get_server_version(module_server_url, {}, None, 10)
    assert server_version is not None
    assert is_compatible(client_version, server_version)

    before = set(threading.enumerate())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = QdrantClient(url=module_server_url, prefer_grpc=False, check_compatibility=True)
        for thread in set(threading.enumerate()) - before:  # the check runs in a thread
            thread.join(timeout=15)
    client.close()
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert messages == []


# -- collections -------------------------------------------------------------------


def test_collection_lifecycle_matches_local_mode(pair: Pair) -> None:
    name = _unique("life")
    assert pair.both(lambda c: c.collection_exists(name)) == (False, False)
    _create_plain(pair, name, models.Distance.EUCLID)
    assert pair.both(lambda c: c.collection_exists(name)) == (True, True)
    remote_names, local_names = pair.both(
        lambda c: {col.name for col in c.get_collections().collections}
    )
    assert name in remote_names
    assert name in local_names
    assert pair.both(lambda c: c.get_collection(name).points_count) == (0, 0)

    pair.run(lambda c: c.upsert(name, DATA.points()[:50], wait=True))
    assert pair.both(lambda c: c.get_collection(name).points_count) == (50, 50)

    assert pair.both(lambda c: c.delete_collection(name)) == (True, True)
    assert pair.both(lambda c: c.collection_exists(name)) == (False, False)
    remote_names, _ = pair.both(lambda c: {col.name for col in c.get_collections().collections})
    assert name not in remote_names


def test_deleting_a_missing_collection_matches_local_mode(pair: Pair) -> None:
    name = _unique("missing")
    remote, local = pair.both(lambda c: c.delete_collection(name))
    assert remote == local


@pytest.mark.parametrize("distance", list(models.Distance), ids=lambda d: d.value)
def test_unnamed_vector_config_is_reported(pair: Pair, distance: models.Distance) -> None:
    name = _unique("cfg")
    _create_plain(pair, name, distance)
    try:
        remote, local = pair.both(lambda c: c.get_collection(name).config.params.vectors)
        assert isinstance(remote, models.VectorParams)
        assert isinstance(local, models.VectorParams)
        assert (remote.size, remote.distance) == (local.size, local.distance)
    finally:
        pair.run(lambda c: c.delete_collection(name))


def test_named_vectors_config_is_reported(pair: Pair, named: str) -> None:
    remote, local = pair.both(lambda c: c.get_collection(named).config.params.vectors)
    assert isinstance(remote, dict)
    assert isinstance(local, dict)
    assert {k: (v.size, v.distance) for k, v in remote.items()} == {
        k: (v.size, v.distance) for k, v in local.items()
    }
    assert pair.both(lambda c: c.get_collection(named).points_count) == (N_POINTS, N_POINTS)


# -- upsert and retrieve ---------------------------------------------------------


def test_point_list_and_batch_upserts_store_the_same_points(pair: Pair) -> None:
    name = _unique("upsert")
    _create_plain(pair, name, models.Distance.EUCLID)
    half = N_POINTS // 2
    rows = DATA.points()
    ints_and_uuids = rows[half - 20 : half] + rows[N_INT_IDS:]  # both id kinds in the batch
    batch = models.Batch(
        ids=[p.id for p in ints_and_uuids],
        vectors=[p.vector for p in ints_and_uuids],
        payloads=[p.payload for p in ints_and_uuids],
    )
    try:
        pair.run(lambda c: c.upsert(name, rows[: half - 20], wait=True))
        pair.run(lambda c: c.upsert(name, batch, wait=True))
        assert pair.both(lambda c: c.count(name, exact=True).count) == (250, 250)
        assert_same_contents(pair, name)
    finally:
        pair.run(lambda c: c.delete_collection(name))


def test_upsert_replaces_an_existing_point(pair: Pair, scratch: str) -> None:
    target = DATA.ids[5]
    replacement = models.PointStruct(id=target, vector=[0.5] * DIM, payload={"new": [1, 2]})
    pair.run(lambda c: c.upsert(scratch, [replacement], wait=True))
    remote, local = pair.both(lambda c: c.retrieve(scratch, [target], with_vectors=True))
    assert_points_equal(remote, local)
    assert remote[0].payload == {"new": [1, 2]}


@pytest.mark.parametrize(
    ("with_payload", "with_vectors"),
    [
        (True, True),
        (False, False),
        (True, False),
        (["color", "meta"], False),
        (models.PayloadSelectorInclude(include=["n", "meta.a"]), False),
        (models.PayloadSelectorExclude(exclude=["items", "tags", "meta.kind"]), True),
    ],
    ids=["all", "nothing", "payload_only", "key_list", "include", "exclude"],
)
def test_retrieve_selects_payload_and_vectors(
    pair: Pair, plain: str, with_payload: Any, with_vectors: bool
) -> None:
    ids = [*SOME_INT_IDS, *SOME_UUIDS, 999_999, str(uuid.UUID(int=7))]  # two that do not exist
    remote, local = pair.both(
        lambda c: c.retrieve(plain, ids, with_payload=with_payload, with_vectors=with_vectors)
    )
    assert len(local) == len(SOME_INT_IDS) + len(SOME_UUIDS)
    assert_points_equal(_by_id(remote), _by_id(local), "retrieve")


@pytest.mark.parametrize("vector_names", [["dot"], ["cos", "man"], True])
def test_retrieve_selects_named_vectors(pair: Pair, named: str, vector_names: Any) -> None:
    ids = DATA.ids[::29]  # includes points without a "man" vector
    remote, local = pair.both(lambda c: c.retrieve(named, ids, with_vectors=vector_names))
    assert_points_equal(_by_id(remote), _by_id(local), "retrieve named")


def test_cosine_vectors_come_back_normalised(pair: Pair, plain: str) -> None:
    remote, local = pair.both(lambda c: c.retrieve(plain, DATA.ids[:5], with_vectors=True))
    assert_points_equal(_by_id(remote), _by_id(local))
    for record in remote:
        assert np.linalg.norm(np.asarray(record.vector)) == pytest.approx(1.0, rel=1e-5)


# -- query ---------------------------------------------------------------------------


@pytest.mark.parametrize("query_index", range(len(DATA.queries)))
def test_nearest_query_matches_local_mode(pair: Pair, plain: str, query_index: int) -> None:
    query = DATA.queries[query_index]
    remote, local = pair.both(
        lambda c: c.query_points(plain, query=query, limit=25, with_payload=True).points
    )
    assert_points_equal(remote, local, "query")


@pytest.mark.parametrize("using", list(NAMED_VECTORS))
def test_query_using_named_vector_matches_local_mode(pair: Pair, named: str, using: str) -> None:
    query = DATA.named[11][using]
    remote, local = pair.both(
        lambda c: (
            c.query_points(
                named, query=query, using=using, limit=15, with_payload=False, with_vectors=[using]
            ).points
        )
    )
    assert_points_equal(remote, local, f"query using {using}")


@pytest.mark.parametrize("flt_name", list(FILTERS))
def test_filtered_query_matches_local_mode(pair: Pair, plain: str, flt_name: str) -> None:
    remote, local = pair.both(
        lambda c: (
            c.query_points(
                plain,
                query=DATA.queries[0],
                query_filter=FILTERS[flt_name],
                limit=15,
                with_payload=True,
            ).points
        )
    )
    assert_points_equal(remote, local, flt_name)


@pytest.mark.parametrize("flt_name", list(FILTERS))
def test_filtered_count_matches_local_mode(pair: Pair, plain: str, flt_name: str) -> None:
    remote, local = pair.both(
        lambda c: c.count(plain, count_filter=FILTERS[flt_name], exact=True).count
    )
    assert remote == local


@pytest.mark.parametrize("flt_name", list(FILTERS))
def test_filtered_scroll_pages_match_local_mode(pair: Pair, plain: str, flt_name: str) -> None:
    remote, local = pair.both(lambda c: scroll_all(c, plain, flt=FILTERS[flt_name], page=11))
    assert_points_equal(remote, local, flt_name)


@pytest.mark.parametrize("using", list(NAMED_VECTORS))
def test_filtered_query_using_named_vector(pair: Pair, named: str, using: str) -> None:
    flt = FILTERS["combined"]
    query = DATA.named[40][using]
    remote, local = pair.both(
        lambda c: (
            c.query_points(
                named, query=query, using=using, query_filter=flt, limit=10, with_payload=["i"]
            ).points
        )
    )
    assert_points_equal(remote, local, f"filtered query using {using}")


@pytest.mark.parametrize("point_id", [DATA.ids[3], DATA.ids[N_INT_IDS + 4]], ids=["int", "uuid"])
def test_query_by_point_id_matches_local_mode(pair: Pair, plain: str, point_id: PointId) -> None:
    remote, local = pair.both(
        lambda c: c.query_points(plain, query=point_id, limit=10, with_payload=True).points
    )
    assert point_id not in [p.id for p in remote]
    assert_points_equal(remote, local, "query by id")


@pytest.mark.parametrize("using", ["dot", "euc"])
def test_query_by_point_id_using_named_vector(pair: Pair, named: str, using: str) -> None:
    point_id = DATA.ids[N_INT_IDS + 9]
    remote, local = pair.both(
        lambda c: c.query_points(named, query=point_id, using=using, limit=10).points
    )
    assert_points_equal(remote, local, f"query by id using {using}")


@pytest.mark.parametrize(
    ("using", "threshold"),
    [("cos", 0.4), ("dot", 1.5), ("euc", 2.0), ("man", 2.5)],
)
def test_score_threshold_matches_local_mode(
    pair: Pair, named: str, using: str, threshold: float
) -> None:
    query = DATA.named[100][using]
    remote, local = pair.both(
        lambda c: (
            c.query_points(
                named, query=query, using=using, score_threshold=threshold, limit=N_POINTS
            ).points
        )
    )
    assert 0 < len(local) < N_POINTS - 1, "the threshold should cut the result"
    assert_points_equal(remote, local, f"threshold on {using}")


@pytest.mark.parametrize(("offset", "limit"), [(0, 5), (5, 7), (290, 20), (400, 5)])
def test_query_offset_and_limit_match_local_mode(
    pair: Pair, plain: str, offset: int, limit: int
) -> None:
    remote, local = pair.both(
        lambda c: (
            c.query_points(
                plain, query=DATA.queries[1], offset=offset, limit=limit, with_payload=True
            ).points
        )
    )
    assert_points_equal(remote, local, f"offset={offset} limit={limit}")


def test_query_offset_pages_are_slices_of_one_ranking(pair: Pair, plain: str) -> None:
    full = pair.remote.query_points(plain, query=DATA.queries[2], limit=30).points
    pages = [
        pair.remote.query_points(plain, query=DATA.queries[2], offset=o, limit=10).points
        for o in (0, 10, 20)
    ]
    assert [p.id for p in full] == [p.id for page in pages for p in page]


@pytest.mark.parametrize(
    "with_payload",
    [
        ["color", "n"],
        ["meta.a.b", "tags"],
        models.PayloadSelectorInclude(include=["items", "missing_key"]),
        models.PayloadSelectorExclude(exclude=["items", "meta.a", "word"]),
    ],
    ids=["list", "nested_list", "include", "exclude"],
)
def test_query_payload_selection_matches_local_mode(
    pair: Pair, plain: str, with_payload: Any
) -> None:
    remote, local = pair.both(
        lambda c: (
            c.query_points(plain, query=DATA.queries[3], limit=12, with_payload=with_payload).points
        )
    )
    assert_points_equal(remote, local, "payload selection")


def test_query_without_vector_lists_filtered_points_in_id_order(pair: Pair, plain: str) -> None:
    remote, local = pair.both(
        lambda c: (
            c.query_points(
                plain, query_filter=FILTERS["range_int"], limit=20, with_payload=True
            ).points
        )
    )
    assert [p.id for p in remote] == [p.id for p in local]
    assert [p.payload for p in remote] == [p.payload for p in local]


def test_query_batch_matches_local_mode(pair: Pair, named: str) -> None:
    requests = [
        models.QueryRequest(query=DATA.named[1]["cos"], using="cos", limit=5, with_payload=True),
        models.QueryRequest(
            query=DATA.named[2]["dot"], using="dot", filter=FILTERS["match_keyword"], limit=8
        ),
        models.QueryRequest(
            query=DATA.named[3]["euc"], using="euc", offset=3, limit=4, with_vector=True
        ),
        models.QueryRequest(
            query=DATA.named[4]["man"],
            using="man",
            filter=FILTERS["nested_key"],
            score_threshold=3.0,
            limit=50,
            with_payload=["meta"],
        ),
        models.QueryRequest(query=DATA.ids[7], using="cos", limit=6),
        models.QueryRequest(filter=FILTERS["has_id"], limit=10, with_payload=["i"]),
    ]
    remote, local = pair.both(lambda c: c.query_batch_points(named, requests=requests))
    assert len(remote) == len(requests)
    for index, (r, loc) in enumerate(zip(remote, local, strict=True)):
        assert_points_equal(r.points, loc.points, f"batch request {index}")


# -- scroll ------------------------------------------------------------------------


@pytest.mark.parametrize("page", [1, 10, 64, 299, 300, 1000])
def test_scroll_pagination_covers_every_point_in_order(pair: Pair, plain: str, page: int) -> None:
    remote, local = pair.both(lambda c: scroll_all(c, plain, page=page))
    assert len(remote) == N_POINTS
    assert_points_equal(remote, local, f"scroll page={page}")


def test_scroll_returns_next_page_offset_like_local_mode(pair: Pair, plain: str) -> None:
    flt = FILTERS["should"]
    remote, local = pair.both(
        lambda c: c.scroll(plain, scroll_filter=flt, limit=9, offset=DATA.ids[100])
    )
    assert_points_equal(remote[0], local[0], "page")
    assert remote[1] == local[1]


def test_scroll_named_vectors_with_filter(pair: Pair, named: str) -> None:
    remote, local = pair.both(
        lambda c: scroll_all(c, named, flt=FILTERS["array_contains"], page=13, with_vectors=True)
    )
    assert_points_equal(remote, local, "named scroll")


@pytest.mark.parametrize("vector_name", ["man", "cos"])
def test_has_vector_filter_matches_local_mode(pair: Pair, named: str, vector_name: str) -> None:
    flt = models.Filter(must=[models.HasVectorCondition(has_vector=vector_name)])
    counts = pair.both(lambda c: c.count(named, count_filter=flt, exact=True).count)
    assert counts[0] == counts[1]
    remote, local = pair.both(
        lambda c: (
            c.query_points(
                named, query=DATA.named[0]["dot"], using="dot", query_filter=flt, limit=10
            ).points
        )
    )
    assert_points_equal(remote, local, f"has_vector {vector_name}")


# -- ids -------------------------------------------------------------------------------


def test_uuid_spellings_name_the_same_point(pair: Pair) -> None:
    """Upper-case and hyphen-less UUIDs are the same id; answers use the canonical form."""
    name = _unique("uuids")
    _create_plain(pair, name, models.Distance.DOT)
    point = uuid.UUID(int=0xABCDEF0123456789ABCDEF0123456789)
    try:
        pair.run(
            lambda c: c.upsert(
                name,
                [models.PointStruct(id=str(point).upper(), vector=DATA.vectors[0], payload={})],
                wait=True,
            )
        )
        remote, local = pair.both(lambda c: c.retrieve(name, [point.hex]))
        assert [r.id for r in remote] == [r.id for r in local] == [str(point)]
    finally:
        pair.run(lambda c: c.delete_collection(name))


def test_large_integer_ids_round_trip(pair: Pair) -> None:
    name = _unique("bigids")
    _create_plain(pair, name, models.Distance.DOT)
    ids: list[PointId] = [0, 2**53 + 1, 2**63 + 5, 2**64 - 1]
    points = [
        models.PointStruct(id=i, vector=v, payload={"k": i})
        for i, v in zip(ids, DATA.vectors, strict=False)
    ]
    try:
        pair.run(lambda c: c.upsert(name, points, wait=True))
        remote, local = pair.both(lambda c: scroll_all(c, name, with_vectors=True))
        assert_points_equal(remote, local, "big ids")
        assert [r.id for r in remote] == ids
    finally:
        pair.run(lambda c: c.delete_collection(name))


def test_duplicate_ids_in_one_upsert_keep_the_last(pair: Pair) -> None:
    name = _unique("dups")
    _create_plain(pair, name, models.Distance.EUCLID)
    points = [models.PointStruct(id=7, vector=DATA.vectors[k], payload={"k": k}) for k in range(3)]
    try:
        pair.run(lambda c: c.upsert(name, points, wait=True))
        remote, local = pair.both(lambda c: c.retrieve(name, [7], with_vectors=True))
        assert_points_equal(remote, local, "duplicates")
    finally:
        pair.run(lambda c: c.delete_collection(name))


# -- payload writes --------------------------------------------------------------------


def test_set_payload_by_ids(pair: Pair, scratch: str) -> None:
    points = [*SOME_INT_IDS[:3], *SOME_UUIDS[:2]]
    pair.run(
        lambda c: c.set_payload(
            scratch,
            {"color": "violet", "extra": {"deep": [1, None]}},
            points=_selected(points),
            wait=True,
        )
    )
    assert_same_contents(pair, scratch)


def test_set_payload_by_filter(pair: Pair, scratch: str) -> None:
    pair.run(
        lambda c: c.set_payload(
            scratch, {"n": -1, "touched": True}, points=FILTERS["match_keyword"], wait=True
        )
    )
    assert_same_contents(pair, scratch)
    assert pair.both(
        lambda c: c.count(scratch, count_filter=models.Filter(must=[_match("touched", True)])).count
    ) == pair.both(lambda c: c.count(scratch, count_filter=FILTERS["match_keyword"]).count)


def test_set_payload_under_a_nested_key(pair: Pair, scratch: str) -> None:
    pair.run(
        lambda c: c.set_payload(
            scratch, {"c": 5}, points=FILTERS["nested_keyword"], key="meta.a", wait=True
        )
    )
    assert_same_contents(pair, scratch)


def test_overwrite_payload_by_ids_and_filter(pair: Pair, scratch: str) -> None:
    pair.run(
        lambda c: c.overwrite_payload(
            scratch, {"only": "this"}, points=_selected(SOME_UUIDS), wait=True
        )
    )
    pair.run(
        lambda c: c.overwrite_payload(scratch, {"n": 0}, points=FILTERS["range_int"], wait=True)
    )
    assert_same_contents(pair, scratch)


def test_delete_payload_keys_by_ids_and_filter(pair: Pair, scratch: str) -> None:
    pair.run(
        lambda c: c.delete_payload(
            scratch, keys=["color", "tags"], points=_selected(SOME_INT_IDS), wait=True
        )
    )
    pair.run(
        lambda c: c.delete_payload(
            scratch, keys=["meta.a", "items"], points=FILTERS["match_bool"], wait=True
        )
    )
    assert_same_contents(pair, scratch)


def test_clear_payload_by_ids_and_filter(pair: Pair, scratch: str) -> None:
    pair.run(lambda c: c.clear_payload(scratch, points_selector=_selected(SOME_UUIDS), wait=True))
    pair.run(lambda c: c.clear_payload(scratch, points_selector=FILTERS["is_null"], wait=True))
    assert_same_contents(pair, scratch)
    remote, local = pair.both(
        lambda c: c.count(scratch, count_filter=FILTERS["is_empty"], exact=True).count
    )
    assert remote == local


# -- point deletes -----------------------------------------------------------------------


def test_delete_points_by_ids(pair: Pair, scratch: str) -> None:
    doomed = [*SOME_INT_IDS, *SOME_UUIDS, 123_456_789]  # the last one does not exist
    pair.run(lambda c: c.delete(scratch, points_selector=_selected(doomed), wait=True))
    assert (
        pair.both(lambda c: c.count(scratch, exact=True).count)
        == (N_POINTS - len(SOME_INT_IDS) - len(SOME_UUIDS),) * 2
    )
    assert pair.both(lambda c: c.retrieve(scratch, doomed)) == ([], [])
    assert_same_contents(pair, scratch)


def test_delete_points_by_filter(pair: Pair, scratch: str) -> None:
    selector = models.FilterSelector(filter=FILTERS["combined"])
    pair.run(lambda c: c.delete(scratch, points_selector=selector, wait=True))
    assert pair.both(
        lambda c: c.count(scratch, count_filter=FILTERS["combined"], exact=True).count
    ) == (0, 0)
    assert_same_contents(pair, scratch)
    remote, local = pair.both(
        lambda c: c.query_points(scratch, query=DATA.queries[0], limit=20, with_payload=True).points
    )
    assert_points_equal(remote, local, "query after delete")


def test_deleted_collection_is_gone(pair: Pair, scratch: str) -> None:
    assert pair.both(lambda c: c.delete_collection(scratch)) == (True, True)
    assert pair.both(lambda c: c.collection_exists(scratch)) == (False, False)
    _create_plain(pair, scratch, models.Distance.DOT)  # the fixture deletes it again
    assert pair.both(lambda c: c.count(scratch, exact=True).count) == (0, 0)


# -- multi-vectors ---------------------------------------------------------------------------

MULTI_DIM = 6


def _token_set(rng: np.random.Generator) -> list[list[float]]:
    return rng.standard_normal((int(rng.integers(1, 7)), MULTI_DIM)).round(4).tolist()


@pytest.fixture(scope="module")
def multi(pair: Pair) -> Iterator[str]:
    """Named vectors: a ColBERT-style multi-vector (Cosine, MaxSim) beside a dense one;
    a few points carry only the dense vector."""
    name = _unique("multi")
    config = {
        "colbert": models.VectorParams(
            size=MULTI_DIM,
            distance=models.Distance.COSINE,
            multivector_config=models.MultiVectorConfig(
                comparator=models.MultiVectorComparator.MAX_SIM
            ),
        ),
        "dense": models.VectorParams(size=3, distance=models.Distance.DOT),
    }
    pair.run(lambda c: c.create_collection(name, vectors_config=config))
    rng = np.random.default_rng(SEED + 7)
    points = []
    for i in range(120):
        vector: dict[str, Any] = {"dense": rng.standard_normal(3).round(4).tolist()}
        if i % 10 != 9:
            vector["colbert"] = _token_set(rng)
        points.append(models.PointStruct(id=i, vector=vector, payload={"even": i % 2 == 0}))
    pair.run(lambda c: c.upsert(name, points, wait=True))
    yield name
    pair.run(lambda c: c.delete_collection(name))


@pytest.mark.parametrize("seed", range(4))
def test_multi_vector_query_matches_local_mode(pair: Pair, multi: str, seed: int) -> None:
    query = _token_set(np.random.default_rng(seed))
    even = models.Filter(
        must=[models.FieldCondition(key="even", match=models.MatchValue(value=True))]
    )
    for flt in (None, even):
        remote, local = pair.both(
            lambda c, f=flt: (
                c.query_points(
                    multi, query=query, using="colbert", query_filter=f, limit=15, with_payload=True
                ).points
            )
        )
        assert_points_equal(remote, local, f"multi-vector query filter={flt is not None}")


def test_multi_vectors_are_retrieved_like_local_mode(pair: Pair, multi: str) -> None:
    ids = [*range(0, 120, 7), 9, 19]  # 9, 19 and 119 carry no multi-vector
    remote, local = pair.both(lambda c: c.retrieve(multi, ids, with_vectors=True))
    assert_points_equal(_by_id(remote), _by_id(local), "retrieve multi")
    config = pair.remote.get_collection(multi).config.params.vectors
    assert isinstance(config, dict)
    assert config["colbert"].multivector_config is not None
    assert config["colbert"].multivector_config.comparator == models.MultiVectorComparator.MAX_SIM
