"""faiss's OpenMP thread count for one query's exact scan (``index/native_threads.py``)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import faiss
import numpy as np
import pytest

from index.flat import exact_search
from index.metrics import Distance
from index.native_threads import one_native_thread, openmp_count


@pytest.fixture
def three_threads() -> Iterator[None]:
    """This thread's OpenMP count set to 3 for the test (any count above 1 would do),
    and given back afterwards."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(3)
    yield
    faiss.omp_set_num_threads(before)


@pytest.mark.usefixtures("three_threads")
def test_one_native_thread_inside_the_block_and_the_count_back_after() -> None:
    with one_native_thread():
        assert faiss.omp_get_max_threads() == 1
    assert faiss.omp_get_max_threads() == 3


@pytest.mark.usefixtures("three_threads")
def test_the_count_is_back_after_an_exception() -> None:
    with pytest.raises(RuntimeError), one_native_thread():
        raise RuntimeError("search failed")
    assert faiss.omp_get_max_threads() == 3


@pytest.mark.usefixtures("three_threads")
def test_another_thread_keeps_its_team_while_one_scans_alone() -> None:
    """A batch searched on another thread at the same time keeps every thread."""
    inside, checked = threading.Event(), threading.Event()
    seen: list[int] = []

    def scan_alone() -> None:
        with one_native_thread():
            seen.append(faiss.omp_get_max_threads())
            inside.set()
            checked.wait(10)

    scanner = threading.Thread(target=scan_alone)
    scanner.start()
    assert inside.wait(10)
    assert faiss.omp_get_max_threads() == 3
    checked.set()
    scanner.join(10)
    assert seen == [1]


@pytest.mark.usefixtures("three_threads")
def test_one_query_scanned_alone_finds_what_a_batch_finds() -> None:
    rng = np.random.default_rng(7)
    base = rng.standard_normal((5_000, 16)).astype(np.float32)
    queries = rng.standard_normal((2, 16)).astype(np.float32)
    alone_ids, alone_scores = exact_search(base, queries[:1], 10, Distance.DOT)
    batch_ids, batch_scores = exact_search(base, queries, 10, Distance.DOT)
    np.testing.assert_array_equal(alone_ids[0], batch_ids[0])
    np.testing.assert_allclose(alone_scores[0], batch_scores[0], rtol=1e-5)
    truth = np.argsort(-(base @ queries[0]))[:10]
    np.testing.assert_array_equal(alone_ids[0], truth)
    assert faiss.omp_get_max_threads() == 3


@pytest.mark.usefixtures("three_threads")
def test_the_count_is_read_and_set_in_faiss_own_runtime() -> None:
    get_count, set_count = openmp_count()
    if sys.platform == "linux":  # faiss-cpu's wheels bring their libgomp: found, not the fallback
        assert get_count is not faiss.omp_get_max_threads
    assert get_count() == 3
    set_count(2)
    assert faiss.omp_get_max_threads() == 2
