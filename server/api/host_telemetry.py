"""The host this server runs on, as Qdrant's telemetry reports it (``app.system``,
its ``RunningEnvironmentTelemetry``): a truthful subset read from the OS.

``cores`` and ``ram_size`` are what this process may use, not what the machine has:
the CPU affinity mask and a cgroup v2 ``cpu.max`` quota cap the cores, a cgroup
``memory.max`` caps the memory (Qdrant's "cgroup limit or host RAM"). ``cpu_flags``
lists only the SIMD extensions a vector search cares about, as Qdrant's does.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any

_CGROUP = Path("/sys/fs/cgroup")
_SIMD_FLAGS = ("sse", "sse2", "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "neon")
_KIB = 1024


def system(data_dir: Path) -> dict[str, Any]:
    """``RunningEnvironmentTelemetry`` for this process and ``data_dir``'s disk."""
    docker = Path("/.dockerenv").exists()
    kubernetes = "KUBERNETES_SERVICE_HOST" in os.environ
    runtime = "kubernetes" if kubernetes else "docker" if docker else "none"
    return {
        "distribution": _os_release("ID"),
        "distribution_version": _os_release("VERSION_ID"),
        "is_docker": docker,
        "container_runtime": runtime,
        "cores": usable_cores(),
        "ram_size": usable_memory_bytes() // _KIB,
        "disk_size": _disk_kib(data_dir),
        "cpu_flags": ",".join(_cpu_flags()),
        "cpu_endian": sys.byteorder,
    }


def usable_cores() -> int:
    """CPUs this process may run on, capped by a cgroup CPU quota (rounded up)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    quota = _read(_CGROUP / "cpu.max").split()
    if len(quota) == 2 and quota[0] != "max" and int(quota[1]) > 0:
        cores = min(cores, max(1, math.ceil(int(quota[0]) / int(quota[1]))))
    return cores


def usable_memory_bytes() -> int:
    """Host RAM, or the cgroup memory limit when that is lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limit = _read(_CGROUP / "memory.max")
    return min(total, int(limit)) if limit.isdigit() else total


def _disk_kib(data_dir: Path) -> int | None:
    try:
        return shutil.disk_usage(data_dir).total // _KIB
    except OSError:
        return None


def _cpu_flags() -> list[str]:
    for line in _read(Path("/proc/cpuinfo")).splitlines():
        if line.startswith(("flags", "Features")):
            present = set(line.split(":", 1)[1].split())
            if "asimd" in present:
                present.add("neon")
            return [flag for flag in _SIMD_FLAGS if flag in present]
    return []


def _os_release(key: str) -> str | None:
    for line in _read(Path("/etc/os-release")).splitlines():
        name, _, value = line.partition("=")
        if name == key:
            return value.strip().strip('"') or None
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
