"""A collection config from a create request, and a PATCH applied to one.

The routes hand over what the request gave (``request``: its fields that are not
None; config sections as plain JSON objects) and get back a checked
``CollectionConfig``; nothing is stored here. Each section is validated by the config
model itself (``config.py``, ``knobs.py``), so a knob's type and range are written
once; a bad one is a 422 naming the field, a combination the backend cannot serve a
400 naming why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from index.datatypes import DATATYPES, REFUSED_DATATYPES, TURBO_DATATYPES
from index.leanvec_index import LeanVecParams, check_params
from index.metrics import Distance
from index.muvera_index import MuveraIndexParams
from server.engine.config import (
    DEFAULT_VECTOR,
    MEMORY_TIERS,
    CollectionConfig,
    HnswConfig,
    IndexConfig,
    MemoryTier,
    MultiVectorConfig,
    OptimizersConfig,
    SparseVectorParams,
    VectorParams,
    WalConfig,
)
from server.engine.knobs import REQUEST, checked_fields, config_error
from server.engine.quantization_config import (
    QuantizationConfig,
    check_for_vectors,
    parse_quantization,
)
from server.engine.strict_mode import parse_strict_mode, patched_strict_mode
from server.errors import BadRequest, BodyValidationError, UnsupportedFeature

MAX_FDE_DIM = 65_536

_SECTIONS: dict[str, type[BaseModel]] = {
    "hnsw_config": HnswConfig,
    "optimizers_config": OptimizersConfig,
    "wal_config": WalConfig,
    "index": IndexConfig,
    "multivector": MultiVectorConfig,
}
"""Config sections a request may send (partly: omitted knobs keep their value)."""

_QDRANT_ONLY: dict[str, frozenset[str]] = {
    "hnsw_config": frozenset({"inline_storage"}),
    "optimizers_config": frozenset({"prevent_unoptimized"}),
    "wal_config": frozenset({"wal_retain_closed"}),
}
"""Qdrant knobs accepted and ignored (they change nothing here)."""

_PREVENT_UNOPTIMIZED = (
    "`optimizers_config.prevent_unoptimized: true` (Qdrant 1.19 hides points written to "
    "a segment past the indexing threshold until it is indexed; Quiver seals its "
    "appendable segment at the threshold and searches a sealed segment exactly until "
    "its index is built, and never hides acknowledged points). `false` is accepted"
)

_COPIED = ("shard_number", "replication_factor", "write_consistency_factor", "on_disk_payload")
_PATCHABLE_PARAMS = frozenset(
    {"replication_factor", "write_consistency_factor", "on_disk_payload", "read_fan_out_factor"}
)


def config_from_request(request: Mapping[str, Any], max_vector_size: int) -> CollectionConfig:
    """The config of a new collection (``PUT /collections/{name}``)."""
    _refuse_unsupported(request)
    sparse = _sparse_vectors(request.get("sparse_vectors") or {}, {})
    named, vectors = True, dict[str, VectorParams]()
    raw_vectors = request.get("vectors")
    # `"vectors": {}` beside sparse vectors (LangChain's sparse mode sends it) means no dense one
    if raw_vectors or (raw_vectors is not None and not sparse):
        named, vectors = _vectors(raw_vectors, max_vector_size)
    _check_names(vectors, sparse)
    config = CollectionConfig(vectors=vectors, named_vectors=named, sparse_vectors=sparse)
    copied = {k: request[k] for k in _COPIED if k in request}
    changes: dict[str, Any] = checked_fields(CollectionConfig, copied)
    if "metadata" in request:
        changes["metadata"] = request["metadata"]
    if "strict_mode_config" in request:
        changes["strict_mode_config"] = parse_strict_mode(request["strict_mode_config"])
    for section in ("hnsw_config", "optimizers_config", "index", "multivector"):
        if section in request:
            changes[section] = section_update(config, section, request[section])
    if "wal_config" in request:  # checked, and (as before) not applied
        section_update(config, "wal_config", request["wal_config"])
    if "quantization_config" in request:
        changes["quantization_config"] = _quantization(request["quantization_config"], config)
    updated = config.with_updates(**changes) if changes else config
    check_backend(updated)
    for name, params in updated.vectors.items():
        _check_vector_overrides(updated, name, params)
    return updated


def patched_config(config: CollectionConfig, request: Mapping[str, Any]) -> CollectionConfig:
    """``config`` with a PATCH applied (``PATCH /collections/{name}``)."""
    changes: dict[str, Any] = {}
    if request.get("vectors"):
        changes["vectors"] = _patched_vectors(config, request["vectors"])
    if request.get("sparse_vectors"):
        changes["sparse_vectors"] = _patched_sparse(config, request["sparse_vectors"])
    if "quantization_config" in request:
        changes["quantization_config"] = _quantization(request["quantization_config"], config)
    for section in ("hnsw_config", "optimizers_config", "index", "multivector"):
        if section in request:
            changes[section] = section_update(config, section, request[section])
    if request.get("params"):
        changes |= _collection_params(request["params"])
    if "metadata" in request:
        changes["metadata"] = (config.metadata or {}) | request["metadata"]
    if "strict_mode_config" in request:
        current = config.strict_mode_config
        changes["strict_mode_config"] = patched_strict_mode(current, request["strict_mode_config"])
    updated = config.with_updates(**changes)
    check_backend(updated)
    for name, params in updated.vectors.items():
        _check_vector_overrides(updated, name, params)
    return updated


def with_vector_name(
    config: CollectionConfig, name: str, kind: str, raw: Mapping[str, Any], max_vector_size: int
) -> CollectionConfig:
    """``config`` with a new named ``kind`` ("dense" or "sparse") vector (Qdrant 1.19's
    ``PUT /collections/{name}/vectors/{vector_name}``). Creating it again with the same
    schema changes nothing; with another schema, or under the other kind, it is a 400."""
    if not name:
        raise BadRequest("Wrong input: a vector name must not be empty")
    if kind == "sparse":
        given: dict[str, Any] = {"modifier": raw.get("modifier")}
        if raw.get("datatype") is not None:
            given["index"] = {"datatype": raw["datatype"]}
        sparse = _sparse_vectors({name: given}, {})[name]
        if name in config.vectors:
            raise BadRequest(f"Wrong input: Vector {name} already exists as a dense vector")
        current = config.sparse_vectors.get(name)
        if current is not None:
            if current.modifier != sparse.modifier:
                raise BadRequest(
                    f"Wrong input: Sparse vector {name} already exists with a different "
                    "configuration"
                )
            return config
        return config.with_updates(sparse_vectors={**config.sparse_vectors, name: sparse})
    dense = VectorParams.model_validate(raw)
    _check_vector_params(name, dense, max_vector_size)
    if name in config.sparse_vectors:
        raise BadRequest(f"Wrong input: Vector {name} already exists as a sparse vector")
    existing = config.vectors.get(name)
    if existing is not None:
        schema = ("size", "distance", "multivector_config")
        if any(getattr(existing, k) != getattr(dense, k) for k in schema):
            raise BadRequest(
                f"Wrong input: Vector {name} already exists with a different configuration"
            )
        return config
    updated = config.with_updates(vectors={**config.vectors, name: dense}, named_vectors=True)
    check_backend(updated)
    return updated


def without_vector_name(config: CollectionConfig, name: str) -> CollectionConfig:
    """``config`` without the named vector (``DELETE .../vectors/{vector_name}``); a
    name it does not have changes nothing, as in Qdrant."""
    if name in config.sparse_vectors:
        kept = {n: p for n, p in config.sparse_vectors.items() if n != name}
        return config.with_updates(sparse_vectors=kept)
    if name not in config.vectors:
        return config
    if not config.named_vectors:
        raise BadRequest(
            "Wrong input: Cannot delete the unnamed vector when it is the only dense vector "
            "in the collection"
        )
    return config.with_updates(vectors={n: p for n, p in config.vectors.items() if n != name})


def section_update(config: CollectionConfig, section: str, diff: Mapping[str, Any]) -> BaseModel:
    """One section of ``config`` with the knobs ``diff`` sets (None leaves a knob as it
    is), validated with the ranges a request may ask."""
    if section == "optimizers_config" and diff.get("prevent_unoptimized"):
        raise UnsupportedFeature(_PREVENT_UNOPTIMIZED)
    ignored = _QDRANT_ONLY.get(section, frozenset())
    updates = {k: v for k, v in diff.items() if v is not None and k not in ignored}
    if section == "optimizers_config" and updates.get("max_optimization_threads") == "auto":
        updates["max_optimization_threads"] = None
    current: BaseModel = getattr(config, section)
    try:
        return _SECTIONS[section].model_validate(current.model_dump() | updates, context=REQUEST)
    except ValidationError as exc:
        raise config_error(section, exc) from None


def check_backend(config: CollectionConfig) -> None:
    """Refuse an index configuration the chosen backend cannot serve, naming why."""
    if config.index.type == "muvera":
        _check_muvera(config)
    if config.index.type != "leanvec":
        return
    if config.quantization_config is not None:
        raise BadRequest(
            "Wrong input: `index.type` leanvec quantizes on its own; "
            'remove `quantization_config` (PATCH it to "Disabled") to use it'
        )
    params = LeanVecParams(**config.index.leanvec_params())
    for name, vector in config.vectors.items():
        try:
            check_params(vector.size, vector.distance, params)
        except ValueError as exc:
            raise BadRequest(f"Wrong input: index{_label(name, ' (vector {!r})')}: {exc}") from None


def _check_muvera(config: CollectionConfig) -> None:
    if config.quantization_config is not None:
        raise BadRequest(
            "Wrong input: `index.type` muvera searches its own encodings; remove "
            '`quantization_config` (PATCH it to "Disabled") to use it'
        )
    if config.index.secondary not in ("float32", "float16"):
        raise BadRequest(
            "Wrong input: `index.secondary` (the stored token vectors MUVERA re-ranks with) "
            f'must be "float32" or "float16" for muvera, got {config.index.secondary!r}'
        )
    try:
        params = MuveraIndexParams(**config.index.muvera_params())
    except ValueError as exc:
        raise BadRequest(f"Wrong input: index: {exc}") from None
    for name, vector in config.vectors.items():
        if not vector.is_multi:
            continue
        encoder_dim = params.final_dim or (
            params.repetitions * 2**params.k_sim * (params.d_proj or vector.size)
        )
        if encoder_dim > MAX_FDE_DIM:
            label = _label(name, "vector {!r}", "the vector")
            raise BadRequest(
                f"Wrong input: index: MUVERA encodings of {label} "
                f"would have {encoder_dim} dimensions (repetitions x 2^k_sim x d_proj), more "
                f"than {MAX_FDE_DIM}; lower them or set final_dim"
            )


def _refuse_unsupported(request: Mapping[str, Any]) -> None:
    if request.get("vectors") is None and not request.get("sparse_vectors"):
        raise BadRequest("Wrong input: `vectors` or `sparse_vectors` is required")
    if "init_from" in request:
        raise UnsupportedFeature("init_from")
    if request.get("sharding_method", "auto") != "auto":
        raise UnsupportedFeature(f"sharding_method {request['sharding_method']!r} (only 'auto')")


def _vectors(raw: Any, max_vector_size: int) -> tuple[bool, dict[str, VectorParams]]:
    """``(named, params by name)`` of a create request's ``vectors``: one unnamed
    vector's params, or a map of named ones (whose values are all objects)."""
    named = isinstance(raw, dict) and all(isinstance(v, dict | BaseModel) for v in raw.values())
    given: dict[str, Any] = raw if named else {DEFAULT_VECTOR: raw}
    if named and not given:
        raise BadRequest("Wrong input: `vectors` must name at least one vector")
    vectors = {}
    for name, params in given.items():
        dumped = params.model_dump() if isinstance(params, BaseModel) else params
        try:
            vectors[name] = VectorParams.model_validate(dumped)
        except ValidationError as exc:
            raise config_error(_label(name, "vectors.{}", "vectors"), exc) from None
        _check_vector_params(name, vectors[name], max_vector_size)
    return named, vectors


