"""Packages imported everywhere but needed only by some requests: their ``__init__`` runs
at the first use of one of their names, not at ``import`` (issue 24, ADR 0015).

``import faiss`` sits at the top of every index module, so building the app loads it
(~14 MB of an idle server's RSS) although an empty server never builds an index; and
``qdrant_client``'s ``__init__`` imports its whole REST client (~34 MB) when the gRPC
front end needs only its generated messages (``qdrant_client.grpc``, under 1 MB).

:func:`defer` registers such a package in ``sys.modules`` with its search path set and
its ``__init__`` not run. ``import faiss`` then binds it; importing a submodule
(``qdrant_client.grpc``) loads that submodule alone; the first read of any other name
(``faiss.IndexHNSWFlat``, ``from qdrant_client import QdrantClient``) runs the real
``__init__`` into the same module object, once (threads wait for it), and from then on
it is the ordinary package. Python's ``importlib.util.LazyLoader`` cannot do this: on
3.11 the import statement itself reads ``__spec__`` of a module already imported,
which loads a lazy one at once.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType
from typing import Any

_LOCK = threading.RLock()


class DeferredPackage(ModuleType):
    """A package with its search path set but its ``__init__`` not run (until needed)."""

    def __init__(self, spec: ModuleSpec) -> None:
        super().__init__(spec.name)
        self.__spec__ = spec
        self.__loader__ = spec.loader
        self.__file__ = spec.origin
        self.__package__ = spec.name
        self.__path__ = list(spec.submodule_search_locations or ())

    def __getattr__(self, name: str) -> Any:
        """A submodule not loaded yet (``from package import sub`` asks before it
        imports): that submodule alone. Any other name: run the real ``__init__``."""
        if name.startswith("__"):  # import machinery probing: nothing the package defines
            raise AttributeError(name)
        if PathFinder.find_spec(name, self.__path__) is not None:
            return importlib.import_module(f"{self.__name__}.{name}")
        with _LOCK:
            if type(self) is DeferredPackage:
                if vars(self).get("_deferred_running"):  # asked by its own __init__
                    raise AttributeError(name)
                self._run_init()
        return ModuleType.__getattribute__(self, name)

    def _run_init(self) -> None:
        spec = self.__spec__
        assert spec is not None and spec.loader is not None
        vars(self)["_deferred_running"] = True
        try:
            spec.loader.exec_module(self)
        finally:
            del vars(self)["_deferred_running"]
        self.__class__ = ModuleType  # type: ignore[assignment]  # a plain module from now on


def defer(name: str) -> bool:
    """Register ``name`` as a deferred package; False when it is already imported (or
    not installed, or not a package), which leaves it as it is."""
    if name in sys.modules:
        return False
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return False
    sys.modules[name] = DeferredPackage(spec)
    return True
