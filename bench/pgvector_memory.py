"""PostgreSQL + pgvector holding the same vectors, for bench_memory.py (issue 24).

A throwaway cluster (``initdb`` in a temporary folder, listening on 127.0.0.1 only) loads
the vectors into a ``vector(D)`` table with ``COPY``, builds an HNSW index (m 16,
ef_construction 200, cosine) and is measured: the sum of every cluster process's PSS
outside shared memory (``/proc/PID/smaps_rollup``) plus the shared buffers holding a page
(``pg_buffercache``). Then the cluster restarts, ``pg_prewarm`` reads the table and its
index back into shared buffers (Quiver holds its index in memory once open), and it is
measured again.

Needs PostgreSQL (``PG_BIN``, default /usr/lib/postgresql/15/bin) with the ``vector``
extension installed; only this benchmark does. Run as root, the cluster runs as the
``postgres`` user (PostgreSQL refuses root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
PAGE = 8192


def available() -> str | None:
    """Why pgvector cannot run here, or None when it can."""
    if not (PG_BIN / "initdb").exists():
        return f"no PostgreSQL in {PG_BIN}"
    sharedir = subprocess.run(
        [str(PG_BIN / "pg_config"), "--sharedir"], capture_output=True, text=True
    ).stdout.strip()
    if sharedir and not (Path(sharedir) / "extension" / "vector.control").exists():
        return "the pgvector extension is not installed"
    return None


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Cluster:
    """One throwaway PostgreSQL cluster on 127.0.0.1:``port``."""

    def __init__(self, folder: Path, port: int, shared_buffers_mb: int) -> None:
        self.data = folder / "data"
        self.port = port
        self.shared_buffers_mb = shared_buffers_mb

    def init(self) -> None:
        cmd = [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"]
        subprocess.run(_as_postgres(cmd), check=True, capture_output=True)
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": self.port,
            "unix_socket_directories": f"'{self.data}'",
            "shared_buffers": f"'{self.shared_buffers_mb}MB'",
            "maintenance_work_mem": "'2GB'",  # the HNSW graph builds in memory
            "max_parallel_maintenance_workers": 1,
            "shared_preload_libraries": "'pg_prewarm'",
            "pg_prewarm.autoprewarm": "off",
            "fsync": "off",
            "synchronous_commit": "off",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def start(self) -> None:
        log = str(self.data.parent / "postgres.log")
        cmd = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", log, "-w", "start"]
        subprocess.run(_as_postgres(cmd), check=True, capture_output=True)

    def stop(self) -> None:
        cmd = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
        subprocess.run(_as_postgres(cmd), check=False, capture_output=True)

    def sql(self, statement: str, stdin: bytes | None = None) -> str:
        cmd = [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        cmd += ["-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt", "-c", statement]
        done = subprocess.run(cmd, input=stdin, capture_output=True, check=True)
        return done.stdout.decode().strip()

    def pids(self) -> list[int]:
        """The postmaster and every process it started."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
        return [postmaster, *map(int, children)]

    def pss_bytes(self) -> int:
        """Every cluster process's PSS outside shared memory, plus the shared buffers
        holding a page: a buffer read by a backend that has left (``pg_prewarm``'s) is
        resident but in no live process's PSS."""
        total = 0
        for pid in self.pids():
            try:
                lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
            except OSError:  # a backend that just left
                continue
            fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in lines[1:]}
            total += fields.get("Pss", 0) - fields.get("Pss_Shmem", 0)
        return total + self.used_buffers_bytes()

    def used_buffers_bytes(self) -> int:
        used = self.sql("SELECT count(*) FROM pg_buffercache WHERE relfilenode IS NOT NULL")
        return int(used) * PAGE


@contextmanager
def cluster(port: int, shared_buffers_mb: int) -> Iterator[Cluster]:
    folder = Path(tempfile.mkdtemp(prefix="quiver-pgvector-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    db = Cluster(folder, port, shared_buffers_mb)
    try:
        db.init()
        db.start()
        yield db
    finally:
        db.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _copy_rows(vectors: np.ndarray, start: int) -> bytes:
    lines = (f"{start + i}\t[{','.join(map(repr, row))}]" for i, row in enumerate(vectors.tolist()))
    return ("\n".join(lines) + "\n").encode()


def _load(db: Cluster, vectors: np.ndarray, batch: int = 50_000) -> None:
    db.sql(f"CREATE TABLE items (id bigint PRIMARY KEY, embedding vector({vectors.shape[1]}))")
    for start in range(0, len(vectors), batch):
        db.sql(
            "COPY items (id, embedding) FROM STDIN",
            _copy_rows(vectors[start : start + batch], start),
        )
    db.sql(
        "CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_cosine_ops) "
        "WITH (m = 16, ef_construction = 200)"
    )


def _sizes(db: Cluster) -> dict[str, int]:
    return {
        "table_bytes": int(db.sql("SELECT pg_table_size('items')")),
        "hnsw_bytes": int(db.sql("SELECT pg_relation_size('items_hnsw')")),
        "pkey_bytes": int(db.sql("SELECT pg_relation_size('items_pkey')")),
    }


def measure(vectors: np.ndarray, port: int = 55432) -> dict[str, Any]:
    """Load, index and measure; restart, prewarm and measure again."""
    points = len(vectors)
    raw = vectors.nbytes
    # room for the table (~1.3x the raw floats) and its HNSW index (~2.7x at m 16): at 4x
    # the 390k run filled every buffer, so pgvector's figure was capped by the setting
    buffers_mb = int(max(256, 8 * raw / 2**20))
    with cluster(port, buffers_mb) as db:
        db.sql("CREATE EXTENSION vector; CREATE EXTENSION pg_buffercache;")
        db.sql("CREATE EXTENSION pg_prewarm")
        empty = db.pss_bytes()
        started = time.perf_counter()
        _load(db, vectors)
        built_s = time.perf_counter() - started
        db.sql("CHECKPOINT")
        loaded, loaded_buffers = db.pss_bytes(), db.used_buffers_bytes()
        db.stop()
        db.start()
        db.sql("SELECT pg_prewarm('items'), pg_prewarm('items_hnsw'), pg_prewarm('items_pkey')")
        restarted, restarted_buffers = db.pss_bytes(), db.used_buffers_bytes()
        sizes = _sizes(db)
    return {
        "set": "pgvector",
        "points": points,
        "load_and_build_s": round(built_s, 1),
        "shared_buffers_mb": buffers_mb,
        "empty_pss_mb": round(empty / 2**20, 1),
        "loaded_pss_mb": round(loaded / 2**20, 1),
        "loaded_buffers_mb": round(loaded_buffers / 2**20, 1),
        "restarted_pss_mb": round(restarted / 2**20, 1),
        "restarted_buffers_mb": round(restarted_buffers / 2**20, 1),
        "growth_b_per_point": round((loaded - empty) / points, 1),
        "restart_growth_b_per_point": round((restarted - empty) / points, 1),
        "on_disk": sizes,
        "index_b_per_point": round(sizes["hnsw_bytes"] / points, 1),
    }