def _sparse_vectors(
    raw: Mapping[str, Any], current: Mapping[str, SparseVectorParams]
) -> dict[str, SparseVectorParams]:
    """``sparse_vectors`` of a request: each name's params over ``current`` ones (a PATCH
    changes only the knobs it sends)."""
    if not isinstance(raw, Mapping):
        raise BadRequest("Wrong input: `sparse_vectors` must map names to sparse vector params")
    out = {}
    for name, given in raw.items():
        if not isinstance(given, Mapping):
            raise BadRequest(f"Wrong input: sparse vector {name!r}: params must be an object")
        base = current[name].model_dump(exclude_none=True) if name in current else {}
        index = {**base.get("index", {}), **(given.get("index") or {})}
        merged = base | {k: v for k, v in given.items() if v is not None} | {"index": index}
        if index.get("datatype") in TURBO_DATATYPES | REFUSED_DATATYPES:  # Qdrant says so first
            raise BodyValidationError(
                f"sparse_vectors.{name}.index.datatype",
                f"sparse vectors do not support the `{index['datatype']}` datatype",
            )
        try:
            out[name] = SparseVectorParams.model_validate(merged | {"index": index or None})
        except ValidationError as exc:
            raise config_error(f"sparse_vectors.{name}", exc) from None
        index_params = out[name].index
        datatype = None if index_params is None else index_params.datatype
        if datatype not in (None, "float32"):
            raise UnsupportedFeature(f"sparse datatype {datatype!r} (stored as float32)")
    return out


