"""The alias file: which collection each alias names, replaced atomically.

Layout (``FORMAT_VERSION`` 1), ``<data_dir>/aliases.json``::

    {"format_version": 1, "aliases": {"<alias>": "<collection>", ...}}

The whole mapping is small (Qdrant keeps the same map in one JSON file), so every
change rewrites it: a temporary file is written and fsynced, renamed over the old one,
and the folder fsynced, before the change is acknowledged. A crash leaves either the
old mapping or the new one, never a mix; a temporary file left by a crash is ignored
and replaced by the next write. No file means no aliases, so an engine that never
uses them (the engine inside a shard) writes nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from server.errors import StorageError
from server.storage.segment_store import fsync_dir

ALIASES_FILE = "aliases.json"
FORMAT_VERSION = 1


def load_aliases(path: Path) -> dict[str, str]:
    """The mapping stored at ``path`` (empty when there is no file); a file of another
    format version, or one that is not a mapping of names, is refused."""
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise StorageError(f"Storage error: the alias file is not valid JSON ({exc})") from exc
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version != FORMAT_VERSION:
        raise StorageError(f"Storage error: unknown alias file format version {version!r}")
    aliases = raw.get("aliases")
    if not isinstance(aliases, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()
    ):
        raise StorageError("Storage error: the alias file does not map names to names")
    return dict(aliases)


def save_aliases(path: Path, aliases: Mapping[str, str]) -> None:
    """Replace the file at ``path`` with ``aliases``, durably: on return the new
    mapping survives a crash or power loss."""
    temp = path.with_name(f".{path.name}.tmp")
    body = {"format_version": FORMAT_VERSION, "aliases": dict(sorted(aliases.items()))}
    with open(temp, "w") as out:
        json.dump(body, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, path)
    fsync_dir(path.parent)
