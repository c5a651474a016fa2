"""How a segment is (re)built: one operation shared by every optimizer kind.

``snapshot`` copies the live rows of the task's sealed segments (under the collection's
read lock), ``build`` builds the configured index over them in chunks (optionally in a
chosen insertion order, and for a merge by extending the largest source's graph) with no
lock held; ``segment_lifecycle.py`` writes the result and swaps it in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from index.base import TRAINING_SAMPLE
from index.insertion_order import insertion_permutation
from index.metrics import Distance
from index.multivector import Ragged
from index.registry import (
    AnyIndex,
    create_index,
    create_multi_index,
    create_sparse_index,
    index_from_bytes,
    is_multi_vector,
    is_sparse,
)
from index.sparse import SparseRows
from server.engine.config import CollectionConfig
from server.engine.id_column import IdColumn
from server.engine.index_spec import IndexSpec
from server.engine.optimizer import Task
from server.engine.sealed_segment import SealedSegment
from server.engine.tenant_layout import (
    FieldValues,
    GraphBuild,
    ValueGraphs,
    build_value_graphs,
    group_rows,
    renumber,
    tenant_permutation,
)

BUILD_CHUNK = 10_000


@dataclass(slots=True)
class RebuildInput:
    """A consistent snapshot of the rows a task rebuilds, taken under the read lock."""

    task: Task
    spec: IndexSpec
    vector_params: dict[str, tuple[int, Distance]]
    """Dense names; multi-vector names are in ``multi_params``."""
    sources: list[tuple[int, np.ndarray]]
    """(segment id, rows of that segment) in the order the new segment lists them."""
    ids: IdColumn
    """The rows' point ids, as arrays (no Python object per point: issue 24)."""
    vectors: dict[str, np.ndarray]
    present: dict[str, np.ndarray]
    multi_params: dict[str, tuple[int, Distance]] = field(default_factory=dict)
    tokens: dict[str, Ragged] = field(default_factory=dict)
    permutation: np.ndarray | None = field(default=None)
    base: dict[str, AnyIndex] | None = field(default=None)
    """For a merge: the largest source's built indexes, extended instead of rebuilt.
    Its rows (tombstones included) come first in ``ids`` / ``vectors``."""
    base_rows: int = 0
    training_queries: dict[str, np.ndarray] = field(default_factory=dict)
    """Per vector name: sample queries for query-aware training (LeanVec OOD)."""
    token_storage: dict[str, str] = field(default_factory=dict)
    """Multi-vector names whose MaxSim tokens are stored narrower (their ``datatype``
    float16 or uint8: values already rounded or cast, so the narrow copy is exact)."""
    sparse: dict[str, SparseRows] = field(default_factory=dict)
    """Sparse names: every row's sparse vector (empty where absent)."""
    field_values: FieldValues = field(default_factory=dict)
    """The tenant field's and the per-value graph fields' values, by job row."""
    metrics: dict[str, Distance] = field(default_factory=dict)
    value_graphs: ValueGraphs | None = None
    """Built by ``build`` when the spec's layout asks for per-value graphs."""


class Cancelled(Exception):
    """Raised inside a build when its job is cancelled."""


