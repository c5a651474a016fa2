"""Qdrant's ``quantization_config`` (plus Quiver's ``rabitq``), checked and turned into
the parameters of a quantized backend (``index/quantization.py``).

Wire shapes, one key each::

    {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}}
    {"product": {"compression": "x16", "always_ram": true}}
    {"binary": {"always_ram": true, "encoding": "one_bit"}}
    {"rabitq": {"bits": 2, "always_ram": true}}          # Quiver extension

Everything is validated when a collection is created or patched, so a stored config
is always one of these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from index.leanvec_index import LeanVecParams, check_params
from index.metrics import Distance
from index.muvera_index import MuveraIndexParams
from index.quantization import (
    COMPRESSIONS,
    QUANTIZED_BACKENDS,
    QuantizationMethod,
    QuantizedParams,
    check_supported,
)
from server.errors import BadRequest, UnsupportedFeature

if TYPE_CHECKING:
    from server.engine.config import CollectionConfig

_KNOWN: dict[str, set[str]] = {
    "scalar": {"type", "quantile", "always_ram"},
    "product": {"compression", "always_ram"},
    "binary": {"always_ram", "encoding", "query_encoding"},
    "rabitq": {"bits", "always_ram"},
}


def quantization_params(raw: dict[str, Any]) -> tuple[QuantizationMethod, dict[str, Any]]:
    """``(method, QuantizedParams fields)`` of a wire config, or a 400 naming the problem."""
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in _KNOWN:
        raise BadRequest(
            "Wrong input: `quantization_config` takes exactly one of "
            f"{', '.join(sorted(_KNOWN))}, got {_describe(raw)}"
        )
    method = cast(QuantizationMethod, next(iter(raw)))
    body = raw[method]
    if not isinstance(body, dict):
        raise BadRequest(f"Wrong input: `quantization_config.{method}` must be an object")
    unknown = set(body) - _KNOWN[method]
    if unknown:
        raise BadRequest(
            f"Wrong input: unknown field(s) in `quantization_config.{method}`: "
            f"{', '.join(sorted(unknown))}"
        )
    params: dict[str, Any] = {"always_ram": _optional_bool(body, method, "always_ram")}
    params |= _PARSERS[method](body)
    return method, params


def check_for_vectors(raw: dict[str, Any], distances: list[Distance]) -> None:
    """Refuse a method the collection's metrics cannot use (e.g. RaBitQ with Dot)."""
    method, fields = quantization_params(raw)
    for distance in distances:
        try:
            check_supported(method, distance, QuantizedParams(**fields))
        except ValueError as exc:
            raise BadRequest(f"Wrong input: quantization_config: {exc}") from None


MAX_FDE_DIM = 65_536


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
            label = f" (vector {name!r})" if name else ""
            raise BadRequest(f"Wrong input: index{label}: {exc}") from None


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
            label = f"vector {name!r}" if name else "the vector"
            raise BadRequest(
                f"Wrong input: index: MUVERA encodings of {label} would have {encoder_dim} "
                f"dimensions (repetitions x 2^k_sim x d_proj), more than {MAX_FDE_DIM}; "
                "lower them or set final_dim"
            )


def backend_kind(method: QuantizationMethod) -> str:
    return QUANTIZED_BACKENDS[method].kind


def _scalar(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("type") != "int8":
        raise BadRequest('Wrong input: `quantization_config.scalar.type` must be "int8"')
    quantile = body.get("quantile")
    if quantile is not None and (
        not isinstance(quantile, int | float)
        or isinstance(quantile, bool)
        or not 0.5 <= quantile <= 1
    ):
        raise BadRequest(
            "Wrong input: `quantization_config.scalar.quantile` must be a number in [0.5, 1]"
        )
    return {"quantile": None if quantile is None else float(quantile)}


def _product(body: dict[str, Any]) -> dict[str, Any]:
    allowed = [f"x{c}" for c in COMPRESSIONS]
    compression = body.get("compression")
    if compression not in allowed:
        raise BadRequest(
            "Wrong input: `quantization_config.product.compression` must be one of "
            f"{', '.join(allowed)}, got {compression!r}"
        )
    return {"compression": int(compression[1:])}


def _binary(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("encoding") not in (None, "one_bit"):
        raise UnsupportedFeature(f"binary quantization encoding {body['encoding']!r}")
    if body.get("query_encoding") not in (None, "default", "binary"):
        raise UnsupportedFeature(f"binary quantization query_encoding {body['query_encoding']!r}")
    return {}


def _rabitq(body: dict[str, Any]) -> dict[str, Any]:
    bits = body.get("bits")
    if bits is not None and (
        not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 9
    ):
        raise BadRequest("Wrong input: `quantization_config.rabitq.bits` must be an integer 1..9")
    return {"rabitq_bits": bits}


_PARSERS = {"scalar": _scalar, "product": _product, "binary": _binary, "rabitq": _rabitq}


def _optional_bool(body: dict[str, Any], method: str, key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise BadRequest(f"Wrong input: `quantization_config.{method}.{key}` must be a boolean")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _describe(raw: Any) -> str:
    if isinstance(raw, dict):
        return "{" + ", ".join(repr(k) for k in raw) + "}"
    return type(raw).__name__
