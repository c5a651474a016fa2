"""Which host names and web pages may reach the API.

Three pure-ASGI layers, outermost first (``main.py`` wires them):

- :class:`HostAllowList` (``QUIVER_ALLOWED_HOSTS``): a request naming another ``Host`` is
  answered 421 before anything else runs. Without it, DNS rebinding lets a web page reach a
  Quiver on localhost under the page's own host name, as a same-origin request.
- Starlette's ``CORSMiddleware``, only when ``QUIVER_CORS_ORIGINS`` is set: preflight answers
  and CORS headers for those origins. Unset: no CORS header is ever sent, so no page of
  another origin can read an answer or send ``application/json``.
- :class:`CrossOriginGuard`: a write (POST, PUT, PATCH, DELETE) whose ``Origin`` is neither
  the server's own nor a configured one is refused with 403. The media-type check in
  ``middleware.py`` stops cross-site bodies; this also stops the body-less POSTs a page may
  send without a preflight (create a snapshot, cancel a job). Clients outside a browser
  send no ``Origin`` and are not affected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from starlette.middleware.cors import CORSMiddleware

from server.api.middleware import ASGIApp, Receive, Scope, Send, reject

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CORS_HEADERS = ("api-key", "authorization", "content-type")


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def host_name(host: str) -> str:
    """``Host`` without its port, lower case (``[::1]:6333`` -> ``[::1]``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostAllowList:
    """Answer 421 to a request whose ``Host`` is not listed (``*.example.com``: subdomains)."""

    def __init__(self, app: ASGIApp, *, hosts: Sequence[str]) -> None:
        self.app = app
        self.hosts = tuple(h.lower() for h in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.allowed(header(scope, b"host")):
            await reject(send, 421, "Misdirected request: this server does not serve that host")
            return
        await self.app(scope, receive, send)

    def allowed(self, host: str | None) -> bool:
        if host is None:
            return False
        name = host_name(host)
        for pattern in self.hosts:
            if pattern == "*" or pattern == name:
                return True
            if pattern.startswith("*.") and name.endswith(pattern[1:]):
                return True
        return False


class CrossOriginGuard:
    """Refuse (403) a write sent by a web page of a foreign, unconfigured origin."""

    def __init__(self, app: ASGIApp, *, origins: Sequence[str]) -> None:
        self.app = app
        self.origins = frozenset(o.rstrip("/").lower() for o in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            origin = header(scope, b"origin")
            if origin is not None and not self.allowed(origin, scope):
                await reject(
                    send,
                    403,
                    f"Forbidden: cross-origin request from {origin!r}; "
                    "list the origin in QUIVER_CORS_ORIGINS to allow it",
                )
                return
        await self.app(scope, receive, send)

    def allowed(self, origin: str, scope: Scope) -> bool:
        origin = origin.strip().rstrip("/").lower()
        if "*" in self.origins or origin in self.origins:
            return True
        host = header(scope, b"host")
        return host is not None and urlsplit(origin).netloc == host.strip().lower()


def cors_options(origins: Sequence[str]) -> dict[str, Any]:
    """Options for Starlette's ``CORSMiddleware``: the configured origins, every method
    of the API, the headers Quiver reads; no cookies (credentials travel in headers)."""
    return {
        "allow_origins": list(origins),
        "allow_methods": ["GET", "POST", "PUT", "PATCH", "DELETE"],
        "allow_headers": list(CORS_HEADERS),
        "allow_credentials": False,
        "max_age": 600,
    }


__all__ = ["CORSMiddleware", "CrossOriginGuard", "HostAllowList", "cors_options"]
