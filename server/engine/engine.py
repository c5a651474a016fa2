"""The engine: every collection in the data folder, opened at start.

Folder layout::

    <data_dir>/collections/<name>/points.sqlite   one folder per collection
    <data_dir>/collections/.tmp-*                 half-created, removed at start
    <data_dir>/collections/.trash-*               half-deleted, removed at start

A collection appears atomically: it is built in a temporary folder and renamed
into place; deletion renames it away first, so a crash never leaves half of one.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import uuid
from pathlib import Path

from server.engine.build_worker import BuildWorker
from server.engine.collection import Collection
from server.engine.config import CollectionConfig
from server.errors import CollectionAlreadyExists, CollectionNotFound, InvalidCollectionName
from server.storage.segment_store import fsync_dir

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_\-.]{0,254}$")


def validate_collection_name(name: str) -> str:
    """Names become folder names, so nothing that could escape the data folder passes."""
    if not _NAME.fullmatch(name):
        raise InvalidCollectionName(
            name,
            "use 1-255 letters, digits, '_', '-' or '.', not starting with '.'",
        )
    return name


class Engine:
    """Owns the data folder; one process per folder."""

    def __init__(self, data_dir: Path, idle_seal_s: float = 0.0) -> None:
        self.root = data_dir / "collections"
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._collections: dict[str, Collection] = {}
        self.worker = BuildWorker(idle_seal_s)
        self._clean_leftovers()
        for path in sorted(self.root.iterdir()):
            if path.is_dir() and not path.name.startswith("."):
                self._collections[path.name] = Collection.open(path.name, path)
        self.worker.start()
        for collection in self._collections.values():
            self.worker.attach(collection)
        log.info("engine opened", extra={"collections": len(self._collections)})

    def close(self) -> None:
        self.worker.stop()
        with self._lock:
            for collection in self._collections.values():
                collection.close()
            self._collections.clear()

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._collections)

    def exists(self, name: str) -> bool:
        with self._lock:
            return name in self._collections

    def get(self, name: str) -> Collection:
        with self._lock:
            collection = self._collections.get(name)
        if collection is None:
            raise CollectionNotFound(name)
        return collection

    def create(self, name: str, config: CollectionConfig) -> None:
        validate_collection_name(name)
        with self._lock:
            if name in self._collections:
                raise CollectionAlreadyExists(name)
            temp = self.root / f".tmp-{uuid.uuid4().hex}"
            temp.mkdir()
            try:
                collection = Collection.create(name, temp, config)
                collection.close()
                final = self.root / name
                os.replace(temp, final)
                fsync_dir(self.root)
            except BaseException:
                shutil.rmtree(temp, ignore_errors=True)
                raise
            self._collections[name] = Collection.open(name, final)
        self.worker.attach(self._collections[name])

    def delete(self, name: str) -> bool:
        with self._lock:
            collection = self._collections.pop(name, None)
            if collection is None:
                return False
            self.worker.detach(name)
            collection.close()
            trash = self.root / f".trash-{uuid.uuid4().hex}"
            os.replace(collection.path, trash)
            fsync_dir(self.root)
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def _clean_leftovers(self) -> None:
        for path in self.root.iterdir():
            if path.name.startswith((".tmp-", ".trash-")):
                shutil.rmtree(path, ignore_errors=True)