def snapshot(
    task: Task, config: CollectionConfig, sealed: dict[int, SealedSegment]
) -> RebuildInput:
    """Copy the rows a task rebuilds (call under the collection's read lock).

    A merge keeps the largest source's graph when it was built with the current spec
    and no insertion order is asked for: faiss HNSW grows by insertion, so merging
    costs the smaller segments' points instead of rebuilding everything."""
    spec = config.index_spec()
    base_id = _merge_base(task, spec, sealed)
    order = sorted(task.segment_ids, key=lambda sid: sid != base_id)
    sources: list[tuple[int, np.ndarray]] = []
    keys: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    vectors: dict[str, list[np.ndarray]] = {}
    tokens: dict[str, list[Ragged]] = {}
    sparse: dict[str, list[SparseRows]] = {name: [] for name in config.sparse_vectors}
    present: dict[str, list[np.ndarray]] = {
        name: [] for name in [*config.vectors, *config.sparse_vectors]
    }
    for segment_id in order:
        segment = sealed[segment_id]
        if segment_id == base_id:
            rows = np.arange(segment.row_count())
        else:
            rows = np.flatnonzero(segment.live_mask())
        sources.append((segment_id, rows))
        keys.append(segment.sort_keys(rows))
        for name in config.vectors:
            index = segment.indexes[name]
            if is_multi_vector(index):
                tokens.setdefault(name, []).append(index.items(rows))
            elif not is_sparse(index):
                vectors.setdefault(name, []).append(index.vectors()[rows])
            present[name].append(segment.vector_present(name)[rows])
        for name in config.sparse_vectors:
            sparse[name].append(segment.sparse_index(name).items(rows))
            present[name].append(segment.vector_present(name)[rows])
    base = None if base_id is None else dict(sealed[base_id].indexes)
    return RebuildInput(
        task=task,
        spec=spec,
        vector_params={
            n: (p.size, p.distance) for n, p in config.vectors.items() if not p.is_multi
        },
        multi_params={n: (p.size, p.distance) for n, p in config.vectors.items() if p.is_multi},
        token_storage={
            n: p.datatype
            for n, p in config.vectors.items()
            if p.is_multi and p.datatype in ("float16", "uint8", "turbo4")
        },
        sources=sources,
        ids=IdColumn.joined(keys),
        vectors={n: np.concatenate(v) for n, v in vectors.items()},
        tokens={n: Ragged.concat(t, config.vectors[n].size) for n, t in tokens.items()},
        present={n: np.concatenate(p) for n, p in present.items()},
        base=base,
        base_rows=0 if base_id is None else sealed[base_id].row_count(),
        sparse={n: SparseRows.concat(s) for n, s in sparse.items()},
        field_values=_field_values(spec, sealed, sources),
        metrics={n: p.distance for n, p in config.vectors.items()},
    )


def _field_values(
    spec: IndexSpec, sealed: dict[int, SealedSegment], sources: list[tuple[int, np.ndarray]]
) -> FieldValues:
    """Per field the layout reads, each value's job rows, from the payload indexes."""
    layout = spec.layout
    fields = set(layout.get("payload_graphs", {}).get("fields", []))
    fields |= {layout["tenant"]} if "tenant" in layout else set()
    if not fields:
        return {}
    pairs: dict[str, list[tuple[object, int]]] = {name: [] for name in fields}
    offset = 0
    for segment_id, rows in sources:
        segment = sealed[segment_id]
        position = np.full(segment.row_count(), -1, dtype=np.int64)
        position[rows] = np.arange(offset, offset + len(rows))
        offset += len(rows)
        for name in fields:
            index = segment.payload_indexes.fields.get(name)
            for key, row in [] if index is None else index.entries():
                if position[row] >= 0:
                    pairs[name].append((_plain(key), int(position[row])))
    return {name: group_rows(found) for name, found in pairs.items()}


def _plain(key: object) -> object:
    """An index key as JSON holds it (sorted indexes keep numpy integers)."""
    return int(key) if isinstance(key, np.integer) else key


def training_sample(matrix: np.ndarray, seed: int = 0) -> np.ndarray:
    """Up to ``TRAINING_SAMPLE`` rows, drawn without replacement with a fixed seed so a
    rebuild of the same rows learns the same codes."""
    if len(matrix) <= TRAINING_SAMPLE:
        return matrix
    rows = np.random.default_rng(seed).choice(len(matrix), TRAINING_SAMPLE, replace=False)
    return matrix[np.sort(rows)]


def _merge_base(task: Task, spec: IndexSpec, sealed: dict[int, SealedSegment]) -> int | None:
    if task.kind != "merge" or spec.type == "flat" or spec.insertion_order != "none":
        return None
    if "tenant" in spec.layout:  # rows are laid out again by tenant: nothing to extend
        return None
    built = [sid for sid in task.segment_ids if sealed[sid].spec == spec]
    return max(built, key=lambda sid: sealed[sid].row_count(), default=None)


