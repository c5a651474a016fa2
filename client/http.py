"""A small synchronous client for Quiver's REST API, for the ``quiver`` command.

Every call unwraps Qdrant's envelope: ``{"result": ..., "status": "ok"}`` gives the
result; anything else raises `ServerError` carrying the server's own message (and the
envelope's ``result``, which a failed bulk load fills with what it committed). Transport
problems raise `ConnectionFailed`. The API key, when given, goes in the ``api-key``
header.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from client.errors import ConnectionFailed, ServerError

DEFAULT_URL = "http://127.0.0.1:6333"
DEFAULT_TIMEOUT_S = 120.0
ARROW_STREAM = "application/vnd.apache.arrow.stream"
NDJSON = "application/x-ndjson"


def default_url() -> str:
    return os.environ.get("QUIVER_URL") or DEFAULT_URL


def default_api_key() -> str | None:
    return os.environ.get("QUIVER_API_KEY") or None


@dataclass(frozen=True)
class BulkReport:
    """The result of one ``POST .../points/bulk``; ``errors`` holds the first few
    rejected rows as ``(row within the request, reason)``."""

    accepted: int
    rejected: int
    errors: list[tuple[int, str]] = field(default_factory=list)
    operation_id: int | None = None

    @classmethod
    def from_wire(cls, result: Mapping[str, Any]) -> BulkReport:
        return cls(
            accepted=int(result.get("accepted", 0)),
            rejected=int(result.get("rejected", 0)),
            errors=[(int(e["row"]), str(e["error"])) for e in result.get("errors") or []],
            operation_id=result.get("operation_id"),
        )


class QuiverClient:
    """One connection pool to one server. ``timeout_s`` bounds each socket operation
    (connect, one read, one write), not a whole request, so long uploads are fine."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"api-key": api_key} if api_key else {}
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> QuiverClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: Iterable[bytes] | None = None,
        files: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request and return the envelope's ``result``."""
        try:
            response = self._http.request(
                method,
                path,
                json=json,
                content=content,
                files=files,
                headers=headers,
                params=params,
            )
        except httpx.TransportError as exc:
            raise ConnectionFailed(self.url, _describe(exc)) from None
        return _unwrap(method, path, response)

    def download(
        self, path: str, target: BinaryIO, on_bytes: Callable[[int | None, int], None] | None = None
    ) -> int:
        """Stream a response body into ``target``; returns the bytes written.
        ``on_bytes(total, n)`` is called per chunk (``total`` None when unknown)."""
        try:
            with self._http.stream("GET", path) as response:
                if response.status_code != 200:
                    response.read()
                    _unwrap("GET", path, response)
                total = response.headers.get("content-length")
                size = 0
                for chunk in response.iter_bytes(1 << 20):
                    target.write(chunk)
                    size += len(chunk)
                    if on_bytes is not None:
                        on_bytes(int(total) if total else None, len(chunk))
                return size
        except httpx.TransportError as exc:
            raise ConnectionFailed(self.url, _describe(exc)) from None

    # -- the calls the CLI makes ---------------------------------------------------------

    def collection_names(self) -> list[str]:
        result = self.call("GET", "/collections")
        return [str(c["name"]) for c in result["collections"]]

    def collection_info(self, name: str) -> dict[str, Any]:
        info: dict[str, Any] = self.call("GET", f"/collections/{_segment(name)}")
        return info

    def create_collection(self, name: str, body: Mapping[str, Any]) -> None:
        self.call("PUT", f"/collections/{_segment(name)}", json=body)

    def count(self, name: str) -> int:
        result = self.call(
            "POST", f"/collections/{_segment(name)}/points/count", json={"exact": True}
        )
        return int(result["count"])

    def scroll(
        self, name: str, limit: int, offset: Any, with_vector: bool | list[str] = True
    ) -> tuple[list[dict[str, Any]], Any]:
        body = {"limit": limit, "with_payload": True, "with_vector": with_vector}
        if offset is not None:
            body["offset"] = offset
        result = self.call("POST", f"/collections/{_segment(name)}/points/scroll", json=body)
        return list(result["points"]), result.get("next_page_offset")

    def bulk(self, name: str, body: Iterable[bytes], content_type: str) -> BulkReport:
        """One streamed ``POST .../points/bulk``; the body is sent as it is produced."""
        result = self.call(
            "POST",
            f"/collections/{_segment(name)}/points/bulk",
            content=body,
            headers={"content-type": content_type},
        )
        return BulkReport.from_wire(result)

    def snapshot_path(self, collection: str, snapshot: str | None = None) -> str:
        path = f"/collections/{_segment(collection)}/snapshots"
        return path if snapshot is None else f"{path}/{_segment(snapshot)}"


def _segment(name: str) -> str:
    return quote(name, safe="")


def _unwrap(method: str, path: str, response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("status") == "ok" and response.is_success:
        return body.get("result")
    reason = _reason(body, response)
    result = body.get("result") if isinstance(body, dict) else None
    raise ServerError(method, path, response.status_code, reason, result)


def _reason(body: Any, response: httpx.Response) -> str:
    if isinstance(body, dict):
        status = body.get("status")
        if isinstance(status, dict) and "error" in status:
            return str(status["error"])
        if "detail" in body:  # FastAPI's own 404/405 for an unknown route
            return str(body["detail"])
    text = response.text.strip()
    return text[:300] if text else response.reason_phrase or "no message"


def _describe(exc: httpx.TransportError) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
