"""The wire shapes of multi-stage queries that are not vectors: ``prefetch`` items,
``fusion`` / ``rrf``, ``formula`` and ``mmr``, each parsed into its engine type with a
400 that names the problem. Every vector operand (``nearest``, a plain vector, a point
id) is read by ``routes/query.py``'s one nearest parser, whatever stage it sits in."""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError

from server.api.schemas import Prefetch
from server.engine.formula import FormulaQuery, parse_formula
from server.engine.fusion import DEFAULT_RRF_K, Fusion
from server.engine.multistage import MAX_PREFETCH_DEPTH
from server.engine.requests import Mmr
from server.errors import BadRequest

FUSIONS = ("rrf", "dbsf")


def prefetch_items(raw: Any, depth: int) -> list[Prefetch]:
    """``prefetch`` as sent (one object or a list), each level validated on its own so
    the depth bound is checked before any deeper parsing."""
    if raw is None:
        return []
    if depth > MAX_PREFETCH_DEPTH:
        raise BadRequest(f"Wrong input: prefetch nested deeper than {MAX_PREFETCH_DEPTH} levels")
    items = raw if isinstance(raw, list) else [raw]
    parsed = []
    for i, item in enumerate(items):
        try:
            parsed.append(Prefetch.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first.get("loc", ()))
            raise BadRequest(
                f"Wrong input: prefetch[{i}]{'.' + where if where else ''}: {first.get('msg')}"
            ) from None
    return parsed


def parse_combine(query: dict[str, Any]) -> Fusion | FormulaQuery | None:
    """``{"fusion": ...}``, ``{"rrf": ...}`` or ``{"formula": ..., "defaults": ...}``;
    None for any other query object."""
    if "fusion" in query:
        _only_keys(query, {"fusion"}, "a fusion query")
        method = query["fusion"]
        if method not in FUSIONS:
            expected = " or ".join(FUSIONS)
            raise BadRequest(f"Wrong input: unknown fusion method {method!r} (expected {expected})")
        return Fusion(method)
    if "rrf" in query:
        _only_keys(query, {"rrf"}, "an rrf query")
        return _rrf(query["rrf"])
    if "formula" in query:
        _only_keys(query, {"formula", "defaults"}, "a formula query")
        return parse_formula(query["formula"], query.get("defaults"))
    return None


def _rrf(raw: Any) -> Fusion:
    if not isinstance(raw, dict) or set(raw) - {"k", "weights"}:
        raise BadRequest('Wrong input: `rrf` is {"k": integer, "weights": [numbers]}')
    k = raw.get("k")
    if k is None:
        k = DEFAULT_RRF_K
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1 << 32:
        raise BadRequest(f"Wrong input: rrf `k` must be an integer of at least 1, got {k!r}")
    weights = raw.get("weights")
    if weights is None:
        return Fusion("rrf", k)
    if not isinstance(weights, list) or not all(_non_negative(w) for w in weights):
        raise BadRequest(
            f"Wrong input: rrf `weights` must be non-negative numbers, got {weights!r}"
        )
    return Fusion("rrf", k, tuple(float(w) for w in weights))


def parse_mmr(raw: Any, max_limit: int) -> Mmr:
    if not isinstance(raw, dict) or set(raw) - {"diversity", "candidates_limit"}:
        raise BadRequest('Wrong input: `mmr` is {"diversity": number, "candidates_limit": integer}')
    diversity = raw.get("diversity")
    if diversity is None:
        diversity = 0.5
    if (
        isinstance(diversity, bool)
        or not isinstance(diversity, int | float)
        or not 0 <= diversity <= 1
    ):
        raise BadRequest(f"Wrong input: mmr `diversity` must be in [0, 1], got {diversity!r}")
    limit = raw.get("candidates_limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise BadRequest(
            f"Wrong input: mmr `candidates_limit` must be an integer >= 0, got {limit!r}"
        )
    if limit is not None and limit > max_limit:
        raise BadRequest(
            f"Wrong input: mmr `candidates_limit` {limit} exceeds the limit of {max_limit}"
        )
    return Mmr(float(diversity), limit)


def _non_negative(value: Any) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value >= 0
    )


def _only_keys(query: dict[str, Any], allowed: set[str], what: str) -> None:
    extra = set(query) - allowed
    if extra:
        raise BadRequest(f"Wrong input: unexpected field(s) {sorted(extra)} in {what}")
