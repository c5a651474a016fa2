"""Qdrant's REST API as qdrant-client's generated code describes it (``qdrant_client.http``).

qdrant-client is generated from Qdrant's OpenAPI document: each ``_build_for_*`` method
of its ``qdrant_client.http.api`` classes names one endpoint's method, path and response
model. Calling those methods against a recording stand-in for the HTTP client reads the
whole table without a server and without copying anything of Qdrant's into this tree.

Two uses: ``check_response`` validates an answer of a known Qdrant route against the
model the client would parse it with (every in-process API test does this through
``make_client``), and the endpoint table test walks ``ENDPOINTS``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
import qdrant_client.http.api as generated
from pydantic import TypeAdapter
from qdrant_client.http import models

_PARAM = re.compile(r"\{[^}]+\}")


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: ``GET /collections/{collection_name}`` and its answer's ``result``
    type (None: not JSON, e.g. a snapshot download or ``/metrics``)."""

    method: str
    path: str
    operation: str
    result: Any

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and _regex(self.path).fullmatch(path) is not None


class _Recorder:
    """Stands in for the client's HTTP layer: a request is returned, not sent."""

    def request(self, **request: Any) -> dict[str, Any]:
        return request


def _read_endpoints() -> list[Endpoint]:
    found = []
    for module_info in pkgutil.iter_modules(generated.__path__):
        module = importlib.import_module(f"{generated.__name__}.{module_info.name}")
        for _, api_class in inspect.getmembers(module, inspect.isclass):
            if api_class.__module__ == module.__name__ and api_class.__name__.startswith("_"):
                found.extend(_endpoints_of(api_class(_Recorder())))
    return sorted(found, key=lambda e: (e.path, e.method))


def _endpoints_of(api: Any) -> list[Endpoint]:
    out = []
    for name in vars(type(api)):
        if not name.startswith("_build_for_"):
            continue
        build = getattr(api, name)
        required = {
            p: "x"
            for p, param in inspect.signature(build).parameters.items()
            if param.default is inspect.Parameter.empty
        }
        request = build(**required)
        result = _result_type(request["type_"])
        out.append(Endpoint(request["method"], request["url"], name[len("_build_for_") :], result))
    return out


def _result_type(response_model: Any) -> Any:
    fields = getattr(response_model, "model_fields", None)
    if fields is None or "result" not in fields:
        return None
    return fields["result"].annotation


ENDPOINTS: list[Endpoint] = _read_endpoints()

_SCORED = list[models.ScoredPoint]
_C = "/collections/{collection_name}/points"
LEGACY: list[Endpoint] = [
    Endpoint("POST", f"{_C}/search", "search_points", _SCORED),
    Endpoint("POST", f"{_C}/search/batch", "search_batch_points", list[_SCORED]),
    Endpoint("POST", f"{_C}/recommend", "recommend_points", _SCORED),
    Endpoint("POST", f"{_C}/recommend/batch", "recommend_batch_points", list[_SCORED]),
    Endpoint("POST", f"{_C}/discover", "discover_points", _SCORED),
    Endpoint("POST", f"{_C}/discover/batch", "discover_batch_points", list[_SCORED]),
    Endpoint("POST", f"{_C}/search/groups", "search_point_groups", models.GroupsResult),
    Endpoint("POST", f"{_C}/recommend/groups", "recommend_point_groups", models.GroupsResult),
]
"""Qdrant routes that qdrant-client 1.20's generated API no longer calls (deprecated in
Qdrant, still served by it): their result types, from the same models."""


@cache
def _regex(path: str) -> re.Pattern[str]:
    return re.compile("[^/]+".join(re.escape(part) for part in _PARAM.split(path)))


def endpoint_for(method: str, path: str) -> Endpoint | None:
    """The Qdrant endpoint a request reaches; literal segments win over parameters
    (``/collections/aliases`` is not a collection called ``aliases`` for POST)."""
    candidates = [e for e in ENDPOINTS + LEGACY if e.matches(method, path)]
    if not candidates:
        return None
    return min(candidates, key=lambda e: len(_PARAM.findall(e.path)))


@cache
def _adapter(result: Any) -> TypeAdapter[Any]:
    return TypeAdapter(result)


_ERROR = TypeAdapter(models.ErrorResponse)


def check_response(response: httpx.Response) -> None:
    """Fail when a JSON answer of a Qdrant route does not parse with qdrant-client's
    model for it (an error answer: with Qdrant's error envelope)."""
    if "application/json" not in response.headers.get("content-type", ""):
        return
    response.read()
    body = response.json()
    request = response.request
    if response.status_code >= 400:
        _ERROR.validate_python(body)
        assert isinstance(body["status"].get("error"), str), body
        return
    found = endpoint_for(request.method, request.url.path)
    if found is None or found.result is None or not 200 <= response.status_code < 300:
        return
    # 202: a wait=false snapshot call, answered before the work is done (Qdrant's shape)
    assert body.get("status") == ("accepted" if response.status_code == 202 else "ok"), body
    if response.status_code == 202:
        return
    try:
        _adapter(found.result).validate_python(body.get("result"))
    except ValueError as exc:
        raise AssertionError(
            f"{request.method} {request.url.path}: the answer does not parse as "
            f"qdrant-client's {found.result}: {exc}"
        ) from exc
