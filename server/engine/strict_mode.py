"""Strict mode: Qdrant's per-collection ``strict_mode_config``, parsed and enforced.

A collection with ``{"enabled": true, ...}`` refuses requests past its limits before
any work is done, so a refused write changes nothing. The answers are Qdrant 1.19's:

- a limit on the request (``limit``, ``timeout``, ``hnsw_ef``, exact search, batch
  sizes, filter conditions, unindexed filter keys, payload index count): 400
  ``Bad request: <what>. Help: <how to fix>`` (Qdrant maps its strict-mode error to a
  bad request, not 403);
- a limit on the collection (points count, vector / payload storage bytes) or on one
  vector (multivector rows, sparse length): 400 ``Bad request: ... reached!`` /
  ``... were provided!``;
- ``read_rate_limit`` / ``write_rate_limit``: 429 ``Rate limiting exceeded: ...`` with
  ``Retry-After`` (``rate_limit.py``).

The routes call one entry point per request kind, once the request is parsed into its
engine type: ``check_queries`` (search, query, recommend, discover; single and batch),
``check_groups``, ``check_matrix``, ``check_read`` (retrieve, scroll, count, facet),
``check_upsert``, ``check_write`` (deletes and payload writes by ids or filter),
``check_update_vectors`` and ``check_new_index``. Each takes the ``CollectionHandle``,
whose config carries the strict mode: single-node and sharded collections alike.

Storage sizes are estimates, as Qdrant's are: points count times the mean size of up
to ``SIZE_SAMPLE`` points drawn at random (vectors as 4-byte numbers, payloads as JSON).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from server.engine.config import DEFAULT_VECTOR
from server.engine.examples import examples_of
from server.engine.filter_stats import (
    condition_size,
    filter_conditions,
    top_level_keys,
    unindexed_formula_key,
    unindexed_key,
)
from server.engine.filters import Filter
from server.engine.formula import FormulaQuery
from server.engine.groups import GroupRequest
from server.engine.knobs import config_error
from server.engine.matrix import MatrixRequest
from server.engine.payload import PayloadSelector
from server.engine.protocols import CollectionHandle
from server.engine.rate_limit import LIMITS, Kind
from server.engine.requests import PointsSelection, Query
from server.engine.sparse_vector import SparseVector, is_sparse_object
from server.errors import BadRequest, StrictModeViolation

SIZE_SAMPLE = 100
"""Points drawn to estimate the bytes per point of a collection's storage."""

