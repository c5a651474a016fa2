"""qdrant-client's generated gRPC messages without the rest of qdrant-client (issue 24).

The gRPC front end needs ``qdrant_client.grpc`` (the ``*_pb2`` messages and servicer
bases: under 1 MB) from its start, but ``qdrant_client``'s package ``__init__`` imports
the whole client first: the REST API client, its pydantic models, local mode, ~34 MB of
an idle server's memory. The converters (``GrpcToRest`` / ``RestToGrpc``, built on those
models, ~28 MB) are needed only by the first call that converts a message.

:func:`install` defers the package's ``__init__`` (``server/deferred_packages.py``):
importing ``qdrant_client.grpc`` loads that submodule alone, and a test or tool sharing
the process that asks for ``QdrantClient`` gets the real package then. :class:`Deferred`
stands in for a converter until its first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from server.deferred_packages import defer


def install() -> None:
    """Defer ``qdrant_client``'s ``__init__``, unless it is already imported."""
    defer("qdrant_client")


class Deferred:
    """``module.name`` (or the module itself), imported at its first attribute read."""

    def __init__(self, module: str, name: str | None = None) -> None:
        self._module = module
        self._name = name
        self._target: Any = None

    def __getattr__(self, item: str) -> Any:
        if item.startswith("_"):
            raise AttributeError(item)
        if self._target is None:
            found: Any = importlib.import_module(self._module)
            self._target = found if self._name is None else getattr(found, self._name)
        return getattr(self._target, item)
