"""The compiled (numba) loops of the custom-score graph walk (``graph_walk.py``).

A module of its own so that importing the walk's types (``CustomScore``, ``HnswGraph``)
does not load numba and llvmlite: together some 65 MB of a process's memory, which a
server that never runs a recommend or discover query should not pay (issue 24). The
first walk imports this module; numba's on-disk cache (``cache=True``) makes that a
load of compiled code, not a compile, after the first run on a machine.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir  # type: ignore[import-untyped]
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

EPSILON = 1.1920929e-7
"""f32's machine epsilon: Qdrant's margin in the context score."""
_FAST = {"reassoc", "contract", "nsz"}
"""The fast-math flags the kernels compile with: enough to vectorise float32 sums, none
that assume finite values (the scores use -inf). The small kernels inline into the
walk (``inline="always"``), so these flags are the walk's own: a call per node that
passes arrays would cost atomic reference-count updates, a third of the walk's time."""

# -- compiled kernels: short names (xb rows, ex examples) as in faiss -------------------


_CGUTILS: Any = cgutils
"""numba's code-generation helpers (untyped)."""


def _prefetch_intrinsic(typingctx: Any, array: Any, index: Any) -> Any:
    """Ask the CPU to start loading ``array[index]`` (an integer, or a tuple for a 2-d
    array) into its caches, as faiss's ``prefetch_L2`` does: the rows one step of the
    walk scores are then fetched together instead of one cache miss after another."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        array_type, index_type = signature.args
        array_value = context.make_array(array_type)(context, builder, args[0])
        indices = [args[1]]
        if isinstance(index_type, types.BaseTuple):
            indices = _CGUTILS.unpack_tuple(builder, args[1], len(index_type))
        pointer = _CGUTILS.get_item_pointer(context, builder, array_type, array_value, indices)
        byte_pointer, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        function_type = ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32])
        prefetch = _CGUTILS.get_or_insert_function(
            builder.module, function_type, "llvm.prefetch.p0"
        )
        # a read (0), kept in every cache level (3), of data (1)
        builder.call(prefetch, [builder.bitcast(pointer, byte_pointer), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen


_prefetch: Any = intrinsic(_prefetch_intrinsic)


@njit(cache=True, nogil=True, fastmath=_FAST, inline="always")
def _similarities(xb: Any, r: int, ex: Any, metric: int, out: Any, lo: int, hi: int) -> None:
    """``out[i]`` for ``lo <= i < hi``: the internal score of row ``r`` to example ``i``
    (bigger is better), summed in float32 as local mode does (8 lanes a step where
    64-bit sums take 4); the metric is branched on once, outside the loops the compiler
    vectorises. The row is read in place: a view ``xb[r]`` per visited node would cost
    two atomic reference-count updates, a third of the walk's time when measured."""
    dim = ex.shape[1]
    if metric == 0:
        for i in range(lo, hi):
            total = np.float32(0.0)
            for j in range(dim):
                total += ex[i, j] * xb[r, j]
            out[i] = total
    elif metric == 1:
        for i in range(lo, hi):
            total = np.float32(0.0)
            for j in range(dim):
                d = ex[i, j] - xb[r, j]
                total += d * d
            out[i] = -total
    else:
        for i in range(lo, hi):
            total = np.float32(0.0)
            for j in range(dim):
                total += abs(ex[i, j] - xb[r, j])
            out[i] = -total


@njit(cache=True, nogil=True, inline="always")
def _sigmoid(x: float) -> float:
    if not np.isfinite(x):
        return x
    return x / (1.0 + abs(x))


