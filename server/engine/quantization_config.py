"""Qdrant's ``quantization_config`` (plus Quiver's ``rabitq``) as one typed union, and
the parameters of the quantized backend each kind builds (``index/quantization.py``).

Wire shapes, one key each (the key is the discriminator)::

    {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}}
    {"product": {"compression": "x16", "always_ram": true}}
    {"binary": {"always_ram": true, "encoding": "one_bit"}}
    {"turbo": {"bits": "bits4", "always_ram": true}}      # TurboQuant (Qdrant 1.19)
    {"rabitq": {"bits": 2, "always_ram": true}}          # Quiver extension

A request's object is checked by :func:`parse_quantization` (a 400 naming the
problem); a stored one loads through the same models, and serialises back to the
object the user sent (unset fields are left out, as Qdrant does).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    model_serializer,
)

from index.metrics import Distance
from index.quantization import (
    COMPRESSIONS,
    QUANTIZED_BACKENDS,
    QuantizationMethod,
    QuantizedParams,
    check_supported,
)
from server.engine.knobs import Frozen
from server.errors import BadRequest, UnsupportedFeature

Compression = Literal["x4", "x8", "x16", "x32", "x64"]


class _Body(Frozen):
    """A method's object; ``None`` fields are left out when written back."""

    always_ram: bool | None = None

    @model_serializer(mode="wrap")
    def _without_nones(self, handler: Any) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        return {k: v for k, v in dumped.items() if v is not None}


class ScalarBody(_Body):
    type: Literal["int8"]
    quantile: Annotated[float, Field(strict=True, ge=0.5, le=1.0)] | None = None
    """Clip each dimension to this central quantile before choosing the 8-bit steps."""


class ProductBody(_Body):
    compression: Compression


class BinaryBody(_Body):
    encoding: Literal["one_bit"] | None = None
    query_encoding: Literal["default", "binary"] | None = None


TurboBits = Literal["bits1", "bits1_5", "bits2", "bits4", "bits8"]
"""Qdrant's ``TurboQuantBitSize`` (1.19 names the first four; ``bits8`` is in
qdrant-client's models since 1.20); None = ``bits4``, Qdrant's default."""


class TurboBody(_Body):
    bits: TurboBits | None = None
    memory: Literal["cold", "cached", "pinned"] | None = None
    """Qdrant's placement of the codes; recorded (codes are always in RAM here)."""


class RabitqBody(_Body):
    bits: Annotated[int, Field(strict=True, ge=1, le=9)] | None = None
    """Bits per dimension; None = the most within 1/8 of float32."""


class _Quantization(Frozen):
    method: ClassVar[QuantizationMethod]

    @property
    def body(self) -> _Body:
        body: _Body = getattr(self, self.method)
        return body

    @property
    def backend_kind(self) -> str:
        """The backend a quantized HNSW segment is built with (``hnsw_sq8``, ...)."""
        return QUANTIZED_BACKENDS[self.method].kind

    def backend_params(self) -> dict[str, Any]:
        """The ``QuantizedParams`` fields this method sets (part of the index spec)."""
        return {"always_ram": self.body.always_ram} | self._method_params()

    def _method_params(self) -> dict[str, Any]:
        return {}


class ScalarQuantization(_Quantization):
    method: ClassVar[QuantizationMethod] = "scalar"
    scalar: ScalarBody

    def _method_params(self) -> dict[str, Any]:
        return {"quantile": self.scalar.quantile}


class ProductQuantization(_Quantization):
    method: ClassVar[QuantizationMethod] = "product"
    product: ProductBody

    def _method_params(self) -> dict[str, Any]:
        return {"compression": int(self.product.compression[1:])}


class BinaryQuantization(_Quantization):
    method: ClassVar[QuantizationMethod] = "binary"
    binary: BinaryBody


class TurboQuantization(_Quantization):
    method: ClassVar[QuantizationMethod] = "turbo"
    turbo: TurboBody

    def _method_params(self) -> dict[str, Any]:
        bits = self.turbo.bits
        return {"turbo_bits": None if bits is None else float(bits[4:].replace("_", "."))}


