"""Post-hoc token pooling (index/pooling.py)."""

from __future__ import annotations

import numpy as np
import pytest

from index.multivector import Ragged, exact_maxsim
from index.pooling import pool_tokens, pooled_size
from tests.helpers.data import clustered_set


@pytest.mark.parametrize(
    ("n", "factor", "cap", "kept"),
    [(9, 2.0, None, 5), (9, 3.0, None, 3), (9, None, 4, 4), (9, 2.0, 3, 3), (1, 3.0, None, 1),
     (4, None, 10, 4)],
)  # fmt: skip
def test_pooled_size(n: int, factor: float | None, cap: int | None, kept: int) -> None:
    assert pooled_size(n, factor, cap) == kept


def test_two_tight_clusters_pool_to_their_directions() -> None:
    rng = np.random.default_rng(0)
    a, b = np.eye(6)[0], np.eye(6)[3]
    tokens = np.concatenate(
        [a + 0.01 * rng.standard_normal((5, 6)), b + 0.01 * rng.standard_normal((3, 6))]
    )
    tokens = tokens * np.array([[2.0]] * 5 + [[1.0]] * 3)  # lengths 2 and 1
    pooled = pool_tokens(Ragged.from_arrays([tokens.astype(np.float32)], 6), None, 2).item(0)
    assert pooled.shape == (2, 6)
    order = np.argsort(-pooled[:, 0])
    np.testing.assert_allclose(pooled[order[0]], 2 * a, atol=0.05)  # mean length kept
    np.testing.assert_allclose(pooled[order[1]], b, atol=0.05)


def test_empty_and_small_items_are_kept_and_output_is_deterministic() -> None:
    rng = np.random.default_rng(1)
    items = [rng.standard_normal((n, 4)).astype(np.float32) for n in (0, 1, 7, 2)]
    ragged = Ragged.from_arrays(items, 4)
    pooled = pool_tokens(ragged, 2.0, None)
    assert pooled.lengths.tolist() == [0, 1, 4, 1]
    np.testing.assert_array_equal(pooled.item(1), items[1])
    np.testing.assert_array_equal(pool_tokens(ragged, 2.0, None).tokens, pooled.tokens)
    with pytest.raises(ValueError, match="pool_factor"):
        pool_tokens(ragged, 0.5, None)


def test_pooling_by_two_keeps_most_of_the_top10_on_clustered_sets() -> None:
    tokens, offsets, q_tokens, q_offsets = clustered_set(400, 30, dim=32, seed=2)
    docs, queries = Ragged(tokens, offsets), Ragged(q_tokens, q_offsets)
    truth, _ = exact_maxsim(queries, docs, 10)
    pooled = pool_tokens(docs, 2.0, None)
    found, _ = exact_maxsim(queries, pooled, 10)
    agreement = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    assert len(pooled.tokens) <= len(docs.tokens) / 2 + len(docs)
    assert agreement >= 0.8, agreement  # measured 0.853