@njit(cache=True, nogil=True, inline="always")
def _combine(sims: Any, kind: int, split: int) -> float:
    """One row's custom score from its similarities to the examples, as
    ``server.engine.examples.score`` defines it."""
    n = sims.shape[0]
    if kind == 1:  # sum_scores: positives summed, minus negatives summed
        positive, negative = 0.0, 0.0
        for i in range(split):
            positive += sims[i]
        for i in range(split, n):
            negative += sims[i]
        return positive - negative
    if kind == 0:  # best_score: the best positive unless a negative is closer
        best_pos, best_neg = -np.inf, -np.inf
        for i in range(split):
            best_pos = max(best_pos, sims[i])
        for i in range(split, n):
            best_neg = max(best_neg, sims[i])
        if best_pos > best_neg:
            return 0.5 * (_sigmoid(best_pos) + 1.0)
        return -0.5 * (_sigmoid(best_neg) + 1.0)
    total = 0.0
    for i in range(split, n - 1, 2):
        gap = sims[i] - sims[i + 1]
        if kind == 2:  # discover: pairs ranked by sign, then the target's closeness
            total += 1.0 if gap > 0 else (-1.0 if gap < 0 else 0.0)
        else:  # context: a loss for each pair the row sits on the wrong side of
            total += _sigmoid(min(gap - EPSILON, 0.0))
    if kind == 2 and split == 1:
        total += 0.5 * (_sigmoid(sims[0]) + 1.0)
    return total


@njit(cache=True, nogil=True, inline="always")
def _score(xb: Any, r: int, ex: Any, metric: int, kind: int, split: int, sims: Any) -> float:
    _similarities(xb, r, ex, metric, sims, 0, ex.shape[0])
    return _combine(sims, kind, split)


@njit(cache=True, nogil=True, inline="always")
def _score_above(
    xb: Any, r: int, ex: Any, metric: int, kind: int, split: int, sims: Any, floor: float
) -> float:
    """The row's score, or, when it cannot beat ``floor``, a bound ``<= floor`` that
    costs less: a best_score never exceeds what its best positive gives (a closer
    negative makes it negative), so the negatives are scored only for rows whose
    positives clear ``floor``. Most rows a walk visits do not."""
    if kind != 0 or split == 0:
        return _score(xb, r, ex, metric, kind, split, sims)
    _similarities(xb, r, ex, metric, sims, 0, split)
    best_pos = -np.inf
    for i in range(split):
        best_pos = max(best_pos, sims[i])
    bound = 0.5 * (_sigmoid(best_pos) + 1.0)
    if np.isfinite(best_pos) and bound <= floor:
        return bound
    _similarities(xb, r, ex, metric, sims, split, ex.shape[0])
    return _combine(sims, kind, split)


@njit(cache=True, nogil=True, fastmath=_FAST)
def score_all(xb: Any, ex: Any, metric: int, kind: int, split: int) -> Any:
    out = np.empty(xb.shape[0])
    sims = np.empty(ex.shape[0])
    for r in range(xb.shape[0]):
        out[r] = _score(xb, r, ex, metric, kind, split, sims)
    return out


@njit(cache=True, nogil=True, fastmath=_FAST)
def _descend(
    neighbors: Any, offsets: Any, cum: Any, entry: int, max_level: int,
    xb: Any, ex: Any, metric: int, kind: int, split: int,
) -> int:  # fmt: skip
    """Greedy descent through levels ``max_level .. 1`` (faiss's greedy_update_nearest)."""
    current = entry
    sims = np.empty(ex.shape[0])
    best = _score(xb, current, ex, metric, kind, split, sims)
    for level in range(max_level, 0, -1):
        moved = True
        while moved:
            moved = False
            start = offsets[current]
            for j in range(start + cum[level], start + cum[level + 1]):
                node = neighbors[j]
                if node < 0:
                    break
                value = _score_above(xb, node, ex, metric, kind, split, sims, best)
                if value > best:
                    best, current, moved = value, node, True
    return current


@njit(cache=True, nogil=True, inline="always")
def _sift_up(keys: Any, nodes: Any, at: int, sign: float) -> None:
    """Restore a heap upwards; ``sign`` 1 for a max-heap, -1 for a min-heap."""
    while at > 0:
        parent = (at - 1) >> 1
        if sign * keys[at] <= sign * keys[parent]:
            break
        keys[at], keys[parent] = keys[parent], keys[at]
        nodes[at], nodes[parent] = nodes[parent], nodes[at]
        at = parent


