"""What a result file records about the machine and its load, so that runs on different
machines (or on a busy one) can be told apart and read as ratios."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import faiss
import httpx
import numpy as np
import orjson

REPO_ROOT = Path(__file__).resolve().parents[2]


def machine_info(**extra: Any) -> dict[str, Any]:
    """CPU, memory, library versions, date and commit; `extra` adds script-specific keys
    (e.g. another library's version)."""
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": memory_gib(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "faiss": faiss.__version__,
        "faiss_omp_threads": faiss.omp_get_max_threads(),
        "httpx": httpx.__version__,
        "orjson": orjson.__version__,
        "date": utc_now(),
        "git_commit": git_commit(),
        **extra,
    }


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def git_commit() -> str:
    """HEAD of the checkout being measured, `-dirty` when tracked files have changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no commit)"
    return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def cpu_busy_fraction(interval_s: float = 1.0) -> float | None:
    """Share of all CPU time spent busy over `interval_s` (from /proc/stat): how loaded the
    machine was by others just before a run."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        total_before, idle_before = sample()
        time.sleep(interval_s)
        total_after, idle_after = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total_after - total_before
    return round(1.0 - (idle_after - idle_before) / total, 3) if total > 0 else None


def rss_bytes(pid: int | str = "self", field: str = "VmRSS") -> int:
    """Resident memory of a process (this one by default), from /proc; 0 when unknown.
    `field="VmHWM"` gives the peak (the high-water mark since the process started)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def busy_notes(busy: float | None) -> list[str]:
    """A note for the report when others kept the CPUs busy before the run (over 20%)."""
    if busy is None or busy <= 0.2:
        return []
    return [
        f"Other processes kept the CPUs {busy:.0%} busy just before the run; absolute "
        "rates are lower than on an idle machine, ratios are less affected."
    ]


def machine_line(m: dict[str, Any]) -> str:
    """The report's one-line header from a `machine_info()` record."""
    return (
        f"{m['date']} · commit `{m['git_commit']}` · {m['cpu_model']}, {m['cores']} cores, "
        f"{m['memory_gib']} GiB · numpy {m['numpy']} · faiss {m['faiss']} · Python {m['python']}"
    )


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, its threads and its child processes (the
    workers of a multi-process server, the keeper's children; Linux ``/proc``). A process
    that exited meanwhile counts 0."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(process_cpu_s(int(child)) for child in children)