def _patched_sparse(config: CollectionConfig, raw: Any) -> dict[str, Any]:
    """A PATCH of existing sparse vectors (Qdrant adds none this way)."""
    if isinstance(raw, Mapping):
        for name in raw:
            if name not in config.sparse_vectors:
                raise BadRequest(f"Wrong input: Not existing vector name error: {name}")
    updated = _sparse_vectors(raw, config.sparse_vectors)
    merged = dict(config.sparse_vectors) | updated
    return {name: params.model_dump() for name, params in merged.items()}


def _check_names(vectors: Mapping[str, Any], sparse: Mapping[str, Any]) -> None:
    both = sorted(set(vectors) & set(sparse))
    if both:
        raise BadRequest(
            f"Wrong input: {both[0]!r} is both a dense and a sparse vector name; "
            "names must be unique"
        )
    if DEFAULT_VECTOR in sparse:
        raise BadRequest("Wrong input: a sparse vector needs a non-empty name")


def _check_vector_params(name: str, params: VectorParams, max_vector_size: int) -> None:
    label = _label(name, "vector {!r}", "vector")
    if params.size > max_vector_size:
        raise BadRequest(
            f"Wrong input: {label} size {params.size} exceeds the limit of {max_vector_size}"
        )
    if params.multivector_config is not None:
        _check_multivector(label, params)
    check_datatype(label, params)


