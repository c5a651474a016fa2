"""Who is calling: the API key, the read-only key, or a JWT signed with the API key.

Follows Qdrant (``src/common/auth``): the credential is the ``api-key`` header or an
``Authorization: Bearer`` token. The full key grants global ``m``, the read-only key global
``r``. With ``QUIVER_JWT_RBAC=true`` any other value is read as a JWT: HS256, signed with
the API key, ``exp`` checked when present, ``access`` either ``"r"`` / ``"m"`` or a list of
``{"collection": name, "access": "r" | "rw"}``; a token without ``access`` is global ``m``,
as in Qdrant (only a holder of the API key can sign one). Qdrant's ``payload`` constraints
(deprecated there) and ``value_exists`` checks are not supported: such a token is refused
rather than read more broadly than it was meant.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from server.api.access import FULL, READ_ONLY, Grant

MISSING = "Must provide a valid API key in the 'api-key' header or an Authorization bearer token"
INVALID = "Must provide a valid API key or JWT: the one given is not valid"
EXPIRED = "Must provide a valid API key or JWT: the token has expired"


@dataclass(frozen=True, slots=True)
class Denied:
    """No valid credentials: a 401 with this message."""

    message: str


class Authenticator:
    """Turns a request's headers into a :class:`~server.api.access.Grant` or a denial."""

    def __init__(
        self, api_key: str | None, read_only_api_key: str | None = None, jwt_rbac: bool = False
    ) -> None:
        self.api_key = api_key.encode() if api_key else None
        self.read_only_key = read_only_api_key.encode() if read_only_api_key else None
        self.jwt_secret = api_key if jwt_rbac and api_key else None

    @property
    def enabled(self) -> bool:
        """Without any key every caller holds everything (no authentication)."""
        return self.api_key is not None or self.read_only_key is not None

    def authenticate(self, headers: Mapping[bytes, bytes]) -> Grant | Denied:
        if not self.enabled:
            return FULL
        given = _credential(headers)
        if given is None:
            return Denied(MISSING)
        if self.api_key is not None and hmac.compare_digest(given, self.api_key):
            return FULL
        if self.read_only_key is not None and hmac.compare_digest(given, self.read_only_key):
            return READ_ONLY
        if self.jwt_secret is None:
            return Denied(INVALID)
        return grant_of_jwt(given, self.jwt_secret)


def grant_of_jwt(token: bytes, secret: str) -> Grant | Denied:
    """A JWT's grant: HS256 only (never ``none`` or a key-confusion algorithm)."""
    import jwt  # with cryptography ~9 MB of the process: loaded by the first JWT seen

    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"])
    except jwt.ExpiredSignatureError:
        return Denied(EXPIRED)
    except jwt.InvalidTokenError:
        return Denied(INVALID)
    if "value_exists" in claims:
        return Denied("Must provide a valid JWT: `value_exists` is not supported")
    return grant_of(claims.get("access", "m"))


def grant_of(access: Any) -> Grant | Denied:
    """Qdrant's ``access`` claim as a grant; anything malformed is a denial."""
    if access in ("r", "m"):
        return Grant(global_mode=access)
    if not isinstance(access, list):
        return Denied(f"Must provide a valid JWT: bad `access` claim {access!r}")
    collections: dict[str, str] = {}
    for entry in access:
        problem = _entry_problem(entry, collections)
        if problem is not None:
            return Denied(f"Must provide a valid JWT: {problem}")
        collections[entry["collection"]] = entry["access"]
    return Grant(collections=collections)


def _entry_problem(entry: Any, seen: Mapping[str, str]) -> str | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("collection"), str):
        return f"bad `access` entry {entry!r}"
    if entry.get("access") not in ("r", "rw"):
        return f"bad `access` mode in {entry!r} (expected r or rw)"
    if set(entry) - {"collection", "access"}:
        return "payload constraints in `access` are not supported"
    if entry["collection"] in seen:
        return f"collection {entry['collection']!r} is named twice in `access`"
    return None


def _credential(headers: Mapping[bytes, bytes]) -> bytes | None:
    given = headers.get(b"api-key")
    if given is None:
        bearer = headers.get(b"authorization", b"")
        given = bearer[7:].strip() if bearer[:7].lower() == b"bearer " else None
    return given or None