def build(
    job: RebuildInput,
    progress: Callable[[int, int], None],
    cancelled: Callable[[], bool],
) -> dict[str, AnyIndex]:
    """Build one index per named vector, in chunks so progress shows and cancel works.

    If the spec asks for an insertion order, ``job`` is permuted in place first so
    that rows, ids and vectors stay aligned in the new segment (the order is computed
    on the first dense vector; a collection of multi-vectors only keeps its order)."""
    order = _row_order(job)
    if order is not None:
        job.permutation = order
        job.ids = job.ids.subset(order)
        job.vectors = {n: v[order] for n, v in job.vectors.items()}
        job.tokens = {n: t.take(order) for n, t in job.tokens.items()}
        job.sparse = {n: s.take(order) for n, s in job.sparse.items()}
        job.present = {n: p[order] for n, p in job.present.items()}
        job.field_values = renumber(job.field_values, order)
    names = [*job.vector_params, *job.multi_params, *job.sparse]
    total = (len(job.ids) - job.base_rows) * len(names)
    done = 0
    indexes: dict[str, AnyIndex] = {}
    for name in names:
        index = _new_index(job, name)
        rows = len(job.ids) - job.base_rows
        for start in range(0, rows, BUILD_CHUNK):
            if cancelled():
                raise Cancelled()
            stop = min(rows, start + BUILD_CHUNK)
            chunk = np.arange(job.base_rows + start, job.base_rows + stop)
            if is_multi_vector(index):
                index.add(job.tokens[name].take(chunk))
            elif is_sparse(index):
                index.add(job.sparse[name].take(chunk))
            else:
                index.add(job.vectors[name][chunk])
            done += len(chunk)
            progress(done, total)
        indexes[name] = index
    job.value_graphs = _value_graphs(job, cancelled)
    progress(total, total)
    return indexes


def _row_order(job: RebuildInput) -> np.ndarray | None:
    """The new segment's rows as a permutation of the job's (None: unchanged): the
    insertion order the spec asks for (computed on the first dense vector), then grouped
    by tenant, stably, so each tenant's rows are one range (``tenant_layout.py``)."""
    first = next(iter(job.vector_params), None)
    order = None
    if first is not None:
        order = insertion_permutation(
            job.vectors[first], job.vector_params[first][1], job.spec.insertion_order
        )
    tenant = job.spec.layout.get("tenant")
    if tenant is None or job.base is not None:
        return order
    if order is None:
        return tenant_permutation(job.field_values[tenant], len(job.ids))
    inserted = renumber({tenant: job.field_values[tenant]}, order)[tenant]
    grouped: np.ndarray = order[tenant_permutation(inserted, len(job.ids))]
    return grouped


def _value_graphs(job: RebuildInput, cancelled: Callable[[], bool]) -> ValueGraphs | None:
    """The spec's per-value graphs over the (already ordered) rows."""
    asked = job.spec.layout.get("payload_graphs")
    if not asked:
        return None
    if cancelled():
        raise Cancelled()
    vectors = {n: v for n, v in asked["vectors"].items() if n in job.vectors}
    plan = GraphBuild(
        m={n: int(v["m"]) for n, v in vectors.items()},
        ef_construct=int(asked["ef_construct"]),
        min_rows={n: int(v["min_rows"]) for n, v in vectors.items()},
    )
    values = {f: job.field_values[f] for f in asked["fields"] if f in job.field_values}
    return build_value_graphs(plan, values, job.vectors, job.metrics, job.present)


PLACEMENT_KNOBS = ("on_disk", "graph_on_disk")
"""``config.disk_knobs``' flags, passed on to a ``muvera`` collection's inner backend."""


def _new_index(job: RebuildInput, name: str) -> AnyIndex:
    """The index a build extends: a copy of the merge base, or a new (trained) one.
    Multi-vectors get MUVERA under ``muvera`` and exact MaxSim under any other type;
    dense vectors of a ``muvera`` collection get its inner backend."""
    spec = job.spec
    if job.base is not None:
        return index_from_bytes(job.base[name].to_bytes())
    params = spec.backend_params()
    if name in job.sparse:
        return create_sparse_index(spec.backend_of(name)[1] if name in spec.vectors else None)
    if name in job.multi_params:
        dim, distance = job.multi_params[name]
        if name in spec.vectors:  # its own hnsw / quantization (config.multi_overrides)
            kind, own = spec.backend_of(name)
            return create_multi_index(kind, dim, distance, own)
        storage = job.token_storage.get(name)
        tokens = {"storage": storage} if storage else {}
        if spec.type == "muvera":
            return create_multi_index("muvera", dim, distance, params | tokens)
        return create_multi_index("maxsim", dim, distance, tokens)
    dim, distance = job.vector_params[name]
    kind, params = spec.backend_of(name)
    if kind == "muvera":
        kind, placed = params["inner"], {k: True for k in PLACEMENT_KNOBS if params.get(k)}
        params = {k: params[k] for k in ("m", "ef_construct")} | placed
    if kind == "flat":
        params = {"on_disk": True} if params.get("on_disk") else {}
    index = create_index(kind, dim, distance, params)
    matrix = job.vectors[name][job.base_rows :]
    if not index.is_trained and len(matrix):
        index.train(training_sample(matrix), job.training_queries.get(name))
    return index
