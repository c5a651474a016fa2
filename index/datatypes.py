"""Vector element types (Qdrant's ``datatype``): what a stored value is, and how rows of
float32 become values of that type.

``float32`` keeps every value; ``float16`` rounds each value to the nearest half
(2 bytes a dimension); ``uint8`` keeps an integer 0..255 (1 byte a dimension), cast
from the given float as Qdrant casts (Rust's ``x as u8``: the fraction dropped toward
zero, values under 0 become 0 and over 255 become 255). Queries are cast the same way,
so a stored row and a query compare in the same values.

Inside ``index/`` the rows stay float32 arrays holding exactly the typed values
(``to_datatype``); a backend that stores compactly (``hnsw_faiss.HnswIndex`` with
``storage`` set) keeps them in faiss's ``ScalarQuantizer`` codes, ``QT_fp16`` or
``QT_8bit_direct``, which hold those values exactly and score them in native code.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import faiss
import numpy as np

from index.turbo import STORAGE_BITS, storage_cast

Datatype = Literal["float32", "float16", "uint8"]
"""The element types Quiver stores value by value (``turbo4``, a code per vector, is
``TURBO_DATATYPES``; ``turbo8`` / ``turbo16`` are ``REFUSED_DATATYPES``)."""

DATATYPES: tuple[Datatype, ...] = get_args(Datatype)
NARROW_DATATYPES: tuple[Datatype, ...] = ("float16", "uint8")

TURBO_DATATYPES = frozenset(STORAGE_BITS)
"""Qdrant's TurboQuant storage type ``turbo4``: the stored vector *is* its TurboQuant
code (random rotation, Lloyd-Max levels, the norm kept as a scale). Rows are cast on
write to the decoded code (``to_turbo``), as uint8 rows are cast, and an HNSW index
holds them as codes only (``hnsw_turbo`` with ``storage="turbo4"``, ADR 0018)."""

REFUSED_DATATYPES = frozenset({"turbo8", "turbo16"})
"""qdrant-client 1.20's wider TurboQuant storage types (Qdrant 1.19's server has only
``turbo4``): refused by name rather than stored under another type. The same codes
beside the originals are ``quantization_config.turbo`` (``index/turbo.py``)."""

BYTES_PER_VALUE: dict[Datatype, int] = {"float32": 4, "float16": 2, "uint8": 1}

_FAISS: Any = faiss
_SQ_TYPE_NAMES: dict[Datatype, str] = {"float16": "QT_fp16", "uint8": "QT_8bit_direct"}
"""Named, not read from faiss here: a server loads faiss at its first index, not here."""
_CODE_DTYPES: dict[Datatype, type[np.generic]] = {"float16": np.float16, "uint8": np.uint8}


def to_datatype(rows: np.ndarray, datatype: Datatype | None) -> np.ndarray:
    """``rows`` (finite float32) as the values ``datatype`` stores, still float32."""
    if datatype is None or datatype == "float32":
        return rows
    if datatype == "float16":
        with np.errstate(over="ignore"):  # beyond 65504 a half is inf, as in Qdrant
            rounded: np.ndarray = rows.astype(np.float16).astype(np.float32)
        return rounded
    cast: np.ndarray = np.clip(np.trunc(rows), 0.0, 255.0).astype(np.float32)
    return cast


def to_turbo(rows: np.ndarray, datatype: str) -> np.ndarray:
    """``rows`` (finite float32) as a ``TURBO_DATATYPES`` vector holds them: coded and
    decoded, so what is written, read back and searched is the code's value."""
    return storage_cast(rows, STORAGE_BITS[datatype])


def is_compact(datatype: Datatype) -> bool:
    """Whether faiss holds ``datatype`` in fewer bytes than float32."""
    return datatype in _SQ_TYPE_NAMES


def sq_type(datatype: Datatype) -> int:
    """faiss ``ScalarQuantizer`` type that holds ``datatype``'s values exactly."""
    return int(getattr(_FAISS.ScalarQuantizer, _SQ_TYPE_NAMES[datatype]))


def decode_codes(codes: np.ndarray, datatype: Datatype, dim: int) -> np.ndarray:
    """faiss SQ codes (bytes, ``(n * dim * size)``) of ``datatype`` -> ``(n, dim)``
    float32 values (a copy: the codes stay the only resident form)."""
    typed = codes.view(_CODE_DTYPES[datatype]).reshape(-1, dim)
    decoded: np.ndarray = typed.astype(np.float32)
    return decoded
