"""Access control through a real server process and the official qdrant-client (issue 18)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from tests.helpers.configured_server import configured_server
from tests.helpers.process import REPO_ROOT, free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Api key is used with an insecure"),
]

KEY = "k" * 64
RO_KEY = "r" * 64


def test_an_empty_api_key_refuses_to_start(tmp_path: Path) -> None:
    """It used to start with authentication silently off (finding 10)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIVER_")}
    command = [
        sys.executable, "-m", "server.cli", "serve", "--port", str(free_port()),
        "--data-dir", str(tmp_path / "data"),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=env | {"QUIVER_API_KEY": ""}, capture_output=True, timeout=60
    )
    assert done.returncode != 0
    assert b"api_key" in done.stderr
    assert b"is empty" in done.stderr


def test_qdrant_client_with_each_kind_of_credential(tmp_path: Path) -> None:
    settings = {
        "QUIVER_API_KEY": KEY,
        "QUIVER_READ_ONLY_API_KEY": RO_KEY,
        "QUIVER_JWT_RBAC": "true",
    }
    with configured_server(tmp_path, settings) as url:
        full = QdrantClient(url=url, api_key=KEY, https=False)
        vectors = models.VectorParams(size=2, distance=models.Distance.DOT)
        for name in ("shared", "private"):
            full.create_collection(name, vectors_config=vectors)
            full.upsert(name, [models.PointStruct(id=1, vector=[1.0, 0.0])], wait=True)
        full.create_snapshot("shared")  # an empty POST without a content type

        reader = QdrantClient(url=url, api_key=RO_KEY, https=False)
        assert reader.count("private").count == 1
        with pytest.raises(UnexpectedResponse) as refused:
            reader.upsert("private", [models.PointStruct(id=2, vector=[0.0, 1.0])])
        assert refused.value.status_code == 403

        claims = {
            "exp": int(time.time()) + 600,
            "access": [{"collection": "shared", "access": "r"}],
        }
        scoped = QdrantClient(url=url, api_key=jwt.encode(claims, KEY, "HS256"), https=False)
        assert [c.name for c in scoped.get_collections().collections] == ["shared"]
        assert scoped.query_points("shared", query=[1.0, 0.0]).points[0].id == 1
        with pytest.raises(UnexpectedResponse) as refused:
            scoped.count("private")
        assert refused.value.status_code == 403

        with pytest.raises(UnexpectedResponse) as refused:
            QdrantClient(
                url=url, api_key="wrong", https=False, check_compatibility=False
            ).get_collections()
        assert refused.value.status_code == 401
        assert full.count("private").count == 1
