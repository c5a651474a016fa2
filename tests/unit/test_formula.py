"""``engine/formula.py``: parsing refusals and the lazy evaluation Qdrant does (a zero
factor or numerator spares the rest of the expression its errors), over numpy arrays."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from server.engine.formula import Candidates, FormulaError, evaluate, parse_formula


def scores_of(
    raw: Any, payloads: list[dict[str, Any]], scores: list[float], defaults: Any = None
) -> list[float]:
    candidates = Candidates(
        list(range(len(payloads))),
        payloads,
        [np.array(scores, dtype=np.float64)],
        lambda name: np.zeros(len(payloads), dtype=bool),
    )
    return evaluate(parse_formula(raw, defaults), candidates).tolist()


def test_zero_factor_spares_a_missing_variable() -> None:
    formula = {"mult": [{"key": "on", "match": {"value": True}}, "boost"]}
    payloads = [{"on": True, "boost": 3}, {"on": False}]
    assert scores_of(formula, payloads, [1.0, 2.0]) == [3.0, 0.0]


def test_missing_variable_where_evaluated_is_an_error() -> None:
    with pytest.raises(FormulaError, match="No value found for boost"):
        scores_of({"sum": ["$score", "boost"]}, [{"boost": 1}, {}], [1.0, 2.0])


def test_zero_numerator_spares_a_zero_denominator() -> None:
    division = {"div": {"left": "a", "right": "b"}}
    assert scores_of(division, [{"a": 0, "b": 0}, {"a": 6, "b": 3}], [0.0, 0.0]) == [0.0, 2.0]
    with pytest.raises(FormulaError, match="non-finite"):
        scores_of(division, [{"a": 1, "b": 0}], [0.0])


def test_defaults_fill_scores_and_payload_values() -> None:
    formula = {"sum": ["$score[1]", "x"]}
    assert scores_of(formula, [{}, {"x": [2]}], [0.0, 0.0], {"$score[1]": 0.5, "x": 1}) == [
        1.5,
        2.5,
    ]


def test_overflow_is_an_error() -> None:
    with pytest.raises(FormulaError, match="non-finite"):
        scores_of({"exp": "$score"}, [{}], [1000.0])


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"sum": 1},
        {"max": []},
        {"pow": {"base": 1}},
        "$score[-1]",
        True,
        {"lin_decay": {"x": 1, "midpoint": 2}},
    ],
)
def test_malformed_formulas_are_refused(raw: Any) -> None:
    with pytest.raises(FormulaError):
        parse_formula(raw, None)