_Positive = Annotated[int | None, Field(ge=1)]
_Count = Annotated[int | None, Field(ge=0)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


class StrictModeMultivector(_Section):
    max_vectors: _Positive = None


class StrictModeSparse(_Section):
    max_length: _Positive = None


class StrictModeConfig(_Section):
    """Qdrant 1.19's ``StrictModeConfig``; every limit is off while unset (None)."""

    enabled: bool | None = None
    max_query_limit: _Positive = None
    max_timeout: _Positive = None
    unindexed_filtering_retrieve: bool | None = None
    unindexed_filtering_update: bool | None = None
    search_max_hnsw_ef: _Count = None
    search_allow_exact: bool | None = None
    search_max_oversampling: Annotated[float | None, Field(ge=0)] = None
    upsert_max_batchsize: _Count = None
    search_max_batchsize: _Count = None
    max_collection_vector_size_bytes: _Count = None
    read_rate_limit: _Positive = None
    write_rate_limit: _Positive = None
    max_collection_payload_size_bytes: _Count = None
    max_points_count: _Positive = None
    filter_max_conditions: _Count = None
    condition_max_size: _Count = None
    multivector_config: dict[str, StrictModeMultivector] | None = None
    sparse_config: dict[str, StrictModeSparse] | None = None
    max_payload_index_count: _Count = None
    max_resident_memory_percent: Annotated[int | None, Field(ge=1, le=100)] = None
    """Deprecated in Qdrant (a node-wide quota replaces it); still enforced there."""


# -- the config, from a request ----------------------------------------------------


def parse_strict_mode(raw: Any) -> dict[str, Any]:
    """A create request's ``strict_mode_config``, validated (422 naming the field), in the
    form stored with the collection: the fields given."""
    try:
        parsed = StrictModeConfig.model_validate(raw)
    except ValidationError as exc:
        raise config_error("strict_mode_config", exc) from None
    return parsed.model_dump(exclude_none=True)


def patched_strict_mode(current: Mapping[str, Any] | None, raw: Any) -> dict[str, Any]:
    """A PATCH: the fields it gives replace the stored ones, the rest stay (Qdrant's
    merge; so a limit is lifted by setting ``enabled: false``, not by omitting it)."""
    return dict(current or {}) | parse_strict_mode(raw)


def active(collection: CollectionHandle) -> StrictModeConfig | None:
    """The collection's strict mode when it is enabled, else None (nothing to check)."""
    raw = collection.config.strict_mode_config
    if not raw or raw.get("enabled") is not True:
        return None
    return StrictModeConfig.model_validate(raw, strict=False)


# -- entry points, one per request kind ------------------------------------------


def check_queries(
    collection: CollectionHandle,
    queries: Sequence[Query],
    wire: Mapping[str, str],
    *,
    batch: bool = False,
) -> None:
    """Search, query, recommend and discover requests (each query with its prefetches);
    ``wire`` is the request's query string (its ``timeout``). Qdrant's order: batch
    size, each request, timeout; the rate limit last, once nothing else refused it."""
    config = active(collection)
    if config is None:
        return
    if batch:
        check_limit(len(queries), config.search_max_batchsize, "search batch size")
    cost = _check_stages(collection, queries, config)
    check_timeout(wire, config)
    take(collection, config, "Read", cost)


def check_groups(
    collection: CollectionHandle, group: GroupRequest, wire: Mapping[str, str]
) -> None:
    """Grouped search: the query's own limits, ``limit`` x ``group_size`` points, and a
    ``group_by`` key that needs an index matching values, as the filters' keys do."""
    config = active(collection)
    if config is None:
        return
    check_limit(group.limit * group.group_size, config.max_query_limit, "limit")
    if config.unindexed_filtering_retrieve is False:
        _check_group_key(collection, group.group_by)
    cost = _check_stages(collection, [group.query], config)
    check_timeout(wire, config)
    take(collection, config, "Read", cost)


def check_matrix(
    collection: CollectionHandle, request: MatrixRequest, wire: Mapping[str, str]
) -> None:
    """The distance matrix: ``sample`` x ``limit`` pairs count as its limit."""
    config = active(collection)
    if config is None:
        return
    check_limit(request.sample * request.limit, config.max_query_limit, "limit")
    _check_filter(collection, request.filter, config.unindexed_filtering_retrieve, config)
    check_timeout(wire, config)
    take(collection, config, "Read", request.sample + filter_conditions(request.filter))


def check_read(
    collection: CollectionHandle,
    wire: Mapping[str, str],
    *,
    flt: Filter | None = None,
    limit: int | None = None,
    exact: bool | None = None,
    points: int | None = None,
) -> None:
    """Retrieve (``points`` ids), scroll (``limit``), count (``exact``) and facet: each
    read's own limits, its filter's keys and size, and its rate cost (the ids, or one
    plus the filter's conditions)."""
    config = active(collection)
    if config is None:
        return
    check_limit(limit, config.max_query_limit, "limit")
    _check_filter(collection, flt, config.unindexed_filtering_retrieve, config)
    check_exact(bool(exact), config)
    check_timeout(wire, config)
    cost = points if points is not None else 1 + filter_conditions(flt)
    take(collection, config, "Read", cost)


def check_upsert(collection: CollectionHandle, vectors: Sequence[Any]) -> None:
    """An upsert of ``len(vectors)`` points (raw vectors, one entry per point)."""
    config = active(collection)
    if config is None:
        return
    check_limit(len(vectors), config.upsert_max_batchsize, "upsert limit")
    check_collection_size(collection, config)
    check_vector_limits(vectors, config)
    check_resident_memory(config)
    take(collection, config, "Write", len(vectors))


def check_bulk(collection: CollectionHandle, chunk_rows: int) -> None:
    """Quiver's streamed bulk load, checked once before it starts: each chunk is an
    upsert of ``chunk_rows`` points, and the collection must be under its size limits.
    Limits a stream cannot be held to up front (per-vector sizes, the write rate) refuse
    the bulk load instead of letting it pass them."""
    config = active(collection)
    if config is None:
        return
    per_vector = config.multivector_config or config.sparse_config
    if per_vector or config.write_rate_limit is not None:
        raise StrictModeViolation(
            "Bulk loads are refused under strict mode with multivector_config, "
            "sparse_config or write_rate_limit (a stream is not checked point by point)",
            "Upsert through PUT /collections/{name}/points instead.",
        )
    check_limit(chunk_rows, config.upsert_max_batchsize, "upsert limit")
    check_collection_size(collection, config)
    check_resident_memory(config)


def check_update_vectors(collection: CollectionHandle, vectors: Sequence[Any]) -> None:
    """``PUT /points/vectors``: new vectors for ``len(vectors)`` existing points."""
    config = active(collection)
    if config is None:
        return
    check_limit(len(vectors), config.upsert_max_batchsize, "update limit")
    check_collection_size(collection, config)
    check_vector_limits(vectors, config)
    check_resident_memory(config)
    take(collection, config, "Write", len(vectors))


def check_write(
    collection: CollectionHandle, selection: PointsSelection, adds_payload: bool = False
) -> None:
    """Deletes and payload writes: a filter's keys must be indexed when
    ``unindexed_filtering_update`` is false; writes that add payload respect the payload
    storage limit; the rate cost is the points touched (ids, or the filter's count)."""
    config = active(collection)
    if config is None:
        return
    _check_filter(collection, selection.filter, config.unindexed_filtering_update, config)
    if adds_payload:
        limit = config.max_collection_payload_size_bytes
        if limit is not None:
            _check_bytes(collection, limit, "payload", payload=True)
        check_resident_memory(config)
    if config.write_rate_limit is not None:
        touched = len(selection.ids) if selection.ids is not None else None
        cost = touched if touched is not None else collection.count(selection.filter)
        take(collection, config, "Write", cost)


def check_new_index(collection: CollectionHandle, field_name: str) -> None:
    """Creating a payload index: at most ``max_payload_index_count`` of them."""
    config = active(collection)
    if config is None or config.max_payload_index_count is None:
        return
    schema = collection.config.payload_schema
    if field_name not in schema and len(schema) >= config.max_payload_index_count:
        raise StrictModeViolation(
            "Collection already has the maximum number of payload indices "
            f"({config.max_payload_index_count})",
            "Please delete an existing index before creating a new one.",
        )


# -- single checks ------------------------------------------------------------------


def check_limit(value: float | None, limit: float | None, name: str) -> None:
    if value is None or limit is None or value <= limit:
        return
    raise StrictModeViolation(
        f'Limit exceeded {_number(value)} > {_number(limit)} for "{name}"',
        f'Reduce the "{name}" parameter to or below {_number(limit)}.',
    )


def check_exact(requested: bool, config: StrictModeConfig) -> None:
    if requested and config.search_allow_exact is False:
        raise StrictModeViolation("Exact search disabled!", "Set exact=false.")


def check_timeout(wire: Mapping[str, str], config: StrictModeConfig) -> None:
    raw = wire.get("timeout")
    if raw is None or config.max_timeout is None:
        return
    try:
        timeout = int(raw)
    except ValueError:
        raise BadRequest(
            f"Wrong input: `timeout` must be a whole number of seconds, got {raw!r}"
        ) from None
    check_limit(timeout, config.max_timeout, "timeout")


def check_collection_size(collection: CollectionHandle, config: StrictModeConfig) -> None:
    """Qdrant refuses writes once a collection is at (not past) a size limit."""
    if config.max_collection_vector_size_bytes is not None:
        _check_bytes(collection, config.max_collection_vector_size_bytes, "vector", payload=False)
    if config.max_collection_payload_size_bytes is not None:
        _check_bytes(collection, config.max_collection_payload_size_bytes, "payload", payload=True)
    limit = config.max_points_count
    if limit is not None and collection.count(None) >= limit:
        raise BadRequest(f"Bad request: Max points count limit of {limit} reached!")


def check_vector_limits(vectors: Sequence[Any], config: StrictModeConfig) -> None:
    """Rows of each multi-vector and length of each sparse vector, per vector name."""
    rows = {k: v.max_vectors for k, v in (config.multivector_config or {}).items()}
    lengths = {k: v.max_length for k, v in (config.sparse_config or {}).items()}
    if not any(rows.values()) and not any(lengths.values()):
        return
    for vector in vectors:
        named = vector if isinstance(vector, dict) and not is_sparse_object(vector) else None
        for name, value in (named or {DEFAULT_VECTOR: vector}).items():
            _check_one_vector(name, value, rows.get(name), lengths.get(name))


def check_resident_memory(config: StrictModeConfig, used_percent: float | None = None) -> None:
    """``max_resident_memory_percent`` (deprecated by Qdrant, still honoured there)."""
    limit = config.max_resident_memory_percent
    if limit is None:
        return
    used = resident_percent() if used_percent is None else used_percent
    if used > limit:
        raise StrictModeViolation(
            f"Resident memory usage is at {used:.0f}% of total memory, exceeding the "
            f"configured limit of {limit}%",
            "Reduce memory usage (e.g. delete points or drop collections), or raise "
            "`max_resident_memory_percent` in the strict mode config of this collection.",
        )


def resident_percent() -> float:
    """This process's resident memory as a percentage of the machine's."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        resident_pages = int(statm.read().split()[1])
    total_pages = os.sysconf("SC_PHYS_PAGES")
    return 100.0 * resident_pages / total_pages


def take(collection: CollectionHandle, config: StrictModeConfig, kind: Kind, cost: int) -> None:
    """Charge ``cost`` tokens to the collection's ``kind`` rate limit, if it has one."""
    per_minute = config.read_rate_limit if kind == "Read" else config.write_rate_limit
    if per_minute is not None:
        LIMITS.take(collection, kind, per_minute, cost)


def _check_filter(
    collection: CollectionHandle,
    flt: Filter | None,
    allow_unindexed: bool | None,
    config: StrictModeConfig,
) -> None:
    """An unindexed key (when not allowed), then the filter's size limits."""
    if flt is None:
        return
    if allow_unindexed is False:
        found = unindexed_key(flt, collection.config.payload_schema)
        if found is not None:
            key, types = found
            raise StrictModeViolation(
                f'Index required but not found for "{key}" of one of the following types: '
                f"[{', '.join(types)}]",
                "Create an index for this key or use a different filter.",
            )
    conditions = filter_conditions(flt)
    limit = config.filter_max_conditions
    if limit is not None and conditions > limit:
        raise StrictModeViolation(
            f"Filter condition limit reached ({conditions} > {limit})",
            "Reduce the amount of conditions of your filter.",
        )
    size, largest = condition_size(flt), config.condition_max_size
    if largest is not None and size > largest:
        raise StrictModeViolation(
            f"Condition size limit reached ({size} > {largest})",
            "Reduce the size of your condition.",
        )


def _check_group_key(collection: CollectionHandle, key: str) -> None:
    indexed = collection.config.payload_schema.get(key)
    if indexed is None:
        raise StrictModeViolation(
            f'Index required but not found for "{key}"',
            "Create an index supporting `match` for this key.",
        )
    kind = str(indexed.get("type"))
    if kind not in ("keyword", "integer", "uuid"):
        raise StrictModeViolation(
            f'Index of type "{kind.capitalize()}" found for "{key}"',
            "Create an index supporting `match` for this key.",
        )


# -- queries ---------------------------------------------------------------------------


def _stages(query: Query) -> Iterator[Query]:
    """A query and every prefetch under it."""
    yield query
    for stage in query.prefetch:
        yield from _stages(stage)


def _check_stages(
    collection: CollectionHandle, queries: Sequence[Query], config: StrictModeConfig
) -> int:
    """Check every stage of ``queries``; their read cost."""
    cost = 0
    for query in queries:
        for stage in _stages(query):
            _check_stage(collection, stage, config)
            cost += _search_cost(stage)
    return cost


def _check_stage(collection: CollectionHandle, query: Query, config: StrictModeConfig) -> None:
    if config.search_allow_exact is False and not query.prefetch and _searches_vectors(query):
        _check_full_scan(collection, query)
    check_limit(query.limit, config.max_query_limit, "limit")
    if config.unindexed_filtering_retrieve is False and isinstance(query.combine, FormulaQuery):
        _check_formula(collection, query.combine)
    _check_filter(collection, query.filter, config.unindexed_filtering_retrieve, config)
    check_exact(query.params.exact, config)
    check_limit(query.params.oversampling, config.search_max_oversampling, "oversampling")
    check_limit(query.params.ef, config.search_max_hnsw_ef, "hnsw_ef")


def _check_formula(collection: CollectionHandle, formula: FormulaQuery) -> None:
    found = unindexed_formula_key(formula.expression, collection.config.payload_schema)
    if found is not None:
        key, types = found
        raise StrictModeViolation(
            f'Index required but not found for "{key}" of one of the following types: '
            f"[{', '.join(types)}]",
            "Create an index for this key or use a different formula expression.",
        )


def _searches_vectors(query: Query) -> bool:
    """A nearest-neighbour stage (by vector, point or examples), not a fusion, formula,
    ordering or sample."""
    by_vector = query.vector is not None or query.point_id is not None
    return (by_vector or query.examples is not None) and query.combine is None


def _check_full_scan(collection: CollectionHandle, query: Query) -> None:
    """With exact search disallowed, a dense vector without a graph (``m`` = 0) may be
    searched only through a tenant's filter and its ``payload_m`` graph (Qdrant's
    ``check_fullscan``)."""
    config = collection.config
    using = query.using or DEFAULT_VECTOR
    params = config.vectors.get(using)
    if using in config.sparse_vectors or params is None:
        return
    own = params.hnsw_config or {}
    own_m = own.get("m")
    m = config.hnsw_config.m if own_m is None else int(own_m)
    if m > 0:
        return
    payload_m = own.get("payload_m", config.hnsw_config.payload_m)
    label = "" if using == DEFAULT_VECTOR else f" on '{using}'"
    if not _has_tenant_key(query.filter, config.payload_schema):
        raise StrictModeViolation(
            f"Request is forbidden{label} because global vector indexing is disabled "
            "(hnsw_config.m = 0)",
            "Use tenant-specific filter, enable global vector indexing or enable strict "
            "mode `search_allow_exact` option",
        )
    if (m if payload_m is None else payload_m) == 0:
        raise StrictModeViolation(
            f"Request is forbidden{label} because vector indexing is disabled "
            "(hnsw_config.m = 0 and hnsw_config.payload_m = 0)",
            "Enable vector indexing, use a prefetch query with indexed vectors or enable "
            "strict mode `search_allow_exact` option",
        )


def _has_tenant_key(flt: Filter | None, schema: Mapping[str, Mapping[str, Any]]) -> bool:
    keys = [] if flt is None else top_level_keys(flt)
    return any(schema.get(key, {}).get("is_tenant") is True for key in keys)


def _search_cost(query: Query) -> int:
    """One per query vector (a multi-vector's rows, an example query's examples),
    plus the filter's conditions (Qdrant's ``search_rate_cost``)."""
    if query.examples is not None:
        vectors = len(examples_of(query.examples))
    elif isinstance(query.vector, list) and query.vector and isinstance(query.vector[0], list):
        vectors = len(query.vector)
    else:
        vectors = 1
    return max(1, vectors) + filter_conditions(query.filter)


# -- vectors and storage ---------------------------------------------------------


def _check_one_vector(name: str, value: Any, max_rows: int | None, max_length: int | None) -> None:
    if max_length is not None:
        length = _sparse_length(value)
        if length is not None and length > max_length:
            raise BadRequest(
                f"Bad request: Sparse vector '{name}' has a limit of {max_length} indices, "
                f"but {length} were provided!"
            )
    if max_rows is not None and _is_multi(value) and len(value) > max_rows:
        raise BadRequest(
            f"Bad request: Multivector '{name}' has a limit of {max_rows} vectors, "
            f"but {len(value)} were provided!"
        )


def _sparse_length(value: Any) -> int | None:
    if isinstance(value, SparseVector):
        return len(value.indices)
    if is_sparse_object(value):
        indices, values = value["indices"], value["values"]
        if isinstance(indices, list) and isinstance(values, list):
            return max(len(indices), len(values))
    return None


def _is_multi(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], list)


