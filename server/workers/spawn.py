"""A worker started again by the keeper (``keeper.py``) after it died: a fresh process.

The keeper holds no imported app to fork, so it ``exec``s this module with the plan
the supervisor wrote (``keeper.encode_plan``: settings' overrides, the inherited
sockets' and the shared generation's file descriptors, the slot). It sets the process
up as ``quiver serve`` does (``cli.set_up_process``) and shares graphs as the supervisor
did, then serves as the forked worker of that slot would.

    python -m server.workers.spawn '<plan with "slot", keeper.encode_plan>'
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any


def main(plan: dict[str, Any]) -> None:
    from server.cli import _run, set_up_process
    from server.collector import freeze_imported
    from server.engine.shared_graphs import share_graphs
    from server.main import create_app
    from server.settings import Settings
    from server.workers.generation import Generation
    from server.workers.supervisor import serve_slot

    settings = Settings(**plan["overrides"])
    set_up_process(settings)
    share_graphs()
    tcp = [socket.socket(fileno=fd) for fd in plan["tcp"]]
    unix = socket.socket(fileno=plan["unix"])
    generation = Generation(plan["generation"])
    owner_socket = str(Path(plan["folder"]) / "owner.sock")
    app = create_app(settings)
    freeze_imported()  # as the supervisor does before it forks (collector.py)
    serve_slot(settings, _run, app, plan["slot"], tcp, unix, generation, owner_socket)


if __name__ == "__main__":
    from server.workers.keeper import decode_plan

    main(decode_plan(sys.argv[1]))
