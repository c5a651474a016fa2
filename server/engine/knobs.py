"""The index knobs a user may set, each declared once, with the range a request may ask.

Who declares what, and why this way round: ``index/`` holds the backends' parameter
dataclasses (``HnswParams``, ``LeanVecParams``, ``MuveraIndexParams``, ``QuantizedParams``)
and must stay free of ``server/`` and of pydantic, so the server cannot be the source
they derive from. The *defaults* therefore come from those dataclasses (read below,
never retyped), while the *names, types and ranges a request may set* are declared
here, once: a range is a property of what one request may ask a server to build
(Qdrant's limits, and what fits in one request's memory), not of the algorithm. The
same groups serve the collection config (``config.IndexConfig`` inherits them), the
index spec (``index_spec.py``) and PATCH merging, and a unit test pins each group's
names and defaults to its backend dataclass.

Ranges are checked only when a *request* is validated (``REQUEST`` context): a
config stored by an older build that allowed more still opens, so an upgrade never
makes a collection unreadable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
)

from index.hnsw_faiss import HnswParams
from index.leanvec import Solver, Variant
from index.leanvec_index import LeanVecParams
from index.muvera_index import InnerKind, MuveraIndexParams
from index.rerank import SecondaryFormat
from server.errors import ConfigValidationError

MAX_M = 128
"""HNSW links per node. faiss keeps 2 x m int32 links a vector on the base layer, so
m 128 is 1 KiB of graph a vector before the vector itself; recall stops improving
long before (typical 8-64). Qdrant sets no upper bound; ``m: 1000000`` failed every
build and was retried forever."""
MAX_EF_CONSTRUCT = 4096
"""Build beam width; build time grows linearly with it (typical 64-512)."""
MAX_DIMS = 65_536
"""Largest LeanVec primary / MUVERA output dimension: the largest vector a
collection may hold (``QUIVER_MAX_VECTOR_SIZE``'s default); MUVERA's encodings are
also checked against ``config_requests.MAX_FDE_DIM`` as a product of its knobs."""
MAX_D_PROJ = 1024
"""MUVERA's per-block projection (typical 8-32)."""
MAX_FACTOR = 1000.0
"""Candidates per result re-ranked (LeanVec ``rerank_factor``, MUVERA
``candidates_factor``, a query's ``oversampling``): a query re-ranks limit x factor
rows, so the factor bounds one request's re-rank work and buffers."""
MAX_HNSW_EF = 100_000
"""A query's ``params.hnsw_ef``: the beam faiss keeps per query (ids and distances)."""
MAX_SEED = 2**32 - 1
"""numpy's seed range."""
MAX_THREADS = 1024
MAX_COUNT = 10**9
"""Thresholds and sizes counted in points or KB: far beyond one node, below int32's
range that faiss and SQLite take without surprise."""

REQUEST: dict[str, Any] = {"request": True}
"""Validation context of a create / PATCH request: ranges are enforced."""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def in_range(low: float | None, high: float | None = None) -> AfterValidator:
    """A range checked on requests only (see the module docstring)."""

    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None or not (info.context or {}).get("request"):
            return value
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"must be in {_range(low, high)}, got {value}")
        return value

    return AfterValidator(check)


def _range(low: float | None, high: float | None) -> str:
    if high is None:
        return f">= {low}"
    if low is None:
        return f"<= {high}"
    return f"[{low}, {high}]"


_HNSW = HnswParams()
_LEANVEC = LeanVecParams()
_MUVERA = MuveraIndexParams()


class GraphParams(Frozen):
    """The HNSW graph of every graph backend (``hnsw_config``'s m / ef_construct)."""

    m: Annotated[int, in_range(0, MAX_M)] = _HNSW.m
    ef_construct: Annotated[int, in_range(4, MAX_EF_CONSTRUCT)] = _HNSW.ef_construct


class LeanVecKnobs(Frozen):
    """LeanVec's knobs; trade-offs in ``index.leanvec_index.LeanVecParams``."""

    dims: Annotated[int | None, in_range(1, MAX_DIMS)] = _LEANVEC.dims
    variant: Variant = _LEANVEC.variant
    primary_bits: Literal[8, 4] = _LEANVEC.primary_bits
    secondary: SecondaryFormat = _LEANVEC.secondary
    rerank_factor: Annotated[float, in_range(1.0, MAX_FACTOR)] = _LEANVEC.rerank_factor
    ood_solver: Solver = _LEANVEC.ood_solver

    def leanvec_params(self) -> dict[str, Any]:
        return own_fields(self, LeanVecKnobs)


class MuveraKnobs(Frozen):
    """MUVERA's knobs; trade-offs in ``index.muvera.MuveraParams`` and
    ``index.muvera_index.MuveraIndexParams``."""

    k_sim: Annotated[int, in_range(0, 10)] = _MUVERA.k_sim
    d_proj: Annotated[int | None, in_range(0, MAX_D_PROJ)] = _MUVERA.d_proj
    repetitions: Annotated[int, in_range(1, 64)] = _MUVERA.repetitions
    fill_empty: bool = _MUVERA.fill_empty
    final_dim: Annotated[int | None, in_range(1, MAX_DIMS)] = _MUVERA.final_dim
    seed: Annotated[int, in_range(0, MAX_SEED)] = _MUVERA.seed
    candidates_factor: Annotated[float, in_range(1.0, MAX_FACTOR)] = _MUVERA.candidates_factor
    inner: InnerKind = _MUVERA.inner

    def muvera_params(self) -> dict[str, Any]:
        return own_fields(self, MuveraKnobs)


def own_fields(model: BaseModel, group: type[BaseModel]) -> dict[str, Any]:
    """The values of ``group``'s fields in ``model`` (a class that inherits the group)."""
    return {name: getattr(model, name) for name in group.model_fields}


def checked_fields(
    model: type[BaseModel], values: Mapping[str, Any], section: str = ""
) -> dict[str, Any]:
    """Some top-level fields of ``model``, validated as a request would be (a 422
    naming the field); for fields given one by one, beside the sections."""
    checked = {}
    for name, value in values.items():
        field = model.model_fields[name]
        annotated: Any = field.annotation
        if field.metadata:
            annotated = Annotated[field.annotation, *field.metadata]
        adapter: TypeAdapter[Any] = TypeAdapter(annotated)
        try:
            checked[name] = adapter.validate_python(value, context=REQUEST)
        except ValidationError as exc:
            raise config_error(f"{section}.{name}" if section else name, exc) from None
    return checked


def config_error(section: str, exc: ValidationError) -> ConfigValidationError:
    """A pydantic error of one config section as a 422 that names each field."""
    parts = []
    for error in exc.errors()[:5]:
        loc = ".".join(str(p) for p in (section, *error["loc"]) if p != "")
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {message}")
    more = len(exc.errors()) - 5
    return ConfigValidationError("; ".join(parts) + (f"; and {more} more" if more > 0 else ""))