def check_datatype(label: str, params: VectorParams) -> None:
    """A dense or multi-vector ``datatype`` Quiver stores (``index/datatypes.py``; turbo4
    except under Manhattan); turbo8 / turbo16 and uint8 under Cosine (Qdrant keeps the
    raw bytes and normalises at scoring time, which Quiver's normalise-at-ingest path
    cannot) are refused by name, an unknown name as Qdrant's parser refuses it."""
    datatype = params.datatype
    if datatype is None or datatype in DATATYPES:
        if datatype == "uint8" and params.distance is Distance.COSINE:
            raise UnsupportedFeature(f"{label}: datatype 'uint8' with Cosine distance")
        return
    if datatype in TURBO_DATATYPES:
        _check_turbo_storage(label, params)
        return
    if datatype in REFUSED_DATATYPES:
        raise UnsupportedFeature(f"{label}: datatype {datatype!r} (TurboQuant storage)")
    names = (*DATATYPES, *sorted(TURBO_DATATYPES), *sorted(REFUSED_DATATYPES))
    known = ", ".join(f"`{name}`" for name in names)
    raise BadRequest(
        f"Format error in JSON body: {label}.datatype: unknown variant `{datatype}`, "
        f"expected one of {known}"
    )


def _check_turbo_storage(label: str, params: VectorParams) -> None:
    """``turbo4`` is stored as codes: a dense vector's rows, and each token of a
    multi-vector (cast on write as a dense row is; the MaxSim index holds its code and
    norm, as Qdrant's multi turbo storage does, ADR 0018). Manhattan is refused by name
    (no TurboQuant walk)."""
    if params.distance is Distance.MANHATTAN:
        raise UnsupportedFeature(f"{label}: datatype {params.datatype!r} with Manhattan distance")


_VECTOR_DIFF = frozenset({"hnsw_config", "quantization_config", "on_disk", "memory"})
"""What a PATCH may change of an existing vector (Qdrant's ``VectorParamsDiff``)."""


