"""Qdrant's gRPC API (port 6334), served beside REST by the same process and engine.

``server.py`` starts it; ``auth.py`` is its front door; ``collections.py``,
``points.py`` and ``snapshots.py`` declare each RPC as the REST route it is
(``rpc.py``), run in-process by ``bridge.py`` with ``convert.py`` / ``replies.py``
translating messages; ``fastpath.py`` serves dense search, query and upsert straight
from numpy.
"""

from server.grpc import lean_client

lean_client.install()  # before any ``from qdrant_client import grpc`` below this package
