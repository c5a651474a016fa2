"""Suite-wide setup, loaded by pytest before any test module imports faiss."""

from __future__ import annotations

import os

# faiss's OpenMP threads spin while waiting by default; on a 2-core CI machine shared
# with a server process or another job that turns seconds into minutes. The server
# sets the same policy (server/cli.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# A local Ray must stay on 127.0.0.1 (server/cluster/ray_shards.py); Ray reads this once,
# on import, and a test may import Ray (pytest.importorskip) before starting it.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
