"""Runtime configuration, read from ``QUIVER_*`` environment variables.

Every key is documented in the README's configuration table; tests build a
``Settings`` directly and hand it to ``create_app`` instead of touching the
environment.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[tuple[str, ...], NoDecode]
"""A list written as ``a,b,c`` in the environment."""

MAX_DEFAULT_WORKERS = 4
"""Past a few readers the one owner, which takes every write and every forwarded
request, is the limit; more can still be asked for with ``QUIVER_WORKERS``."""


def default_workers() -> int:
    """``QUIVER_WORKERS`` unset: one worker per CPU this process may run on, at most
    ``MAX_DEFAULT_WORKERS`` (only ``quiver serve`` forks; an app built in process is one)."""
    return min(_cpus(), MAX_DEFAULT_WORKERS)


def _cpus() -> int:
    """The CPUs this process may run on (a container's cpuset), not the machine's."""
    return len(os.sched_getaffinity(0)) or 1


class Settings(BaseSettings):
    """Server settings; the env prefix is ``QUIVER_`` (e.g. ``QUIVER_PORT``)."""

    model_config = SettingsConfigDict(env_prefix="QUIVER_", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=6333, ge=1, le=65535)
    grpc_port: int = Field(
        default=6334,
        ge=0,
        le=65535,
        description="Port of Qdrant's gRPC API (same host, keys and TLS as REST); 0: off.",
    )
    warm_up: bool = Field(
        default=True,
        description="Compile the recommend walk's numba kernels into numba's cache at start, "
        "in a child process (a cold compile takes ~10 s; the server loads them at the first "
        "recommend or discover query; off in the test suite, where servers start often).",
    )
    data_dir: Path = Path("./data")
    api_key: str | None = Field(
        default=None,
        description="When set, every route except health needs this `api-key` (or a JWT "
        "signed with it); an empty value is refused at start.",
    )
    read_only_api_key: str | None = Field(
        default=None, description="A second key that may read and search, never write."
    )
    jwt_rbac: bool = Field(
        default=False,
        description="Accept bearer JWTs signed with the API key (HS256) whose `access` claim "
        "grants global `r` / `m` or per-collection `r` / `rw` (Qdrant's jwt_rbac).",
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
    max_request_result_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1024,
        description="Memory the results of one search request may take, estimated before "
        "it runs as searches x min(limit + offset, points) x 64 bytes; over it, a 400.",
    )
    max_collections: int = Field(
        default=1_000,
        ge=1,
        description="Most collections a server holds (each keeps files open); creating "
        "one more is a 400.",
    )
    search_threads: int = Field(
        default=8, ge=1, description="Concurrent CPU-bound requests run in worker threads."
    )
    workers: int = Field(
        default_factory=default_workers,
        ge=0,
        description="Server processes of `quiver serve` (ADR 0013): one owns the data and "
        "every write; the others answer point reads from a read-only view and forward the "
        "rest. Default: one per CPU, at most 4; 1: a single process; 0: one per CPU. The "
        "workers share the sealed graphs through the page cache.",
    )
    group_commit: bool = Field(
        default=True,
        description="Concurrent writes to a collection share one fsync (each still answered "
        "only once it is on disk); false: one fsync per write, as SQLite's synchronous=FULL.",
    )
    lean_writes: bool = Field(
        default=True,
        description="Plain single-point-style upserts, deletes by id and payload sets skip "
        "FastAPI's request machinery (api/fast_write.py); false: every write takes the full "
        "route (for comparison in bench/bench_mixed.py).",
    )
    direct_lane: bool = Field(
        default=True,
        description="The lean paths' requests are answered by the HTTP protocol itself, below "
        "ASGI (api/direct_lane.py), when every check of the layers above them passes as the "
        "request stands; false: they go through the ASGI app (for comparison).",
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
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="A request head (line and headers) must arrive in full within this many "
        "seconds of the connection opening or the previous response; otherwise 408 and close.",
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Longest silence of a client in the middle of a request body before the "
        "connection is closed.",
    )
    max_header_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Larger request heads get 431."
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        description="Open connections before each new request is answered 503 at once; "
        "connections beyond twice this are closed on arrival.",
    )
    cors_origins: CommaList = Field(
        default=(),
        description="Origins (`https://app.example.com`, comma-separated; `*` for any) whose "
        "web pages may call the API: CORS headers and preflight answers for them. Empty: no "
        "CORS headers at all, and a write request from another origin is refused.",
    )
    allowed_hosts: CommaList = Field(
        default=(),
        description="Host names (comma-separated, `*.example.com` for subdomains) the "
        "server answers to; any other `Host` header gets 421 (DNS rebinding). Empty: any.",
    )
    tls_cert: Path | None = Field(
        default=None,
        description="PEM certificate (chain) file: serve HTTPS directly. Needs `tls_key`.",
    )
    tls_key: Path | None = Field(default=None, description="PEM private key of `tls_cert`.")
    tls_ca_cert: Path | None = Field(
        default=None,
        description="PEM CA bundle: when set, every client must present a certificate it "
        "signed (mutual TLS). Needs `tls_cert`.",
    )
    log_level: str = "info"
    log_json: bool = Field(default=True, description="Structured JSON log lines on stderr.")

    @field_validator("api_key", "read_only_api_key")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        """An empty key used to switch authentication off without a word (issue 18)."""
        if value is not None and not value.strip():
            raise ValueError("is empty: set a key, or leave the variable unset for no key")
        return value

    @field_validator("workers")
    @classmethod
    def _per_cpu(cls, value: int) -> int:
        return value or _cpus()

    @model_validator(mode="before")
    @classmethod
    def _one_worker_in_cluster_mode(cls, data: Any) -> Any:
        """Cluster mode (``ray_address``) defaults to one process: a sharded collection's
        reads all go to the owner, so readers would only add memory, and a Ray client in
        forked workers is not what the cluster tests run. ``QUIVER_WORKERS`` still wins."""
        if isinstance(data, dict) and data.get("ray_address") and data.get("workers") is None:
            return data | {"workers": 1}
        return data

    @model_validator(mode="after")
    def _keys_fit_together(self) -> Settings:
        if self.jwt_rbac and not self.api_key:
            raise ValueError("QUIVER_JWT_RBAC needs QUIVER_API_KEY (JWTs are signed with it)")
        if self.read_only_api_key is not None and self.read_only_api_key == self.api_key:
            raise ValueError("QUIVER_READ_ONLY_API_KEY must differ from QUIVER_API_KEY")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("QUIVER_TLS_CERT and QUIVER_TLS_KEY go together")
        if self.tls_ca_cert is not None and self.tls_cert is None:
            raise ValueError("QUIVER_TLS_CA_CERT (client certificates) needs QUIVER_TLS_CERT")
        return self

    @field_validator("cors_origins", "allowed_hosts", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
