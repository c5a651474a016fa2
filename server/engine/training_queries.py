"""Query samples for query-aware indexes (LeanVec OOD), per vector name.

Two sources, as the LeanVec issue asks: queries a user uploads
(``POST /collections/{name}/leanvec/training-queries``), and, when none were given, a
reservoir sample of the queries the collection has served. Both persist in the
collection's database; a build takes the uploaded sample if there is one, else the
reservoir.
"""

from __future__ import annotations

import threading

import numpy as np

from server.storage.point_store import PointStore

MAX_GIVEN = 100_000
"""Uploaded queries kept per vector name (the newest); training uses second moments,
so more adds little."""

RESERVOIR_SIZE = 10_000


class QuerySamples:
    def __init__(self, store: PointStore, dims: dict[str, int]) -> None:
        self._store = store
        self._dims = dims
        self._lock = threading.Lock()
        self._given = {name: self._load(name, "given") for name in dims}
        self._seen: dict[str, np.ndarray] = {}
        self._filled: dict[str, int] = {}
        for name in dims:
            stored = self._load(name, "seen")[:RESERVOIR_SIZE]
            if len(stored):
                self._reservoir(name)[: len(stored)] = stored
            self._filled[name] = len(stored)
        self._offered = dict(self._filled)
        self._rng = np.random.default_rng()
        self._dirty: set[str] = set()

    def add_given(self, name: str, queries: np.ndarray, replace: bool) -> int:
        """Store uploaded queries (already validated); returns how many are kept."""
        with self._lock:
            kept = queries if replace else np.concatenate([self._given[name], queries])
            self._given[name] = np.ascontiguousarray(kept[-MAX_GIVEN:], dtype=np.float32)
            self._store.save_training_queries(name, "given", self._given[name].tobytes())
            return len(self._given[name])

    def offer(self, name: str, queries: np.ndarray) -> None:
        """Reservoir sampling (Vitter's algorithm R) of served queries."""
        with self._lock:
            seen = self._reservoir(name)
            for query in queries:
                self._offered[name] += 1
                if self._filled[name] < RESERVOIR_SIZE:
                    seen[self._filled[name]] = query
                    self._filled[name] += 1
                    continue
                slot = int(self._rng.integers(0, self._offered[name]))
                if slot < RESERVOIR_SIZE:
                    seen[slot] = query
            self._dirty.add(name)

    def for_training(self, name: str) -> np.ndarray | None:
        """The uploaded sample if any, else the reservoir; None when both are empty."""
        with self._lock:
            self._flush()
            seen = self._seen.get(name)
            for sample in (self._given[name], None if seen is None else seen[: self._filled[name]]):
                if sample is not None and len(sample):
                    return sample.copy()
        return None

    def counts(self, name: str) -> dict[str, int]:
        with self._lock:
            return {"given": len(self._given[name]), "seen": self._filled[name]}

    def flush(self) -> None:
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        for name in self._dirty:
            filled = self._seen[name][: self._filled[name]]
            self._store.save_training_queries(name, "seen", filled.tobytes())
        self._dirty.clear()

    def _reservoir(self, name: str) -> np.ndarray:
        """``name``'s reservoir, made when first needed: only a collection that learns
        from its queries (LeanVec) fills one. Every process that opens a collection made
        10,000 zeroed rows per vector (2 MB at 50 dimensions, 61 MB at 1,536): untouched
        fresh pages cost nothing, but zeros that glibc hands out from reused heap memory
        it clears, and those pages stay resident."""
        seen = self._seen.get(name)
        if seen is None:
            seen = np.zeros((RESERVOIR_SIZE, self._dims[name]), dtype=np.float32)
            self._seen[name] = seen
        return seen

    def _load(self, name: str, source: str) -> np.ndarray:
        data = self._store.load_training_queries(name, source)
        rows = np.frombuffer(data, dtype=np.float32) if data else np.zeros(0, dtype=np.float32)
        return rows.reshape(-1, self._dims[name]).copy()
