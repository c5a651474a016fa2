"""The planner's choice for each regime of candidate count and selectivity."""

from __future__ import annotations

from typing import Any

import pytest

from server.engine.planner import PlannerConfig, choose_plan, force


def plan(**overrides: Any) -> Any:
    args: dict[str, Any] = {
        "segment_size": 200_000,
        "candidates": 200_000,
        "estimated": None,
        "k": 10,
        "dim": 50,
        "has_graph": True,
        "exact": False,
        "ef": 100,
        "full_scan_kb": 10_000,
    }
    return choose_plan(**(args | overrides))


def test_no_candidates_touches_nothing() -> None:
    assert plan(candidates=0).strategy == "none"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exact": True}, "exact requested"),
        ({"has_graph": False}, "segment has no graph"),
        ({"candidates": 5}, "under full_scan_threshold"),
        ({"candidates": 40_000}, "under full_scan_threshold"),
    ],
)
def test_exact_when_asked_without_graph_or_few_candidates(
    overrides: dict[str, Any], reason: str
) -> None:
    chosen = plan(**overrides)
    assert chosen.strategy == "exact"
    assert reason in chosen.reason


def test_unfiltered_search_walks_the_graph_at_the_given_ef() -> None:
    chosen = plan()
    assert (chosen.strategy, chosen.ef, chosen.k) == ("graph", 100, 10)


def test_broad_filter_post_filters_with_oversampling() -> None:
    chosen = plan(candidates=150_000)
    assert chosen.strategy == "post_filter"
    assert chosen.k == 20  # 10 / 0.75 * 1.5
    assert chosen.ef == 100


def test_selective_filter_raises_ef_as_selectivity_falls() -> None:
    medium = plan(candidates=80_000)
    narrow = plan(candidates=60_000, segment_size=2_000_000)
    assert (medium.strategy, narrow.strategy) == ("graph", "graph")
    assert 100 < medium.ef < narrow.ef <= 100 * PlannerConfig().max_ef_boost


def test_full_scan_threshold_is_in_kilobytes_of_vectors() -> None:
    assert plan(candidates=51_000).strategy == "exact"  # 51,000 x 200 B < 10,000 KB
    assert plan(candidates=52_000).strategy == "graph"


def test_force_overrides_the_choice() -> None:
    chosen = plan(candidates=1000)
    assert chosen.strategy == "exact"
    forced = force(chosen, "graph", 200_000, 10, 100, PlannerConfig())
    assert (forced.strategy, forced.ef) == ("graph", 800)  # ef x min(8, 1/sqrt(0.005))
    post = force(chosen, "post_filter", 200_000, 10, 100, PlannerConfig())
    assert post.strategy == "post_filter"
    assert post.k == 3000


def test_a_small_pinned_tenant_is_scored_exactly_past_full_scan_threshold() -> None:
    """The tenant rule: 5% of the segment, far over full_scan_threshold, yet exact."""
    chosen = plan(candidates=10_000, dim=512, tenant="group=a")
    assert (chosen.strategy, chosen.tenant) == ("exact", "group=a")
    assert "tenant holds 0.0500" in chosen.reason
    assert plan(candidates=10_000, dim=512).strategy == "graph"  # the same count, no tenant


def test_a_big_pinned_tenant_falls_back_to_the_graph() -> None:
    chosen = plan(candidates=30_000, dim=512, tenant="group=a")
    assert (chosen.strategy, chosen.tenant) == ("graph", "group=a")
    lowered = plan(
        candidates=10_000,
        dim=512,
        tenant="group=a",
        config=PlannerConfig(tenant_exact_fraction=0.01),
    )
    assert lowered.strategy == "graph"
