"""The typed index spec against the dicts earlier builds wrote into segment manifests,
and the knob groups against the backends' parameter dataclasses."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from index.hnsw_faiss import HnswParams
from index.leanvec_index import LeanVecParams
from index.metrics import Distance
from index.muvera_index import MuveraIndexParams
from index.quantization import QuantizedParams
from index.registry import create_index, create_multi_index
from server.engine.config import CollectionConfig
from server.engine.index_spec import UnreadableSpec, read_spec
from server.engine.knobs import GraphParams, LeanVecKnobs, MuveraKnobs

BASE: dict[str, Any] = {"vectors": {"": {"size": 8, "distance": "Cosine"}}, "named_vectors": False}

# (config changes, the manifest "spec" bytes the build before the typed spec wrote for it)
WRITTEN_BEFORE: list[tuple[dict[str, Any], bytes]] = [
    ({}, b'{"type":"hnsw","params":{"m":16,"ef_construct":100},"insertion_order":"none"}'),
    ({"hnsw_config": {"m": 0}}, b'{"type":"flat","params":{},"insertion_order":"none"}'),
    (
        {"index": {"type": "flat", "insertion_order": "lid_desc"}},
        b'{"type":"flat","params":{},"insertion_order":"lid_desc"}',
    ),
    (
        {"quantization_config": {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}}},
        b'{"type":"hnsw_sq8","params":{"m":16,"ef_construct":100,"always_ram":true,'
        b'"quantile":0.99},"insertion_order":"none"}',
    ),
    (
        {"quantization_config": {"scalar": {"type": "int8"}}},
        b'{"type":"hnsw_sq8","params":{"m":16,"ef_construct":100,"always_ram":null,'
        b'"quantile":null},"insertion_order":"none"}',
    ),
    (
        {"quantization_config": {"product": {"compression": "x16"}}},
        b'{"type":"hnsw_pq","params":{"m":16,"ef_construct":100,"always_ram":null,'
        b'"compression":16},"insertion_order":"none"}',
    ),
    (
        {"quantization_config": {"binary": {"always_ram": False}}},
        b'{"type":"hnsw_binary","params":{"m":16,"ef_construct":100,"always_ram":false},'
        b'"insertion_order":"none"}',
    ),
    (
        {"quantization_config": {"rabitq": {"bits": 2}}},
        b'{"type":"hnsw_rabitq","params":{"m":16,"ef_construct":100,"always_ram":null,'
        b'"rabitq_bits":2},"insertion_order":"none"}',
    ),
    (
        {"quantization_config": {"rabitq": {}}},
        b'{"type":"hnsw_rabitq","params":{"m":16,"ef_construct":100,"always_ram":null,'
        b'"rabitq_bits":null},"insertion_order":"none"}',
    ),
    (
        {
            "index": {"type": "leanvec", "dims": 4, "variant": "ood", "training_generation": 3},
            "hnsw_config": {"m": 32, "ef_construct": 200},
        },
        b'{"type":"leanvec","params":{"m":32,"ef_construct":200,"dims":4,"variant":"ood",'
        b'"primary_bits":8,"secondary":"float32","rerank_factor":4.0,'
        b'"ood_solver":"closed_form"},"insertion_order":"none","training":3}',
    ),
    (
        {"index": {"type": "muvera", "secondary": "float16", "k_sim": 3, "final_dim": 1024}},
        b'{"type":"muvera","params":{"m":16,"ef_construct":100,"k_sim":3,"d_proj":16,'
        b'"repetitions":20,"fill_empty":true,"final_dim":1024,"seed":42,'
        b'"candidates_factor":40.0,"inner":"hnsw_sq8","storage":"float16"},'
        b'"insertion_order":"none"}',
    ),
]


@pytest.mark.parametrize(("changes", "written"), WRITTEN_BEFORE)
def test_a_spec_serialises_to_the_manifest_bytes_written_before(
    changes: dict[str, Any], written: bytes
) -> None:
    spec = CollectionConfig(**BASE, **changes).index_spec()
    assert orjson.dumps(spec.to_manifest()) == written


@pytest.mark.parametrize(("changes", "written"), WRITTEN_BEFORE)
def test_a_manifest_spec_written_before_reads_back_equal_so_nothing_is_rebuilt(
    changes: dict[str, Any], written: bytes
) -> None:
    stored = read_spec(orjson.loads(written))
    assert stored == CollectionConfig(**BASE, **changes).index_spec()
    assert stored is not None and orjson.dumps(stored.to_manifest()) == written


def test_a_spec_of_another_config_differs() -> None:
    hnsw = read_spec(orjson.loads(WRITTEN_BEFORE[0][1]))
    assert hnsw != CollectionConfig(**BASE, hnsw_config={"m": 32}).index_spec()
    assert hnsw != CollectionConfig(**BASE, index={"insertion_order": "lid_asc"}).index_spec()


def test_an_unreadable_manifest_spec_is_kept_and_never_equal_to_a_current_one() -> None:
    raw = {"type": "hnsw", "params": {"m": 16, "ef_construct": 100, "gone": 1}}
    stored = read_spec(raw)
    assert isinstance(stored, UnreadableSpec)
    assert stored.type == "hnsw" and stored.to_manifest() == raw
    assert stored != CollectionConfig(**BASE).index_spec()
    assert read_spec(None) is None


@pytest.mark.parametrize(("changes", "written"), WRITTEN_BEFORE)
def test_every_spec_builds_its_backend(changes: dict[str, Any], written: bytes) -> None:
    spec = CollectionConfig(**BASE, **changes).index_spec()
    params = spec.backend_params()
    if spec.type == "muvera":
        assert create_multi_index("muvera", 8, Distance.COSINE, params) is not None
    else:
        assert create_index(spec.type, 8, Distance.COSINE, params) is not None


@pytest.mark.parametrize(
    ("group", "backend"),
    [
        (GraphParams, HnswParams),
        (GraphParams, QuantizedParams),
        (LeanVecKnobs, LeanVecParams),
        (MuveraKnobs, MuveraIndexParams),
    ],
)
def test_each_knob_group_matches_its_backend_dataclass(group: type, backend: type) -> None:
    """The server declares a knob's range, the backend its default: same names, same
    defaults, so the two cannot drift apart."""
    defaults = {f.name: f.default for f in dataclasses.fields(backend)}
    assert set(group.model_fields) <= set(defaults)
    assert {n: f.default for n, f in group.model_fields.items()} == {
        n: defaults[n] for n in group.model_fields
    }


PLACED: list[tuple[dict[str, Any], dict[str, Any], str, dict[str, Any]]] = [
    # (vector params, collection changes, backend, the placement knobs it is built with)
    ({"on_disk": True}, {"hnsw_config": {"on_disk": True}}, "hnsw", {"on_disk": True,
     "graph_on_disk": True}),
    ({"hnsw_config": {"on_disk": True}}, {}, "hnsw", {"graph_on_disk": True}),
    ({"hnsw_config": {"on_disk": False}}, {"hnsw_config": {"on_disk": True}}, "hnsw", {}),
    ({"on_disk": True}, {"quantization_config": {"scalar": {"type": "int8", "always_ram": True}}},
     "hnsw_sq8", {"on_disk": True, "always_ram": True}),
    ({"on_disk": True}, {"index": {"type": "leanvec"}, "hnsw_config": {"on_disk": True}},
     "leanvec", {"on_disk": True, "graph_on_disk": True}),
    # Qdrant 1.19's `memory` overrides `on_disk` (cached is placed as cold)
    ({"memory": "cold"}, {"hnsw_config": {"memory": "cached"}}, "hnsw", {"on_disk": True,
     "graph_on_disk": True}),
    ({"memory": "pinned", "on_disk": True}, {"hnsw_config": {"on_disk": True,
     "memory": "pinned"}}, "hnsw", {}),
    ({"hnsw_config": {"memory": "pinned"}}, {"hnsw_config": {"on_disk": True}}, "hnsw", {}),
]  # fmt: skip


@pytest.mark.parametrize(("vector", "changes", "kind", "knobs"), PLACED)
def test_on_disk_flags_reach_the_backend_params(
    vector: dict[str, Any], changes: dict[str, Any], kind: str, knobs: dict[str, Any]
) -> None:
    """Qdrant's ``on_disk`` / ``hnsw_config.on_disk`` (the vector's own first) become the
    backend's ``on_disk`` / ``graph_on_disk``; only set flags are written, so a vector
    with none keeps the manifest bytes written before."""
    vectors = {"": {"size": 8, "distance": "Cosine"} | vector}
    spec = CollectionConfig(vectors=vectors, named_vectors=False, **changes).index_spec()
    built, params = spec.backend_of("")
    assert built == kind
    placement = {k: params.get(k) for k in knobs}
    assert placement == knobs
    assert not ({"on_disk", "graph_on_disk"} - set(knobs)) & set(params)
    assert create_index(built, 8, Distance.COSINE, params) is not None
