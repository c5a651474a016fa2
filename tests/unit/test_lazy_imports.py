"""An idle server does not carry the heavy libraries only some requests need (issue 24):
building the app (gRPC off) must not import them; the first request that needs one does."""

from __future__ import annotations

import json
import subprocess
import sys

LAZY = ("numba", "llvmlite", "scipy", "pyarrow", "qdrant_client", "grpc", "jwt", "ray", "sklearn")
"""Each loads only with its first use: custom-score walks, MMR on sparse vectors or token
pooling, Arrow bulk loads, gRPC, a JWT, a sharded collection."""

_PROBE = """
import json, sys
import server.cli
from server.main import create_app
from server.settings import Settings
create_app(Settings(grpc_port=0))
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def _run(code: str) -> str:
    """The last line ``code`` prints, run in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.strip().splitlines()[-1]


def _loaded_after(code: str) -> set[str]:
    return set(json.loads(_run(code)))


def test_building_the_app_imports_none_of_the_heavy_libraries() -> None:
    assert set(LAZY) & _loaded_after(_PROBE) == set()


def test_the_first_custom_score_loads_numba() -> None:
    code = _PROBE.replace(
        "print(",
        "import numpy as np\n"
        "from index.graph_walk import CustomScore, custom_scores\n"
        "from index.metrics import Distance\n"
        "x = np.eye(3, dtype=np.float32)\n"
        "custom_scores(x, Distance.DOT, CustomScore('best_score', x[:1], split=1))\n"
        "print(",
    )
    assert "numba" in _loaded_after(code)


_GRPC_PROBE = """
import json, sys
import server.grpc.server
before = sorted(name for name in sys.modules if name.startswith("qdrant_client"))
from server.grpc import replies
replies.rest.UpdateResult  # the first reply that converts
after = sorted(name for name in sys.modules if name.startswith("qdrant_client"))
from qdrant_client import QdrantClient  # the real package still works in this process
print(json.dumps([before, after, QdrantClient.__name__]))
"""


def test_grpc_serves_qdrant_client_messages_without_its_rest_client() -> None:
    """gRPC loads qdrant_client's ``*_pb2`` modules alone; its REST models (~28 MB) load
    with the first conversion, and the package's own ``__init__`` only when asked for."""
    before, after, client = json.loads(_run(_GRPC_PROBE))
    assert "qdrant_client.grpc.points_pb2" in before
    assert not any(
        name.startswith(("qdrant_client.http", "qdrant_client.qdrant_client")) for name in before
    )
    assert "qdrant_client.http.models" in after
    assert "qdrant_client.qdrant_client" not in after
    assert client == "QdrantClient"


_FAISS_PROBE = """
import json, sys
import numpy as np
from server.deferred_packages import defer
defer("faiss")  # as `quiver serve` does
from server.main import create_app
from server.settings import Settings
create_app(Settings(grpc_port=0))
before = "faiss.loader" in sys.modules
from index.hnsw_faiss import HnswIndex
from index.metrics import Distance
index = HnswIndex(4, Distance.COSINE)
index.add(np.eye(4, dtype=np.float32))
rows, scores = index.search(np.eye(4, dtype=np.float32)[2:3], 1)
print(json.dumps([before, "faiss.loader" in sys.modules, int(np.ravel(rows)[0])]))
"""


def test_the_server_loads_faiss_with_its_first_index_not_with_the_app() -> None:
    before, after, row = json.loads(_run(_FAISS_PROBE))
    assert (before, after, row) == (False, True, 2)
