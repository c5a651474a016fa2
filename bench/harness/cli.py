"""The shape every benchmark script's `main` shares.

    parser = new_parser(__doc__)
    add_common_options(parser, quick_help="...")   # --quick, --port, --results-dir
    ...script flags...
    args = parser.parse_args(argv)
    return run_and_finish(lambda: run(args), args, "core_glove50", markdown_report)

`run_and_finish` runs the measurements (a failed server or a refused set-up request: exit
status 2, nothing saved), then `finish` prints the markdown, saves `<stem>.json/.md[/.png]`
(a quick run as `<stem>_quick.*` under the git-ignored `bench/data/`, a full one under
`bench/results/`) and turns the checks into the exit status: 0 all pass, 1 one misses.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from harness.results import Results, exit_status, save_results
from harness.server import ServerError

BENCH_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BENCH_DIR / "data"
RESULTS_DIR = BENCH_DIR / "results"
T = TypeVar("T")

SERVER_LOG = DATA_DIR / "server_last.log"
"""Where the last benchmark server's log is kept (the exit status 2 points here)."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def new_parser(doc: str | None, *, raw: bool = False) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of the script's docstring (all of it, laid
    out as written, with `raw`)."""
    if raw:
        return argparse.ArgumentParser(
            description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
        )
    return argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)


def add_common_options(
    parser: argparse.ArgumentParser, *, quick_help: str | None = None, port: bool = False
) -> None:
    """`--quick` (when the script has a smoke run), `--port` (when it starts a server) and
    `--results-dir` (default: `bench/results`, or `bench/data` for a quick run)."""
    add = parser.add_argument
    if quick_help is not None:
        add("--quick", action="store_true", help=quick_help)
    if port:
        add("--port", type=int, default=None, help="server port (default: a free one)")
    add(
        "--results-dir",
        type=Path,
        default=None,
        help="where to save (default bench/results; bench/data with --quick)",
    )


def results_dir(args: argparse.Namespace) -> Path:
    """The folder `--results-dir` names, else `bench/data` for a quick run, `bench/results`."""
    if args.results_dir is not None:
        return Path(args.results_dir)
    return DATA_DIR if getattr(args, "quick", False) else RESULTS_DIR


def result_stem(stem: str, args: argparse.Namespace) -> str:
    return f"{stem}_quick" if getattr(args, "quick", False) else stem


def finish(
    results: Results,
    args: argparse.Namespace,
    stem: str,
    markdown: Callable[[Results], str],
    plot: Callable[[Results, Path], None] | None = None,
) -> int:
    """Print the report, save it, and return the exit status of the checks."""
    print("\n" + markdown(results))
    for path in save_results(results, results_dir(args), result_stem(stem, args), markdown, plot):
        log(f"saved {path}")
    return exit_status(results)


def guarded(run: Callable[[], T]) -> T | None:
    """What `run` measured, or None (after saying why) when the server failed or a set-up
    request was refused: such a run has nothing to save and exits with status 2."""
    try:
        return run()
    except (ServerError, RuntimeError) as exc:
        log(f"benchmark stopped: {exc}")
        return None


def run_and_finish(
    run: Callable[[], Results],
    args: argparse.Namespace,
    stem: str,
    markdown: Callable[[Results], str],
    plot: Callable[[Results, Path], None] | None = None,
) -> int:
    """The whole of a benchmark's `main` after parsing: `guarded(run)`, then `finish`."""
    results = guarded(run)
    return 2 if results is None else finish(results, args, stem, markdown, plot)
