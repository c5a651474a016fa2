"""Saving a run: `<stem>.json` (every raw number), `<stem>.md` (the tables) and, where the
script draws one, `<stem>.png`. The README tables quote these files, so their names and
shapes are part of each script's interface."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Results = dict[str, Any]


def save_results(
    results: Results,
    results_dir: Path,
    stem: str,
    markdown: Callable[[Results], str],
    plot: Callable[[Results, Path], None] | None = None,
) -> list[Path]:
    """Write the `.json`, `.md` and (with `plot`) `.png`; returns the paths written."""
    results_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = results_dir / f"{stem}.json", results_dir / f"{stem}.md"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    md_path.write_text(markdown(results))
    if plot is None:
        return [json_path, md_path]
    png_path = results_dir / f"{stem}.png"
    plot(results, png_path)
    return [json_path, md_path, png_path]


def pyplot() -> Any:
    """`matplotlib.pyplot` on the Agg backend (no display needed), imported only by the
    scripts that draw a chart, when they draw it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check(name: str, value: float, target: float) -> dict[str, Any]:
    """One row of a run's checks: passes when `value >= target` (NaN never passes)."""
    return {"name": name, "value": value, "target": target, "passed": bool(value >= target)}


def check_at_most(name: str, value: float, limit: float, unit: str = "") -> dict[str, Any]:
    """One row of a run's checks that passes when `value <= limit` (NaN never passes)."""
    target = f"<= {limit:g}{' ' + unit if unit else ''}"
    return {"name": name, "value": value, "target": target, "passed": bool(value <= limit)}


def checks_table(checks: list[dict[str, Any]]) -> list[str]:
    """The markdown rows of a run's checks (targets given as numbers mean `>=`)."""
    rows = ["| check | value | target | |", "|---|--:|--:|---|"]
    for c in checks:
        target = c["target"] if isinstance(c["target"], str) else f">= {c['target']:g}"
        value = "-" if c["value"] is None else f"{c['value']:,.3f}"
        rows.append(f"| {c['name']} | {value} | {target} | {'PASS' if c['passed'] else 'FAIL'} |")
    return rows


def exit_status(results: Results) -> int:
    """0 when every check passed, 1 when one missed (2, a failed server, is the caller's)."""
    return 0 if all(c["passed"] for c in results.get("checks", [])) else 1
