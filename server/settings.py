"""Runtime configuration, read from ``QUIVER_*`` environment variables.

Every key is documented in the README's configuration table; tests build a
``Settings`` directly and hand it to ``create_app`` instead of touching the
environment.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Server settings; the env prefix is ``QUIVER_`` (e.g. ``QUIVER_PORT``)."""

    model_config = SettingsConfigDict(env_prefix="QUIVER_", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=6333, ge=1, le=65535)
    data_dir: Path = Path("./data")
    api_key: str | None = Field(
        default=None, description="When set, every route except health needs this `api-key`."
    )
    max_request_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="Larger request bodies get 413."
    )
    max_batch_points: int = Field(default=100_000, ge=1, description="Points per upsert request.")
    max_limit: int = Field(default=100_000, ge=1, description="Largest `limit` a query may ask.")
    max_vector_size: int = Field(default=65_536, ge=1, description="Largest vector dimension.")
    max_search_batch: int = Field(default=10_000, ge=1, description="Queries per batch request.")
    max_bulk_line_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        description="Longest NDJSON line (one point) of a bulk load; a 65,536-d vector "
        "written at full float precision is about 1.6 MB, so this leaves room for several "
        "named vectors or a multi-vector and a large payload.",
    )
    max_bulk_batch_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1024,
        description="Largest Arrow IPC message (record batch) of a bulk load.",
    )
    search_threads: int = Field(
        default=8, ge=1, description="Concurrent CPU-bound requests run in worker threads."
    )
    idle_seal_s: float = Field(
        default=10.0,
        ge=0,
        description="Idle seconds before a large exact-search tail is indexed (0: never).",
    )
    ray_address: str | None = Field(
        default=None,
        description="Cluster mode: the Ray cluster that runs the shards of collections "
        "created with `shard_number` > 1 (`ray://host:10001`, or `local` for a Ray on this "
        "machine). Unset: shards run inside the server process.",
    )
    ray_shard_cpus: float = Field(
        default=0.5,
        gt=0,
        description="Cluster mode: CPUs Ray reserves for each shard actor (a fraction "
        "lets several shards share a core).",
    )
    log_level: str = "info"
    log_json: bool = Field(default=True, description="Structured JSON log lines on stderr.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
