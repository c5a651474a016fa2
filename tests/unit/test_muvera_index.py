"""The muvera backend (index/muvera_index.py): FDE candidates, exact MaxSim re-ranking."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from index.base import SearchParams
from index.metrics import Distance
from index.multivector import Ragged, exact_maxsim
from index.muvera_index import MuveraIndex, MuveraIndexParams
from index.registry import create_multi_index, index_from_bytes
from tests.helpers.data import clustered_set, recall

REFERENCE = Path(__file__).parents[2] / "bench" / "reference" / "muvera.json"
TOLERANCE = 0.02
INNER_KINDS = ("hnsw_sq8", "hnsw", "flat")
pytestmark = pytest.mark.slow  # three indexes over 1,500 token sets, built once


def data() -> tuple[Ragged, Ragged]:
    """1,500 ColBERT-like documents (10-30 unit 32-d tokens around 2-3 topics), 60 queries."""
    tokens, offsets, q_tokens, q_offsets = clustered_set(1500, 60, dim=32, seed=5)
    return Ragged(tokens, offsets), Ragged(q_tokens, q_offsets)


@pytest.fixture(scope="module")
def built() -> dict[str, tuple[MuveraIndex, Ragged, np.ndarray]]:
    docs, queries = data()
    truth, _ = exact_maxsim(queries, docs, 10)
    out = {}
    for inner in INNER_KINDS:
        index = MuveraIndex(32, Distance.DOT, MuveraIndexParams(inner=inner))  # type: ignore[arg-type]
        for start in range(0, len(docs), 500):  # built in chunks, as the build worker does
            index.add(docs.take(np.arange(start, min(len(docs), start + 500))))
        out[inner] = (index, queries, truth)
    return out


@pytest.mark.parametrize("inner", INNER_KINDS)
def test_recall_at_defaults_matches_the_reference(
    built: dict[str, tuple[MuveraIndex, Ragged, np.ndarray]], inner: str
) -> None:
    index, queries, truth = built[inner]
    reference = json.loads(REFERENCE.read_text())
    measured = recall(index.search(queries, 10)[0], truth)
    assert measured >= 0.9
    assert abs(measured - reference["recall_at_10_default"][inner]) <= TOLERANCE, measured
    few = recall(index.search(queries, 10, params=SearchParams(oversampling=2))[0], truth)
    assert abs(few - reference["recall_at_10_oversampling_2"][inner]) <= TOLERANCE, few


def test_scores_are_exact_maxsim_and_exact_param_scans(
    built: dict[str, tuple[MuveraIndex, Ragged, np.ndarray]],
) -> None:
    index, queries, truth = built["hnsw_sq8"]
    exact_ids, exact_scores = index.search(queries, 10, params=SearchParams(exact=True))
    assert exact_ids.tolist() == truth.tolist()
    found, scores = index.search(queries, 10)
    rescored, _ = exact_maxsim(queries, index.items(), 10)
    for q in range(len(queries)):
        by_id = dict(zip(exact_ids[q].tolist(), exact_scores[q].tolist(), strict=True))
        for doc, score in zip(found[q].tolist(), scores[q].tolist(), strict=True):
            if doc in by_id:
                assert score == pytest.approx(by_id[doc], rel=1e-5)
    assert rescored.tolist() == truth.tolist()


def test_more_candidates_never_lose_recall(
    built: dict[str, tuple[MuveraIndex, Ragged, np.ndarray]],
) -> None:
    index, queries, truth = built["hnsw"]
    recalls = [
        recall(index.search(queries, 10, params=SearchParams(oversampling=f))[0], truth)
        for f in (1, 4, 40)
    ]
    assert recalls == sorted(recalls) and recalls[0] < recalls[-1]


def test_a_wider_beam_re_ranks_more_candidates(
    built: dict[str, tuple[MuveraIndex, Ragged, np.ndarray]],
) -> None:
    """Without oversampling, ef widens the re-ranked set past k x candidates_factor (400):
    a beam over every document re-ranks them all, so recall reaches exact MaxSim's."""
    index, queries, truth = built["hnsw"]
    default = recall(index.search(queries, 10)[0], truth)
    everything = recall(index.search(queries, 10, params=SearchParams(ef=1500))[0], truth)
    assert everything >= 0.99 and everything >= default, (default, everything)
    capped = SearchParams(ef=1500, oversampling=2)
    assert recall(index.search(queries, 10, params=capped)[0], truth) < everything


def test_filters_and_deletes_are_honoured(
    built: dict[str, tuple[MuveraIndex, Ragged, np.ndarray]],
) -> None:
    docs, queries = data()
    index = MuveraIndex(32, Distance.DOT, MuveraIndexParams(inner="hnsw"))
    index.add(docs)
    index.delete(np.arange(0, 1500, 3))
    allowed = np.arange(1500) % 2 == 0
    found, _ = index.search(queries, 10, allowed=allowed)
    kept = found[found >= 0]
    assert len(kept) == found.size and (kept % 2 == 0).all() and (kept % 3 != 0).all()
    exact, _ = index.search(queries, 10, allowed=allowed, params=SearchParams(exact=True))
    assert recall(found, exact) >= 0.9


def test_rows_without_tokens_are_never_returned() -> None:
    docs, queries = data()
    items = docs.take(np.arange(50)).items()
    items[7] = np.zeros((0, 32), dtype=np.float32)
    index = create_multi_index("muvera", 32, Distance.DOT, {"inner": "hnsw_sq8"})
    index.add(Ragged.from_arrays(items, 32))
    found, _ = index.search(queries, 50)
    assert 7 not in found and (found >= 0).sum(axis=1).tolist() == [49] * len(queries)


@pytest.mark.parametrize("inner", INNER_KINDS)
def test_serialisation_round_trip_answers_the_same(
    built: dict[str, tuple[MuveraIndex, Ragged, np.ndarray]], inner: str
) -> None:
    index, queries, _ = built[inner]
    restored = index_from_bytes(index.to_bytes())
    assert isinstance(restored, MuveraIndex) and restored.params == index.params
    assert restored.search(queries, 10)[0].tolist() == index.search(queries, 10)[0].tolist()
    parts = index.stats().parts or {}
    assert {"tokens", "fde_graph" if inner != "flat" else "fde_vectors"} <= set(parts)


def test_memory_split_counts_codes_at_a_quarter_of_floats(
    built: dict[str, tuple[MuveraIndex, Ragged, np.ndarray]],
) -> None:
    codes = (built["hnsw_sq8"][0].stats().parts or {})["fde_codes"]
    floats = (built["hnsw"][0].stats().parts or {})["fde_vectors"]
    assert codes * 4 == floats


@pytest.mark.parametrize(
    "kwargs", [{"candidates_factor": 0.5}, {"inner": "ivf"}, {"k_sim": 13}, {"repetitions": 0}]
)
def test_bad_params_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        MuveraIndexParams(**kwargs)  # type: ignore[arg-type]
