"""What a sealed segment's indexes are built with: one typed spec per backend kind.

A collection's config yields the spec its segments should have
(``CollectionConfig.index_spec``); a segment carries the spec it was built with, read
from its manifest. A difference means a rebuild, so the on-disk form is fixed: a spec
serialises (``to_manifest``) to exactly the dict earlier builds wrote::

    {"type": "hnsw", "params": {"m": 16, "ef_construct": 100}, "insertion_order": "none"}

and such a dict reads back (``read_spec``) equal to the spec today's config makes, so
an upgrade rebuilds nothing. ``params`` are the keyword arguments of the backend's
params dataclass (``index/registry.py``).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, TypeAdapter, ValidationError, model_serializer

from index.insertion_order import InsertionOrder
from index.multivector import TokenStorage
from index.quantization import QUANTIZED_BACKENDS
from server.engine.knobs import Frozen, GraphParams, LeanVecKnobs, MuveraKnobs

log = logging.getLogger(__name__)

QuantizedKind = Literal["hnsw_sq8", "hnsw_pq", "hnsw_binary", "hnsw_rabitq", "hnsw_turbo"]
assert set(get_args(QuantizedKind)) == {cls.kind for cls in QUANTIZED_BACKENDS.values()}


class NoParams(Frozen):
    pass


class QuantizedSpecParams(GraphParams):
    """``QuantizedParams`` fields; each method sets its own (``quantile`` for scalar,
    ``compression`` for product, ``rabitq_bits`` for RaBitQ, ``turbo_bits`` for
    TurboQuant) and only those are written."""

    always_ram: bool | None = None
    quantile: float | None = None
    compression: int | None = None
    rabitq_bits: int | None = None
    turbo_bits: float | None = None
    storage: Literal["turbo4"] | None = None
    """``hnsw_turbo`` for a ``datatype: turbo4`` vector: rows held as codes only."""

    @model_serializer(mode="wrap")
    def _only_set(self, handler: Any) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        return {k: v for k, v in dumped.items() if k in self.model_fields_set}


class LeanVecSpecParams(LeanVecKnobs, GraphParams):
    pass


class MuveraSpecParams(MuveraKnobs, GraphParams):
    storage: TokenStorage = "float32"
    """Token storage for re-ranking (the collection's ``index.secondary``)."""


class VectorOverride(Frozen):
    """A dense vector built unlike the collection's spec says (its own per-vector
    ``hnsw_config`` / ``quantization_config``): the backend kind and its params."""

    type: str
    params: dict[str, Any]


class _Spec(Frozen):
    insertion_order: InsertionOrder = "none"
    vectors: dict[str, VectorOverride] = Field(default_factory=dict)
    """Per vector name, where it differs: written to a manifest only when not empty."""
    layout: dict[str, Any] = Field(default_factory=dict)
    """Tenant layout (``tenant_layout.py``): ``tenant``, the ``is_tenant`` field rows are
    grouped by; ``payload_graphs``, per-value graphs to build. Omitted when empty."""

    @model_serializer(mode="wrap")
    def _ordered(self, handler: Any) -> dict[str, Any]:
        return _in_manifest_order(handler(self))

    def to_manifest(self) -> dict[str, Any]:
        """The dict a segment manifest stores (see the module docstring)."""
        return self.model_dump(mode="json")

    def backend_params(self) -> dict[str, Any]:
        """Keyword arguments of the backend's params dataclass."""
        params: dict[str, Any] = self.model_dump(mode="json")["params"]
        return params

    def backend_of(self, name: str) -> tuple[str, dict[str, Any]]:
        """The backend kind and params vector ``name`` is built with."""
        override = self.vectors.get(name)
        if override is not None:
            return override.type, dict(override.params)
        kind: str = self.model_dump()["type"]
        return kind, self.backend_params()


class FlatSpec(_Spec):
    type: Literal["flat"] = "flat"
    params: NoParams = NoParams()


class HnswSpec(_Spec):
    type: Literal["hnsw"] = "hnsw"
    params: GraphParams


class QuantizedSpec(_Spec):
    type: QuantizedKind
    params: QuantizedSpecParams


class LeanVecSpec(_Spec):
    type: Literal["leanvec"] = "leanvec"
    params: LeanVecSpecParams
    training: int = 0
    """The collection's ``training_generation``: bumping it retrains every segment."""


class MuveraSpec(_Spec):
    type: Literal["muvera"] = "muvera"
    params: MuveraSpecParams


IndexSpec = Annotated[
    FlatSpec | HnswSpec | QuantizedSpec | LeanVecSpec | MuveraSpec, Field(discriminator="type")
]
"""The spec of one backend kind, told apart by ``type``."""

_ADAPTER: TypeAdapter[IndexSpec] = TypeAdapter(IndexSpec)


class UnreadableSpec(Frozen):
    """A manifest spec this build cannot read (never equal to a current spec, so the
    segment is rebuilt, as any stale spec is); written back unchanged."""

    type: str
    raw: dict[str, Any]

    def to_manifest(self) -> dict[str, Any]:
        return self.raw


SegmentSpec = IndexSpec | UnreadableSpec
"""What a sealed segment was built with."""


def read_spec(raw: dict[str, Any] | None) -> SegmentSpec | None:
    """A manifest's ``spec`` (None: the segment is not indexed yet)."""
    if raw is None:
        return None
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError:
        log.warning("unreadable index spec %r in a segment manifest: it will be rebuilt", raw)
        return UnreadableSpec(type=str(raw.get("type")), raw=raw)


def _in_manifest_order(dumped: dict[str, Any]) -> dict[str, Any]:
    """Key order of the dicts earlier builds wrote: type, params, insertion_order, training."""
    keys = ("type", "params", "insertion_order", "training", "vectors", "layout")
    optional = ("vectors", "layout")
    return {k: dumped[k] for k in keys if k in dumped and (k not in optional or dumped[k])}
