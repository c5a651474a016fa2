"""``SearchBatch``: the wire form of a batch of searches sent to every shard."""

from __future__ import annotations

import pickle

import numpy as np

from server.cluster.shards import SearchBatch
from server.engine.collection import SearchSpec
from server.engine.filters import parse_filter
from server.engine.payload import PayloadSelector


def specs() -> list[SearchSpec]:
    rng = np.random.default_rng(0)
    red = {"must": [{"key": "color", "match": {"value": "red"}}]}
    out = []
    for i in range(7):
        out.append(
            SearchSpec(
                using="",
                vector=rng.normal(size=4).astype(np.float32),
                limit=10 if i < 4 else 3,
                filter=parse_filter(red) if i % 2 else None,
                with_payload=PayloadSelector.of("all"),
            )
        )
    return out


def test_pack_then_unpack_gives_the_same_specs() -> None:
    original = specs()
    packed = SearchBatch.pack(original)
    assert packed is not None
    assert packed.vectors.shape == (7, 4)
    assert len(packed.templates) == 7  # the filter alternates: no two neighbours share
    round_trip = pickle.loads(pickle.dumps(packed)).unpack()
    for want, got in zip(original, round_trip, strict=True):
        assert np.array_equal(want.vector, got.vector)
        assert (want.limit, want.filter, want.with_payload) == (
            got.limit,
            got.filter,
            got.with_payload,
        )


def test_equal_parameters_are_sent_once() -> None:
    same = [s for s in specs() if s.filter is None and s.limit == 10]
    packed = SearchBatch.pack(same * 5)
    assert packed is not None
    assert len(packed.templates) == 1 and packed.template_of == [0] * len(same) * 5


def test_multi_vectors_and_mixed_dimensions_are_not_packed() -> None:
    multi = SearchSpec(using="", vector=np.ones((3, 4), dtype=np.float32))
    other = SearchSpec(using="b", vector=np.ones(8, dtype=np.float32))
    assert SearchBatch.pack([multi]) is None
    assert SearchBatch.pack([*specs(), other]) is None
    assert SearchBatch.pack([]) is None
