"""LeanVec's default ``dims`` comes from the data and reaches recall@10 0.95 (issue 20).

A fixed ``D / 4`` kept too little of a flat spectrum: the true neighbours fell so far down
the primary ranking that no beam the test allows brought them back."""

from __future__ import annotations

import numpy as np
import pytest

from index.base import SearchParams
from index.flat import exact_search
from index.leanvec import KEPT_VARIANCE, dims_keeping
from index.leanvec_index import LeanVecIndex, LeanVecParams
from index.metrics import Distance, normalize_rows
from tests.helpers.data import recall

DIM, RANK, EF = 64, 48, 64


def low_rank_plus_noise(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(base, queries, exact top-10): a rank-48 signal with a flat spectrum
    (``(1 + i) ** -0.3``) plus isotropic noise of 5% of its energy, unit rows."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((DIM, RANK)))
    spectrum = (1.0 + np.arange(RANK)) ** -0.3
    noise = np.sqrt(0.05 * float(np.sum(spectrum**2)) / DIM)

    def draw(count: int) -> np.ndarray:
        signal = (rng.standard_normal((count, RANK)) * spectrum) @ basis.T
        return normalize_rows((signal + noise * rng.standard_normal((count, DIM))).astype("f4"))

    base, queries = draw(2000), draw(200)
    truth, _ = exact_search(base, queries, 10, Distance.COSINE)
    return base, queries, truth


def recall_at(params: LeanVecParams, ef: int) -> tuple[float, LeanVecIndex]:
    base, queries, truth = low_rank_plus_noise()
    index = LeanVecIndex(DIM, Distance.COSINE, params)
    index.train(base)
    index.add(base)
    found, _ = index.search(queries, 10, params=SearchParams(ef=ef))
    return recall(found, truth), index


def test_default_dims_reach_recall_095() -> None:
    reached, index = recall_at(LeanVecParams(), EF)
    assert reached >= 0.95, reached  # measured 0.99 at 40 dims
    assert index.dims is not None and DIM // 4 < index.dims < DIM


def test_a_quarter_of_the_dimensions_does_not_on_this_data() -> None:
    """The data set is hard enough to tell the rules apart (else the test above proves
    nothing): D / 4 at the same beam stays well short."""
    reached, _ = recall_at(LeanVecParams(dims=DIM // 4), EF)
    assert reached < 0.9, reached  # measured 0.84


def test_explicit_dims_are_kept() -> None:
    _, index = recall_at(LeanVecParams(dims=24), 16)
    assert index.dims == 24
    assert index.model is not None and index.model.dim_out == 24


def test_default_dims_keep_the_stated_variance() -> None:
    base, _, _ = low_rank_plus_noise()
    covariance = np.cov(base.T.astype(np.float64), bias=True)
    chosen = dims_keeping(covariance, KEPT_VARIANCE)
    values = np.sort(np.linalg.eigvalsh(covariance))[::-1]
    kept = np.cumsum(values) / values.sum()
    assert kept[chosen - 1] >= KEPT_VARIANCE > kept[chosen - 2]


@pytest.mark.parametrize("fraction", [0.0, 1.5])
def test_kept_variance_outside_0_1_is_refused(fraction: float) -> None:
    with pytest.raises(ValueError, match="kept variance"):
        dims_keeping(np.eye(4), fraction)


def test_full_variance_stops_at_the_rank() -> None:
    covariance = np.diag([4.0, 2.0, 1.0, 0.0, 0.0])
    assert dims_keeping(covariance, 1.0) == 3
    assert dims_keeping(np.zeros((5, 5)), 0.9) == 5
