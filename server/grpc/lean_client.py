"""qdrant-client's generated gRPC messages without the rest of qdrant-client (issue 24).

The gRPC front end needs ``qdrant_client.grpc`` (the ``*_pb2`` messages and servicer
bases: under 1 MB) from its start, but ``qdrant_client``'s package ``__init__`` imports
the whole client first: the REST API client, its pydantic models, local mode, ~34 MB of
an idle server's memory. The converters (``GrpcToRest`` / ``RestToGrpc``, built on those
models, ~28 MB) are needed only by the first call that converts a message.

:func:`install` registers ``qdrant_client`` as a package whose ``__init__`` has not run
yet: importing a submodule (``qdrant_client.grpc``) then loads that submodule alone, and
the first read of any other package attribute (``QdrantClient``, in a test or a tool
sharing the process) runs the real ``__init__`` then, so nothing else sees a difference.
:class:`Deferred` stands in for a converter until its first use.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType
from typing import Any

PACKAGE = "qdrant_client"


class _UninitialisedPackage(ModuleType):
    """A package with its search path set but its ``__init__`` not run (until needed)."""

    def __init__(self, spec: ModuleSpec) -> None:
        super().__init__(spec.name)
        self.__spec__ = spec
        self.__loader__ = spec.loader
        self.__file__ = spec.origin
        self.__package__ = spec.name
        self.__path__ = list(spec.submodule_search_locations or ())

    def __getattr__(self, name: str) -> Any:
        """A submodule not loaded yet (``from qdrant_client import grpc`` asks before it
        imports): that submodule alone. Any other name: run the real ``__init__``, once."""
        if name.startswith("__"):  # import machinery probing: nothing the package defines
            raise AttributeError(name)
        if PathFinder.find_spec(name, self.__path__) is not None:
            return importlib.import_module(f"{self.__name__}.{name}")
        spec = self.__spec__
        assert spec is not None and spec.loader is not None
        self.__class__ = ModuleType  # type: ignore[assignment]  # a plain module from now on
        spec.loader.exec_module(self)
        return getattr(self, name)


def install() -> None:
    """Register the uninitialised package, unless ``qdrant_client`` is already imported
    (or not installed)."""
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    sys.modules[PACKAGE] = _UninitialisedPackage(spec)


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