class RabitqQuantization(_Quantization):
    method: ClassVar[QuantizationMethod] = "rabitq"
    rabitq: RabitqBody

    def _method_params(self) -> dict[str, Any]:
        return {"rabitq_bits": self.rabitq.bits}


_KINDS: dict[str, type[_Quantization]] = {
    cls.method: cls
    for cls in (
        ScalarQuantization,
        ProductQuantization,
        BinaryQuantization,
        TurboQuantization,
        RabitqQuantization,
    )
}
assert sorted(f"x{c}" for c in COMPRESSIONS) == sorted(Compression.__args__)  # type: ignore[attr-defined]


def _method_of(raw: Any) -> str | None:
    if isinstance(raw, dict) and len(raw) == 1:
        return str(next(iter(raw)))
    return getattr(raw, "method", None)


QuantizationConfig = Annotated[
    Annotated[ScalarQuantization, Tag("scalar")]
    | Annotated[ProductQuantization, Tag("product")]
    | Annotated[BinaryQuantization, Tag("binary")]
    | Annotated[TurboQuantization, Tag("turbo")]
    | Annotated[RabitqQuantization, Tag("rabitq")],
    Discriminator(_method_of),
]
"""One of the five kinds, told apart by its single key."""

_ADAPTER: TypeAdapter[QuantizationConfig] = TypeAdapter(QuantizationConfig)


def parse_quantization(raw: Any) -> QuantizationConfig:
    """A request's ``quantization_config`` object, or a 400 naming the problem."""
    method = _method_of(raw) if isinstance(raw, dict) else None
    if method not in _KINDS:
        raise BadRequest(
            "Wrong input: `quantization_config` takes exactly one of "
            f"{', '.join(sorted(_KINDS))}, got {_describe(raw)}"
        )
    body = raw[method]
    if not isinstance(body, dict):
        raise BadRequest(f"Wrong input: `quantization_config.{method}` must be an object")
    body_model = _KINDS[method].model_fields[method].annotation
    unknown = set(body) - set(getattr(body_model, "model_fields", {}))
    if unknown:
        raise BadRequest(
            f"Wrong input: unknown field(s) in `quantization_config.{method}`: "
            f"{', '.join(sorted(unknown))}"
        )
    if method == "binary":
        _check_binary_encodings(body)
    if method == "turbo":
        _check_turbo_bits(body)
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"][1:])
        raise BadRequest(
            f"Wrong input: `quantization_config.{field}`: {error['msg']}, got {error['input']!r}"
        ) from None


def check_for_vectors(config: QuantizationConfig, distances: list[Distance]) -> None:
    """Refuse a method the collection's metrics cannot use (e.g. RaBitQ with Dot)."""
    params = QuantizedParams(**config.backend_params())
    for distance in distances:
        try:
            check_supported(config.method, distance, params)
        except ValueError as exc:
            raise BadRequest(f"Wrong input: quantization_config: {exc}") from None


def _check_binary_encodings(body: dict[str, Any]) -> None:
    """Qdrant's other binary encodings are valid requests Quiver does not build yet."""
    if body.get("encoding") not in (None, "one_bit"):
        raise UnsupportedFeature(f"binary quantization encoding {body['encoding']!r}")
    if body.get("query_encoding") not in (None, "default", "binary"):
        raise UnsupportedFeature(f"binary quantization query_encoding {body['query_encoding']!r}")


def _check_turbo_bits(body: dict[str, Any]) -> None:
    """An unknown bit width is Qdrant's serde error for the enum (a 400)."""
    bits = body.get("bits")
    if bits is not None and bits not in TurboBits.__args__:  # type: ignore[attr-defined]
        expected = ", ".join(f"`{name}`" for name in TurboBits.__args__)  # type: ignore[attr-defined]
        raise BadRequest(
            "Format error in JSON body: quantization_config.turbo.bits: "
            f"unknown variant `{bits}`, expected one of {expected}"
        )


def _describe(raw: Any) -> str:
    if isinstance(raw, dict):
        return "{" + ", ".join(repr(k) for k in raw) + "}"
    return type(raw).__name__
