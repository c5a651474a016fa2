"""``lean_layer.Construct`` makes the object ``model_construct`` makes, for every wire
model the lean layers build, and hands anything it cannot make alike to pydantic."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

from server.api.lean_layer import Construct
from server.api.schemas import (
    PointsList,
    PointsSelector,
    PointStruct,
    QueryRequest,
    SearchParams,
    SearchRequest,
    SetPayload,
)


def _state(made: BaseModel) -> tuple[Any, ...]:
    return (
        list(made.__dict__.items()),  # the values and their order
        made.model_fields_set,
        made.__pydantic_extra__,
        made.__pydantic_private__,
        made.model_dump(),
    )


CASES: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (QueryRequest, {"query": [0.5, 1.0], "limit": 10}),
    (QueryRequest, {"query": [0.5], "params": SearchParams(hnsw_ef=96), "with_payload": True}),
    (SearchRequest, {"vector": [1.0, 2.0], "limit": 3, "score_threshold": 0.5}),
    (SearchParams, {"hnsw_ef": 96, "exact": False}),
    (PointStruct, {"id": 7, "vector": [1.0], "payload": {"a": 1}}),
    (PointsSelector, {"points": [1, 2]}),
    (SetPayload, {"payload": {"a": 1}, "points": [1], "key": None}),
    (PointsList, {"points": [PointStruct(id=1, vector=[1.0])]}),
]


@pytest.mark.parametrize(("model", "values"), CASES)
def test_the_object_is_the_one_model_construct_makes(
    model: type[BaseModel], values: dict[str, Any]
) -> None:
    made = Construct(model)(**values)
    assert type(made) is model
    assert _state(made) == _state(model.model_construct(**values))


def test_the_lean_models_take_the_quick_way() -> None:
    """Not a fallback in disguise: these are the models built per request."""
    for model, _ in CASES:
        assert Construct(model)._plain


class _WithDefault(BaseModel):
    size: int = Field(default=5)
    name: str


class _OnlyDefaults(BaseModel):
    size: int = 5


@pytest.mark.parametrize(
    ("model", "values"),
    [
        (SearchRequest, {"limit": 3}),  # a required field left out
        (QueryRequest, {"query": [1.0], "not_a_field": 1}),  # a key that is no field
        (_WithDefault, {"name": "x"}),  # a default that is not None
        (_OnlyDefaults, {}),  # the same, with nothing given
    ],
)
def test_what_it_cannot_make_alike_goes_to_model_construct(
    model: type[BaseModel], values: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    made = Construct(model)
    expected = _state(model.model_construct(**values))
    calls = []
    original = model.model_construct

    def counted(**given: Any) -> BaseModel:
        calls.append(given)
        return original(**given)

    monkeypatch.setattr(model, "model_construct", counted)
    assert _state(made(**values)) == expected
    assert calls == [values]
