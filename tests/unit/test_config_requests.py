"""Create and PATCH requests turned into configs by the engine (no server)."""

from __future__ import annotations

from typing import Any

import pytest

from server.api import render
from server.engine.config import CollectionConfig
from server.engine.config_requests import config_from_request, patched_config
from server.engine.quantization_config import ScalarQuantization
from server.errors import BadRequest, ConfigValidationError, UnsupportedFeature

VECTORS: dict[str, Any] = {"vectors": {"size": 8, "distance": "Cosine"}}


def create(**request: Any) -> CollectionConfig:
    return config_from_request(VECTORS | request, max_vector_size=1024)


def test_a_patch_sets_only_the_knobs_it_names() -> None:
    config = create(hnsw_config={"m": 32, "ef_construct": 200})
    patched = patched_config(config, {"hnsw_config": {"ef_construct": 300, "m": None}})
    assert (patched.hnsw_config.m, patched.hnsw_config.ef_construct) == (32, 300)
    assert patched.optimizers_config == config.optimizers_config


def test_qdrant_only_knobs_are_accepted_and_ignored() -> None:
    config = create(
        hnsw_config={"inline_storage": True},
        optimizers_config={"prevent_unoptimized": False, "max_optimization_threads": "auto"},
        wal_config={"wal_retain_closed": 2},
    )
    assert config == create()


def test_prevent_unoptimized_true_is_refused_not_ignored() -> None:
    with pytest.raises(UnsupportedFeature, match="prevent_unoptimized"):
        create(optimizers_config={"prevent_unoptimized": True})
    with pytest.raises(UnsupportedFeature, match="prevent_unoptimized"):
        patched_config(create(), {"optimizers_config": {"prevent_unoptimized": True}})


def test_a_typed_quantization_config_is_stored_and_reported_as_sent() -> None:
    sent = {"scalar": {"type": "int8", "quantile": 0.99}}
    config = create(quantization_config=sent)
    assert isinstance(config.quantization_config, ScalarQuantization)
    assert render.collection_config(config)["quantization_config"] == sent
    assert patched_config(config, {"quantization_config": "Disabled"}).quantization_config is None


@pytest.mark.parametrize(
    ("request_", "error", "message"),
    [
        ({"hnsw_config": {"m": "many"}}, ConfigValidationError, "hnsw_config.m"),
        ({"index": {"typo": 1}}, ConfigValidationError, "index.typo"),
        ({"index": {"type": "leanvec", "dims": 99}}, BadRequest, "dims"),
        ({"quantization_config": {"rabitq": {"bits": 12}}}, BadRequest, "bits"),
    ],
)
def test_bad_requests_name_the_field(
    request_: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        create(**request_)
    with pytest.raises(error, match=message):
        patched_config(create(), request_)


def test_create_refuses_what_quiver_does_not_build() -> None:
    with pytest.raises(UnsupportedFeature, match="sharding_method"):
        create(sharding_method="custom")


def test_a_patch_changes_the_per_vector_params_it_sends() -> None:
    patched = patched_config(create(), {"vectors": {"": {"on_disk": True}}})
    assert patched.vectors[""].on_disk is True
    assert patched.vectors[""].size == create().vectors[""].size


def test_a_stored_config_outside_todays_ranges_still_loads() -> None:
    """Ranges guard requests; an older build's stored config must keep opening."""
    stored = create().model_dump(mode="json")
    stored["hnsw_config"]["m"] = 10**6
    assert CollectionConfig.model_validate(stored).hnsw_config.m == 10**6
