"""Everything the server writes under its data folder is its own user's alone.

Points, payloads and snapshots are the users' data; created with the usual umask
(022) they were world-readable. The server process sets umask 077, so every file it
creates is 0600 and every folder 0700 (SQLite's journals take the database's mode),
and the data folder itself becomes 0700, which also covers files an older version
created with wider modes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
PRIVATE_FOLDER = 0o700


def make_private(data_dir: Path) -> None:
    """Set the process umask and close the data folder to other users; called once by
    the engine that owns the folder, before it creates anything in it."""
    os.umask(PRIVATE_UMASK)
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        data_dir.chmod(PRIVATE_FOLDER)
    except OSError as exc:  # not the folder's owner (a mounted volume): warn, go on
        log.warning(
            "cannot make the data folder private", extra={"error": exc.strerror or str(exc)}
        )