@njit(cache=True, nogil=True, inline="always")
def _sift_down(keys: Any, nodes: Any, size: int, sign: float) -> None:
    at = 0
    while True:
        child = 2 * at + 1
        if child >= size:
            break
        if child + 1 < size and sign * keys[child + 1] > sign * keys[child]:
            child += 1
        if sign * keys[child] <= sign * keys[at]:
            break
        keys[at], keys[child] = keys[child], keys[at]
        nodes[at], nodes[child] = nodes[child], nodes[at]
        at = child


@njit(cache=True, nogil=True, inline="always")
def _unvisited(neighbors: Any, start: int, width: int, visited: Any, tag: int, out: Any) -> int:
    """Mark a node's unvisited level-0 neighbours visited and gather them into ``out``
    (their count returned): scored apart from this loop, as faiss does, the rows'
    memory loads overlap instead of waiting behind each heap update."""
    for j in range(start, start + width):
        other = neighbors[j]
        if other < 0:
            break
        _prefetch(visited, other)
    n = 0
    for j in range(start, start + width):
        other = neighbors[j]
        if other < 0:
            break
        if visited[other] != tag:
            visited[other] = tag
            out[n] = other
            n += 1
    return n


@njit(cache=True, nogil=True, inline="always")
def _score_fresh(
    xb: Any, fresh: Any, n: int, ex: Any, metric: int, kind: int, split: int,
    sims: Any, floor: float, out: Any,
) -> None:  # fmt: skip
    """``out[b]``: the score of row ``fresh[b]`` (or a bound ``<= floor``, as
    :func:`_score_above`), every row's cache lines requested before the first is read."""
    dim = xb.shape[1]
    for b in range(n):
        for j in range(0, dim, 16):  # one request per 64-byte line of float32
            _prefetch(xb, (fresh[b], j))
        _prefetch(xb, (fresh[b], dim - 1))
    for b in range(n):
        out[b] = _score_above(xb, fresh[b], ex, metric, kind, split, sims, floor)


