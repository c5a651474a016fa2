"""What background work a collection needs: one small condition per optimizer kind.

Every kind ends in the same operation (``segment_lifecycle.SegmentLifecycle.run``:
take the live rows of one or more sealed segments, build the configured index over them,
swap the result in as one new segment); only the condition differs, and it names the job:

* ``merge``   (fold) a freshly sealed segment joins the largest built graph instead of
              getting a graph of its own first, when the collection would merge it anyway;
* ``index``   a freshly sealed segment is still searched exactly;
* ``rebuild`` the index configuration changed (PATCH hnsw_config / index);
* ``vacuum``  more than ``deleted_threshold`` of a segment's rows are tombstones;
* ``merge``   more sealed segments than ``default_segment_number`` (0 = auto = 1: a
              query walks every segment's graph in turn, so fewer, larger segments
              are cheaper to search; the HNSW benchmark measured 2 segments at about
              half the throughput of one).

The per-segment conditions are asked in that order, segment by segment, and the first
that answers claims the segment; the collection-wide merge is asked last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from server.engine.config import CollectionConfig
from server.engine.index_spec import IndexSpec
from server.engine.sealed_segment import SealedSegment

MAX_MERGED_SEGMENT = 2_000_000


@dataclass(frozen=True, slots=True)
class Task:
    kind: str
    segment_ids: tuple[int, ...]


class _Wait:
    """A condition's answer: this segment must wait for a running build (no task now)."""


WAIT: Final = _Wait()


@dataclass(slots=True)
class Planning:
    """What one planning pass knows: the config, the sealed segments, and which of
    them are claimed (``taken``) or have a graph being built or extended (``working``)."""

    config: CollectionConfig
    sealed: dict[int, SealedSegment]
    spec: IndexSpec
    taken: set[int]
    working: set[int]
    tasks: list[Task] = field(default_factory=list)

    def claim(self, task: Task, *, builds_graph: bool) -> None:
        self.tasks.append(task)
        self.taken.update(task.segment_ids)
        if builds_graph:
            self.working.update(task.segment_ids)

    @property
    def merge_limit(self) -> int:
        return self.config.optimizers_config.max_segment_size or MAX_MERGED_SEGMENT

    @property
    def target_segments(self) -> int:
        return self.config.optimizers_config.default_segment_number or 1


SegmentCondition = Callable[[Planning, int, SealedSegment], Task | _Wait | None]


def fold_into_graph(plan: Planning, segment_id: int, segment: SealedSegment) -> Task | _Wait | None:
    """``merge``: a freshly sealed segment goes straight into the collection's largest
    free graph when merges extend a graph (not flat, no insertion order) and the
    collection will merge it anyway (more segments than the target). Indexing it alone
    and then merging inserted its points twice: the HNSW benchmark spent 58 s in 20
    index and 19 merge jobs for a 24 s faiss build. With no free graph it waits while
    one is being built or extended, and is indexed alone otherwise."""
    if segment.spec is not None or not _merges_extend_a_graph(plan):
        return None
    base = _free_base(plan, len(segment))
    if base is not None:
        return Task("merge", tuple(sorted((base, segment_id))))
    return WAIT if plan.working & set(plan.sealed) else None


def index_exact(plan: Planning, segment_id: int, segment: SealedSegment) -> Task | None:
    """``index``: a freshly sealed segment is still searched exactly."""
    return Task("index", (segment_id,)) if segment.spec is None else None


def rebuild_mismatched(plan: Planning, segment_id: int, segment: SealedSegment) -> Task | None:
    """``rebuild``: built with an index configuration that is no longer the current one."""
    return Task("rebuild", (segment_id,)) if segment.spec != plan.spec else None


def vacuum_tombstones(plan: Planning, segment_id: int, segment: SealedSegment) -> Task | None:
    """``vacuum``: too many of the segment's rows are tombstones."""
    optimizers = plan.config.optimizers_config
    due = (
        segment.row_count() >= optimizers.vacuum_min_vector_number
        and segment.deleted_fraction() > optimizers.deleted_threshold
    )
    return Task("vacuum", (segment_id,)) if due else None


def merge_smallest(plan: Planning) -> Task | None:
    """``merge``: more sealed segments than the target; the two smallest free built
    ones are merged if the result stays under the size limit."""
    free = [sid for sid, s in plan.sealed.items() if sid not in plan.taken and s.spec == plan.spec]
    if len(free) < 2 or len(plan.sealed) <= plan.target_segments:
        return None
    smallest = sorted(free, key=lambda sid: len(plan.sealed[sid]))[:2]
    if sum(len(plan.sealed[sid]) for sid in smallest) > plan.merge_limit:
        return None
    return Task("merge", tuple(sorted(smallest)))


SEGMENT_CONDITIONS: tuple[tuple[SegmentCondition, bool], ...] = (
    (fold_into_graph, True),
    (index_exact, True),
    (rebuild_mismatched, True),
    (vacuum_tombstones, False),
)
"""Asked in order for each unclaimed segment, with whether the task builds a graph
(a fresh segment waits for a graph being built rather than getting its own)."""


def due_tasks(
    config: CollectionConfig,
    sealed: dict[int, SealedSegment],
    busy: set[int],
    held: frozenset[int] | set[int] = frozenset(),
    spec: IndexSpec | None = None,
) -> list[Task]:
    """Tasks worth running now, never touching a segment a running task holds (``busy``)
    or one held back after a cancel (``held``). ``spec``: ``config.index_spec()``, when
    the caller already has it."""
    spec = config.index_spec() if spec is None else spec
    plan = Planning(config, sealed, spec, set(busy) | set(held), set(busy))
    for segment_id, segment in sealed.items():
        if segment_id in plan.taken:
            continue
        for condition, builds_graph in SEGMENT_CONDITIONS:
            answer = condition(plan, segment_id, segment)
            if isinstance(answer, Task):
                plan.claim(answer, builds_graph=builds_graph)
            if answer is not None:
                break
    merge = merge_smallest(plan)
    if merge is not None:
        plan.tasks.append(merge)
    return plan.tasks


def _merges_extend_a_graph(plan: Planning) -> bool:
    if plan.spec.type == "flat" or plan.spec.insertion_order != "none":
        return False
    if "tenant" in plan.spec.layout:  # a tenant layout reorders every row: nothing extends
        return False
    return len(plan.sealed) > plan.target_segments


def _free_base(plan: Planning, extra: int) -> int | None:
    """The largest built segment that no task holds and that may grow by ``extra``."""
    built = [
        sid
        for sid, s in plan.sealed.items()
        if s.spec == plan.spec and sid not in plan.taken and len(s) + extra <= plan.merge_limit
    ]
    return max(built, key=lambda sid: plan.sealed[sid].row_count(), default=None)
