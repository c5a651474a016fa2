"""Pieces every benchmark script shares (imported by them, never by tests)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def save_results(
    results: dict[str, Any],
    results_dir: Path,
    stem: str,
    markdown: Callable[[dict[str, Any]], str],
    plot: Callable[[dict[str, Any], Path], None],
) -> list[Path]:
    """``<stem>.json`` (every raw number), ``<stem>.md`` (the tables), ``<stem>.png``."""
    results_dir.mkdir(parents=True, exist_ok=True)
    paths = [results_dir / f"{stem}.{ext}" for ext in ("json", "md", "png")]
    paths[0].write_text(json.dumps(results, indent=2) + "\n")
    paths[1].write_text(markdown(results))
    plot(results, paths[2])
    return paths
