"""``python -m server.storage_restore ARCHIVE [--data-dir D]``: recover a full-storage
snapshot (``POST /snapshots``) into the data folder, before the server starts.

As in Qdrant (``--storage-snapshot``), a full-storage snapshot is recovered only while
no server serves the folder: one process owns a data folder. Every collection in the
archive replaces the collection of its name (each verified before it is swapped in);
collections not in the archive stay. The data folder and Ray address come from the
server's settings (``QUIVER_*``), the folder from ``--data-dir`` when given.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from server.catalog import open_engine
from server.engine.snapshot_ops import restore_storage
from server.errors import QuiverError
from server.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.storage_restore")
    parser.add_argument("archive", type=Path, help="a full-storage snapshot file")
    parser.add_argument("--data-dir", type=Path, help="data folder (QUIVER_DATA_DIR)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    settings = get_settings()
    data_dir = args.data_dir or settings.data_dir
    engine = open_engine(data_dir, ray_address=settings.ray_address)
    try:
        names = restore_storage(engine, args.archive.resolve())
    except QuiverError as exc:
        print(f"restore failed: {exc.message}", file=sys.stderr)
        return 1
    finally:
        engine.close()
    print(f"restored {len(names)} collections into {data_dir}: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
