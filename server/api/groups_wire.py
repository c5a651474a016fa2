"""The wire shapes of grouped search and facets (Qdrant 1.19's ``QueryGroupsRequest``,
``SearchGroupsRequest``, ``RecommendGroupsRequest`` and ``FacetRequest``); only shapes
live here, meaning is checked by ``engine/groups.py`` and ``engine/facets.py``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, StrictStr

from server.api.schemas import (
    RawFilter,
    RawWithPayload,
    RawWithVector,
    SearchParams,
    Wire,
    WithVector,
)


class WithLookup(Wire):
    collection: StrictStr = Field(min_length=1)
    with_payload: RawWithPayload = None
    with_vectors: RawWithVector = None
    with_vector: RawWithVector = None


RawLookup = StrictStr | WithLookup | None


class QueryGroupsRequest(Wire):
    query: Any = None
    using: str | None = None
    prefetch: Any = None
    filter: RawFilter = None
    params: SearchParams | None = None
    score_threshold: float | None = None
    with_payload: RawWithPayload = None
    with_vector: WithVector = None
    lookup_from: Any = None
    shard_key: Any = None
    group_by: StrictStr = Field(min_length=1)
    group_size: int = Field(default=3, ge=1)
    limit: int = Field(default=10, ge=1)
    with_lookup: RawLookup = None
    explain: bool | None = None
    """Quiver extension: the searches grouping ran, with each one's plans."""
    strategy: Literal["exact", "graph", "post_filter"] | None = None
    """Quiver extension: force one search strategy instead of the planner's choice."""


class SearchGroupsRequest(Wire):
    vector: list[float] | dict[str, Any]
    filter: RawFilter = None
    params: SearchParams | None = None
    with_payload: RawWithPayload = None
    with_vector: WithVector = None
    score_threshold: float | None = None
    shard_key: Any = None
    group_by: StrictStr = Field(min_length=1)
    group_size: int = Field(ge=1)
    limit: int = Field(ge=1)
    with_lookup: RawLookup = None


class RecommendGroupsRequest(Wire):
    positive: list[Any] | None = None
    negative: list[Any] | None = None
    strategy: str | None = None
    filter: RawFilter = None
    params: SearchParams | None = None
    with_payload: RawWithPayload = None
    with_vector: RawWithVector = None
    score_threshold: float | None = None
    using: str | None = None
    lookup_from: Any = None
    shard_key: Any = None
    group_by: StrictStr = Field(min_length=1)
    group_size: int = Field(ge=1)
    limit: int = Field(ge=1)
    with_lookup: RawLookup = None


class FacetRequest(Wire):
    key: StrictStr = Field(min_length=1)
    limit: int = Field(default=10, ge=1)
    filter: RawFilter = None
    exact: bool | None = None
    """Counts are always exact here (they come straight from the index)."""
    shard_key: Any = None


GROUP_FIELDS = {"group_by", "group_size", "limit", "with_lookup"}
"""Fields of a groups request that the plain query / search request does not have."""