def _patched_vectors(config: CollectionConfig, raw: Any) -> dict[str, Any]:
    """Per-vector params of a PATCH (``vectors: {name: {hnsw_config, quantization_config,
    on_disk}}``): knobs it sends change, others stay; an ``hnsw_config`` of ``{}`` and a
    ``quantization_config`` of ``"Disabled"`` remove the vector's own. A changed graph
    or quantization changes the index spec, so the segments are rebuilt in the
    background."""
    if not isinstance(raw, Mapping):
        raise BadRequest("Wrong input: `vectors` must map vector names to their params")
    vectors = dict(config.vectors)
    for name, diff in raw.items():
        if name not in vectors:
            raise BadRequest(f"Wrong input: Not existing vector name error: {name}")
        if not isinstance(diff, Mapping) or not set(diff) <= _VECTOR_DIFF:
            raise BadRequest(
                f"Wrong input: vector {name!r}: a PATCH changes only "
                f"{', '.join(sorted(_VECTOR_DIFF))}"
            )
        current = vectors[name]
        updates: dict[str, Any] = {}
        if diff.get("on_disk") is not None:
            updates["on_disk"] = bool(diff["on_disk"])
        if diff.get("memory") is not None:
            updates["memory"] = _memory_tier(name, diff["memory"])
        if diff.get("hnsw_config") is not None:
            given = diff["hnsw_config"]
            updates["hnsw_config"] = (current.hnsw_config or {}) | given if given else None
        if diff.get("quantization_config") is not None:
            given = diff["quantization_config"]
            updates["quantization_config"] = None if given == "Disabled" else given
        vectors[name] = current.model_copy(update=updates)
        _check_vector_overrides(config, name, vectors[name])
    return {name: params.model_dump() for name, params in vectors.items()}


def _memory_tier(name: str, value: Any) -> MemoryTier:
    """A PATCH's ``memory`` of a vector, checked (``model_copy`` does not validate)."""
    if value not in MEMORY_TIERS:
        raise BadRequest(
            f"Wrong input: vector {name!r}: `memory` must be one of {', '.join(MEMORY_TIERS)}"
        )
    return value  # type: ignore[no-any-return]


def _check_vector_overrides(config: CollectionConfig, name: str, params: VectorParams) -> None:
    """A vector's own ``hnsw_config`` / ``quantization_config``: valid knobs, on an
    ``hnsw`` collection (the only index type that builds each vector its own way), or
    a multi-vector's on a ``muvera`` one too (``config.multi_overrides``)."""
    label = _label(name, "vector {!r}", "vector")
    if params.hnsw_config is None and params.quantization_config is None:
        return
    types = ("hnsw", "muvera") if params.is_multi else ("hnsw",)
    if config.index.type not in types:
        raise UnsupportedFeature(
            f"{label}: per-vector `hnsw_config` / `quantization_config` with "
            f"`index.type` {config.index.type!r} (set them on the collection)"
        )
    if params.hnsw_config is not None:
        graph = config.hnsw_config.model_dump() | dict(params.hnsw_config)
        try:
            HnswConfig.model_validate(graph, context=REQUEST)
        except ValidationError as exc:
            raise config_error(f"vectors.{name}.hnsw_config", exc) from None
    if params.quantization_config is not None:
        quantization = parse_quantization(params.quantization_config)
        check_for_vectors(quantization, [params.distance])


def _check_multivector(label: str, params: VectorParams) -> None:
    """Qdrant's ``multivector_config``: MaxSim is the only comparator it defines; Quiver
    computes it from inner products, so the vector must use Cosine or Dot."""
    assert params.multivector_config is not None
    comparator = params.multivector_config.get("comparator")
    if set(params.multivector_config) != {"comparator"} or comparator != "max_sim":
        raise BadRequest(
            f'Wrong input: {label}: `multivector_config` must be {{"comparator": "max_sim"}}, '
            f"got {params.multivector_config}"
        )
    if params.distance not in (Distance.COSINE, Distance.DOT):
        raise UnsupportedFeature(
            f"{label}: multi-vectors with the {params.distance.value} distance "
            "(MaxSim is offered for Cosine and Dot)"
        )


def _collection_params(params: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(params) - _PATCHABLE_PARAMS
    if unknown:
        raise BadRequest(f"Wrong input: unknown collection params: {', '.join(sorted(unknown))}")
    given = {k: v for k, v in params.items() if k != "read_fan_out_factor" and v is not None}
    return checked_fields(CollectionConfig, given, "params")


def _quantization(raw: Any, config: CollectionConfig) -> QuantizationConfig | None:
    """A new ``quantization_config``: Qdrant's object, or ``"Disabled"`` to remove it."""
    if raw == "Disabled":
        return None
    if not isinstance(raw, dict):
        raise BadRequest('Wrong input: `quantization_config` must be an object or "Disabled"')
    parsed = parse_quantization(raw)
    check_for_vectors(parsed, [params.distance for params in config.vectors.values()])
    return parsed


def _label(name: str, named: str, unnamed: str = "") -> str:
    """How an error names a vector: by name when it has one."""
    return named.format(name) if name else unnamed
