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

from dataclasses import fields
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, ValidationInfo

from index.hnsw_faiss import HnswParams
from index.leanvec import Solver, Variant
from index.leanvec_index import LeanVecParams
from index.muvera_index import InnerKind, MuveraIndexParams
from index.rerank import SecondaryFormat
from server.errors import ConfigValidationError

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

    m: Annotated[int, in_range(0)] = _HNSW.m
    ef_construct: Annotated[int, in_range(4)] = _HNSW.ef_construct


class LeanVecKnobs(Frozen):
    """LeanVec's knobs; trade-offs in ``index.leanvec_index.LeanVecParams``."""

    dims: Annotated[int | None, in_range(1)] = _LEANVEC.dims
    variant: Variant = _LEANVEC.variant
    primary_bits: Literal[8, 4] = _LEANVEC.primary_bits
    secondary: SecondaryFormat = _LEANVEC.secondary
    rerank_factor: Annotated[float, in_range(1.0)] = _LEANVEC.rerank_factor
    ood_solver: Solver = _LEANVEC.ood_solver

    def leanvec_params(self) -> dict[str, Any]:
        return own_fields(self, LeanVecKnobs)


class MuveraKnobs(Frozen):
    """MUVERA's knobs; trade-offs in ``index.muvera.MuveraParams`` and
    ``index.muvera_index.MuveraIndexParams``."""

    k_sim: Annotated[int, in_range(0, 10)] = _MUVERA.k_sim
    d_proj: Annotated[int | None, in_range(0)] = _MUVERA.d_proj
    repetitions: Annotated[int, in_range(1, 64)] = _MUVERA.repetitions
    fill_empty: bool = _MUVERA.fill_empty
    final_dim: Annotated[int | None, in_range(1)] = _MUVERA.final_dim
    seed: Annotated[int, in_range(0)] = _MUVERA.seed
    candidates_factor: Annotated[float, in_range(1.0)] = _MUVERA.candidates_factor
    inner: InnerKind = _MUVERA.inner

    def muvera_params(self) -> dict[str, Any]:
        return own_fields(self, MuveraKnobs)


def own_fields(model: BaseModel, group: type[BaseModel]) -> dict[str, Any]:
    """The values of ``group``'s fields in ``model`` (a class that inherits the group)."""
    return {name: getattr(model, name) for name in group.model_fields}


def backend_field_names(params_class: type[Any]) -> set[str]:
    """Field names of an ``index/`` params dataclass (for the test that pins the groups)."""
    return {f.name for f in fields(params_class)}


def config_error(section: str, exc: ValidationError) -> ConfigValidationError:
    """A pydantic error of one config section as a 422 that names each field."""
    parts = []
    for error in exc.errors()[:5]:
        loc = ".".join(str(p) for p in (section, *error["loc"]) if p != "")
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {message}")
    more = len(exc.errors()) - 5
    return ConfigValidationError("; ".join(parts) + (f"; and {more} more" if more > 0 else ""))