@njit(cache=True, nogil=True, fastmath=_FAST)
def _walk_one(
    neighbors: Any, offsets: Any, cum: Any, entry: int, max_level: int,
    xb: Any, mask: Any, ex: Any, metric: int, kind: int, split: int,
    generators: Any, ef: int, visited: Any, tag: int, counts: Any,
    cand_keys: Any, cand_nodes: Any, res_keys: Any, res_nodes: Any,
) -> int:  # fmt: skip
    """One query: descents to the start nodes, then the level-0 beam. The allowed rows
    found go to the min-heap ``res_*`` (their count returned); ``cand_*`` holds the
    max-heap of candidates, and -1 says it overflowed (the caller retries with a
    bigger one: growing it here would rebind arrays in the loop, and numba then
    updates their reference counts at every step)."""
    filtered = mask.shape[0] > 0
    capacity = cand_keys.shape[0]
    starts = np.empty(1 + generators.shape[0], dtype=np.int64)
    starts[0] = _descend(neighbors, offsets, cum, entry, max_level, xb, ex, metric, kind, split)
    for g in range(generators.shape[0]):
        one = ex[generators[g] : generators[g] + 1]
        starts[1 + g] = _descend(neighbors, offsets, cum, entry, max_level, xb, one, metric, 1, 1)
    sims = np.empty(ex.shape[0])
    n_cand, n_res = 0, 0
    fresh = np.empty(cum[1], dtype=np.int64)
    fresh_scores = np.empty(cum[1])
    for s in range(starts.shape[0]):
        node = starts[s]
        if visited[node] == tag:
            continue
        visited[node] = tag
        value = _score(xb, node, ex, metric, kind, split, sims)
        cand_keys[n_cand], cand_nodes[n_cand] = value, node
        _sift_up(cand_keys, cand_nodes, n_cand, 1.0)
        n_cand += 1
        if not filtered or mask[node]:
            res_keys[n_res], res_nodes[n_res] = value, node
            _sift_up(res_keys, res_nodes, n_res, -1.0)
            n_res += 1
    while n_cand > 0:
        value, node = cand_keys[0], cand_nodes[0]
        if n_res >= ef and value < res_keys[0]:
            break
        n_cand -= 1
        cand_keys[0], cand_nodes[0] = cand_keys[n_cand], cand_nodes[n_cand]
        _sift_down(cand_keys, cand_nodes, n_cand, 1.0)
        n_new = _unvisited(neighbors, offsets[node], cum[1], visited, tag, fresh)
        counts[0] += n_new
        floor = res_keys[0] if n_res >= ef else -np.inf
        _score_fresh(xb, fresh, n_new, ex, metric, kind, split, sims, floor, fresh_scores)
        for b in range(n_new):
            other, score = fresh[b], fresh_scores[b]
            if n_res >= ef and score <= res_keys[0]:
                continue
            if n_cand == capacity:
                return -1
            cand_keys[n_cand], cand_nodes[n_cand] = score, other
            _sift_up(cand_keys, cand_nodes, n_cand, 1.0)
            n_cand += 1
            if filtered and not mask[other]:
                continue
            if n_res < ef:
                res_keys[n_res], res_nodes[n_res] = score, other
                _sift_up(res_keys, res_nodes, n_res, -1.0)
                n_res += 1
            else:
                res_keys[0], res_nodes[0] = score, other
                _sift_down(res_keys, res_nodes, n_res, -1.0)
    return n_res


@njit(cache=True, nogil=True, fastmath=_FAST)
def walk_many(
    neighbors: Any, offsets: Any, cum: Any, entry: int, max_level: int,
    xb: Any, mask: Any, metric: int, examples: Any, ex_at: Any, kinds: Any, splits: Any,
    generators: Any, gen_at: Any, ef: int, visited: Any,
    rows: Any, scores: Any, counts: Any,
) -> None:  # fmt: skip
    """:func:`_walk_one` for each query ``q`` (examples ``ex_at[q]:ex_at[q + 1]``,
    generators ``gen_at[q]:gen_at[q + 1]``), its best ``rows.shape[1]`` (best first,
    ties by row) written to ``rows[q]`` / ``scores[q]``. The heaps are allocated once
    for all the queries."""
    k = rows.shape[1]
    capacity = 4 * ef + 64
    cand_keys, cand_nodes = np.empty(capacity), np.empty(capacity, dtype=np.int64)
    res_keys, res_nodes = np.empty(ef), np.empty(ef, dtype=np.int64)
    tag = 0
    for q in range(kinds.shape[0]):
        ex = examples[ex_at[q] : ex_at[q + 1]]
        found = -1
        while found < 0:
            tag += 1
            if tag == 256:  # the byte-sized tags wrapped: clear, as faiss's VisitedTable
                visited[:] = 0
                tag = 1
            counts[1] += 1
            found = _walk_one(
                neighbors, offsets, cum, entry, max_level, xb, mask, ex, metric,
                kinds[q], splits[q], generators[gen_at[q] : gen_at[q + 1]], ef, visited, tag,
                counts, cand_keys, cand_nodes, res_keys, res_nodes,
            )  # fmt: skip
            if found < 0:
                capacity *= 2
                cand_keys, cand_nodes = np.empty(capacity), np.empty(capacity, dtype=np.int64)
        by_row = np.argsort(res_nodes[:found])
        keys, nodes = res_keys[:found][by_row], res_nodes[:found][by_row]
        order = np.argsort(-keys, kind="mergesort")[:k]
        rows[q, : order.shape[0]] = nodes[order]
        scores[q, : order.shape[0]] = keys[order]