def _check_bytes(collection: CollectionHandle, limit: int, what: str, *, payload: bool) -> None:
    if estimated_bytes(collection, payload=payload) >= limit:
        megabytes = np.format_float_positional(np.float32(limit / (1024 * 1024)), trim="-")
        raise BadRequest(f"Bad request: Max {what} storage size limit of {megabytes}MB reached!")


def estimated_bytes(collection: CollectionHandle, *, payload: bool) -> int:
    """The collection's vector (``payload=False``) or payload storage, estimated from
    up to ``SIZE_SAMPLE`` points drawn at random."""
    points = collection.count(None)
    if points == 0:
        return 0
    selector = PayloadSelector.of("all" if payload else "none")
    sample = collection.sample(None, SIZE_SAMPLE, selector, not payload)
    if not sample:
        return 0
    if payload:
        sizes = [len(orjson.dumps(record.payload or {})) for record in sample]
    else:
        sizes = [4 * _numbers(record.vector) for record in sample]
    return int(points * sum(sizes) / len(sample))


def _numbers(value: Any) -> int:
    """How many numbers a vector output holds (dense, multi, sparse or named)."""
    if isinstance(value, dict):
        return sum(_numbers(item) for item in value.values())
    if isinstance(value, list | tuple):
        if value and not _scalar(value[0]):
            return sum(_numbers(item) for item in value)
        return len(value)
    if isinstance(value, SparseVector):
        return 2 * len(value.indices)
    return 0


def _scalar(value: Any) -> bool:
    return isinstance(value, int | float)


def _number(value: float) -> str:
    """As Rust prints it: ``2`` for an integral value, else the shortest float."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
