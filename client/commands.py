"""The client subcommands of ``quiver`` (beside ``serve``): import, export, snapshot,
collections, bench.

Only the standard library is imported here; each command imports what it needs (httpx,
pyarrow, numpy, tqdm) when it runs, so building the parser costs ``quiver serve`` nothing.
Progress bars go to stderr and are drawn only on a terminal unless ``--progress``.

Exit codes: 0 success, 1 an import finished with rejected rows, 2 failure (the reason on
stderr).
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from client.http import QuiverClient

EXIT_OK, EXIT_REJECTED, EXIT_FAILED = 0, 1, 2
REPO_ROOT = Path(__file__).resolve().parents[1]
DISTANCES = ("Cosine", "Dot", "Euclid", "Manhattan")
Handler = Callable[[argparse.Namespace], int]


def add_client_commands(commands: Any) -> None:
    """Add the client subcommands to ``quiver``'s subparsers; each sets ``handler``."""
    connection = argparse.ArgumentParser(add_help=False)
    group = connection.add_argument_group("server")
    group.add_argument(
        "--url", default=None, help="server URL (default: $QUIVER_URL or http://127.0.0.1:6333)"
    )
    group.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help="API key sent in the api-key header (default: $QUIVER_API_KEY). Prefer the "
        "environment variable: a key on the command line is visible to every local user "
        "in `ps` and /proc, and stays in shell history",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="limit for each network read or write (default: 120)",
    )
    _add_import(commands, connection)
    _add_export(commands, connection)
    _add_snapshot(commands, connection)
    collections = commands.add_parser(
        "collections",
        parents=[connection],
        help="list collections with points and status",
        description="List every collection with its point count, status and vectors.",
    )
    collections.add_argument("--json", action="store_true", help="print JSON instead of a table")
    collections.set_defaults(handler=_collections)
    _add_bench(commands)


def run(args: argparse.Namespace) -> int:
    """Run the chosen client command; turns the client's errors into exit code 2."""
    from client.errors import CliError

    handler: Handler = args.handler
    try:
        return handler(args)
    except CliError as exc:
        print(f"quiver {args.command}: error: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        hint = "; rerun the same command to resume" if args.command == "import" else ""
        print(f"quiver {args.command}: interrupted{hint}", file=sys.stderr)
        return EXIT_FAILED


def _client(args: argparse.Namespace) -> QuiverClient:
    from client.http import QuiverClient, default_api_key, default_url

    return QuiverClient(args.url or default_url(), args.api_key or default_api_key(), args.timeout)


def _progress_flag(args: argparse.Namespace) -> bool | None:
    return False if args.no_progress else True if args.progress else None


def _add_progress_flags(parser: argparse.ArgumentParser) -> None:
    flags = parser.add_mutually_exclusive_group()
    flags.add_argument(
        "--progress",
        action="store_true",
        help="draw the progress bar even when stderr is not a terminal",
    )
    flags.add_argument("--no-progress", action="store_true", help="never draw the progress bar")


# -- import -----------------------------------------------------------------------------------


def _add_import(commands: Any, connection: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "import",
        parents=[connection],
        help="load a vector file into a collection (resumable)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Stream FILE into a collection through POST /collections/NAME/points/bulk.\n\n"
            "Formats (by extension, or --format):\n"
            "  .npy              2-D float matrix; row i gets id i + --id-offset\n"
            "  .fvecs            int32 dim + float32 values per record; ids as .npy\n"
            "  .parquet          --id-column (default 'id' if present, else row index),\n"
            "                    --vector-column (default 'vector', or vector.<name> columns);\n"
            "                    every other column becomes a payload field\n"
            '  .jsonl / .ndjson  one {"id", "vector", "payload"} point per line\n\n'
            "The file goes in requests of --request-rows rows. After each acknowledged\n"
            "request the state file records the rows done; rerunning the same command\n"
            "resumes after them (an interruption loses at most one request)."
        ),
        epilog="Exit status: 0 all rows accepted, 1 some rows rejected, 2 failure.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="the file to import")
    parser.add_argument("-c", "--collection", required=True, help="target collection")
    parser.add_argument(
        "--format",
        choices=("npy", "fvecs", "parquet", "jsonl"),
        help="file format (default: from the extension)",
    )
    parser.add_argument(
        "--create-distance",
        choices=DISTANCES,
        help="create the collection if missing, with this distance and the file's vector size",
    )
    rows = parser.add_argument_group("rows to points")
    rows.add_argument(
        "--id-offset",
        type=int,
        default=0,
        metavar="N",
        help="id of the first row when ids are row numbers (default: 0)",
    )
    rows.add_argument(
        "--id-column",
        metavar="COLUMN",
        help="Parquet id column (default: 'id' if present, else row numbers)",
    )
    rows.add_argument(
        "--vector-column",
        metavar="COLUMN",
        help="Parquet vector column (default: 'vector', else vector.<name> ones)",
    )
    rows.add_argument(
        "--vector-name",
        metavar="NAME",
        help="load the vectors into this named vector of the collection",
    )
    rows.add_argument(
        "--payload-columns",
        metavar="A,B,...",
        help="Parquet columns to keep as payload (default: all others; '' none)",
    )
    sending = parser.add_argument_group("sending and resuming")
    sending.add_argument(
        "--request-rows",
        type=int,
        default=100_000,
        metavar="N",
        help="rows per request, the most an interruption loses (default: 100000)",
    )
    sending.add_argument(
        "--batch-rows",
        type=int,
        default=10_000,
        metavar="N",
        help="rows per record batch inside a request (default: 10000; fewer for wide "
        "vectors, so a batch holds at most 64 MiB of them)",
    )
    sending.add_argument(
        "--state", type=Path, metavar="PATH", help="state file (default: FILE.quiver-import.json)"
    )
    sending.add_argument(
        "--restart", action="store_true", help="ignore the state file and import from the first row"
    )
    sending.add_argument(
        "--retries",
        type=int,
        default=3,
        metavar="N",
        help="retries of a request after a network error or a 5xx (default: 3)",
    )
    sending.add_argument(
        "--max-errors",
        type=int,
        default=20,
        metavar="N",
        help="rejected rows to print (default: 20)",
    )
    _add_progress_flags(parser)
    parser.set_defaults(handler=_import)


def _import(args: argparse.Namespace) -> int:
    from client.importer import (
        Importer,
        ImportOptions,
        default_state_path,
        summary,
    )
    from client.readers import ReadOptions, open_reader

    payload_columns = None
    if args.payload_columns is not None:
        payload_columns = [c.strip() for c in args.payload_columns.split(",") if c.strip()]
    read = ReadOptions(
        id_offset=args.id_offset,
        id_column=args.id_column,
        vector_column=args.vector_column,
        vector_name=args.vector_name,
        payload_columns=payload_columns,
    )
    reader = open_reader(args.file, read, args.format)
    options = ImportOptions(
        collection=args.collection,
        state_path=args.state or default_state_path(args.file),
        request_rows=args.request_rows,
        batch_rows=args.batch_rows,
        restart=args.restart,
        create_distance=args.create_distance,
        retries=args.retries,
        progress=_progress_flag(args),
        max_errors=args.max_errors,
    )
    with _client(args) as client:
        result = Importer(client, reader, options, sys.stderr).run()
    print(summary(result))
    return EXIT_REJECTED if result.exit_code else EXIT_OK


# -- export -----------------------------------------------------------------------------------


def _add_export(commands: Any, connection: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "export",
        parents=[connection],
        help="write a collection to .jsonl or .npy",
        description=(
            "Scroll a collection into OUT. .jsonl / .ndjson: one {id, vector, payload} per "
            "line (what quiver import reads). .npy: a float32 matrix of one dense vector, "
            "with ids and payloads in a .payload.jsonl beside it, row for row."
        ),
    )
    parser.add_argument("out", type=Path, metavar="OUT", help="output file (.jsonl, .ndjson, .npy)")
    parser.add_argument("-c", "--collection", required=True, help="collection to export")
    parser.add_argument(
        "--vector",
        metavar="NAME",
        help="named vector to export (a .npy needs one when there are several)",
    )
    parser.add_argument(
        "--payload-out",
        type=Path,
        metavar="PATH",
        help="ids and payloads of a .npy export (default: OUT.payload.jsonl)",
    )
    parser.add_argument(
        "--page-size",
        type=int,
        default=1000,
        metavar="N",
        help="points per scroll request (default: 1000)",
    )
    _add_progress_flags(parser)
    parser.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from client.exporter import ExportOptions, export_collection

    options = ExportOptions(
        collection=args.collection,
        out=args.out,
        vector=args.vector,
        payload_out=args.payload_out,
        page_size=args.page_size,
        progress=_progress_flag(args),
    )
    with _client(args) as client:
        written = export_collection(client, options, sys.stderr)
    print(f"{args.collection}: {written:,} points written to {args.out}")
    return EXIT_OK


# -- snapshot ---------------------------------------------------------------------------------


def _add_snapshot(commands: Any, connection: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "snapshot",
        help="create, list, download and restore collection snapshots",
        description="Collection snapshots (Qdrant's /collections/NAME/snapshots endpoints).",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create",
        parents=[connection],
        help="take a snapshot",
        description="Take a snapshot of a collection on the server.",
    )
    create.add_argument("-c", "--collection", required=True, help="collection to snapshot")
    create.add_argument(
        "--download", type=Path, metavar="PATH", help="also download the new snapshot to PATH"
    )
    create.set_defaults(handler=_snapshot_create)
    listing = actions.add_parser(
        "list",
        parents=[connection],
        help="list snapshots",
        description="List a collection's snapshots on the server.",
    )
    listing.add_argument("-c", "--collection", required=True, help="collection")
    listing.set_defaults(handler=_snapshot_list)
    download = actions.add_parser(
        "download",
        parents=[connection],
        help="download a snapshot",
        description="Download a snapshot file from the server.",
    )
    download.add_argument("-c", "--collection", required=True, help="collection")
    download.add_argument("snapshot", metavar="SNAPSHOT", help="snapshot name (see list)")
    download.add_argument(
        "-o", "--output", type=Path, metavar="PATH", help="where to write it (default: ./SNAPSHOT)"
    )
    download.set_defaults(handler=_snapshot_download)
    restore = actions.add_parser(
        "restore",
        parents=[connection],
        help="restore a collection from a snapshot",
        description=(
            "Restore (create or replace) a collection from SOURCE. A local snapshot file is "
            "uploaded (POST .../snapshots/upload). A URL (file:///path on the server's "
            "machine), or any SOURCE with --on-server (a snapshot name, or a path on the "
            "server), is recovered by the server itself (PUT .../snapshots/recover)."
        ),
    )
    restore.add_argument("-c", "--collection", required=True, help="collection to restore")
    restore.add_argument(
        "source", metavar="SOURCE", help="local snapshot file, or a file:// URL on the server"
    )
    restore.add_argument(
        "--on-server",
        action="store_true",
        help="SOURCE is a snapshot name or path that the server resolves; upload nothing",
    )
    restore.add_argument(
        "--priority",
        choices=("snapshot", "replica", "no_sync"),
        help="Qdrant's recovery priority (default: the server's)",
    )
    restore.add_argument(
        "--checksum", metavar="SHA256", help="expected SHA-256 of the snapshot, checked first"
    )
    restore.set_defaults(handler=_snapshot_restore)


def _snapshot_create(args: argparse.Namespace) -> int:
    with _client(args) as client:
        result = client.call("POST", client.snapshot_path(args.collection))
        print(_snapshot_line(result))
        if args.download is not None:
            _download(client, args.collection, str(result["name"]), args.download)
    return EXIT_OK


def _snapshot_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        snapshots = client.call("GET", client.snapshot_path(args.collection))
    for snapshot in snapshots:
        print(_snapshot_line(snapshot))
    if not snapshots:
        print(f"{args.collection}: no snapshots", file=sys.stderr)
    return EXIT_OK


def _snapshot_download(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _download(client, args.collection, args.snapshot, args.output or Path(args.snapshot))
    return EXIT_OK


def _snapshot_restore(args: argparse.Namespace) -> int:
    params = {"priority": args.priority} if args.priority else {}
    with _client(args) as client:
        path = client.snapshot_path(args.collection)
        if args.on_server or "://" in args.source:
            body = {"location": args.source, **params}
            if args.checksum:
                body["checksum"] = args.checksum
            client.call("PUT", f"{path}/recover", json=body)
        else:
            if args.checksum:
                params["checksum"] = args.checksum
            _upload(client, f"{path}/upload", Path(args.source), params)
    print(f"{args.collection}: restored from {args.source}")
    return EXIT_OK


def _snapshot_line(snapshot: dict[str, Any]) -> str:
    fields = (
        snapshot.get("name"),
        snapshot.get("creation_time"),
        snapshot.get("size"),
        snapshot.get("checksum"),
    )
    return "\t".join("-" if value is None else str(value) for value in fields)


def _download(client: QuiverClient, collection: str, snapshot: str, target: Path) -> None:
    from tqdm import tqdm

    part = target.with_name(target.name + ".part")
    with (
        tqdm(unit="B", unit_scale=True, desc=snapshot, file=sys.stderr, disable=None) as bar,
        part.open("wb") as file,
    ):

        def progress(total: int | None, size: int) -> None:
            bar.total = total
            bar.update(size)

        try:
            written = client.download(client.snapshot_path(collection, snapshot), file, progress)
        except BaseException:
            file.close()
            part.unlink(missing_ok=True)
            raise
    os.replace(part, target)
    print(f"{snapshot}: {written:,} bytes written to {target}")


def _upload(client: QuiverClient, path: str, source: Path, params: Any) -> None:
    from tqdm import tqdm

    from client.errors import CliError

    if not source.is_file():
        raise CliError(f"{source}: no such snapshot file")
    size = source.stat().st_size
    with (
        source.open("rb") as raw,
        tqdm.wrapattr(
            raw, "read", total=size, desc=f"upload {source.name}", file=sys.stderr, disable=None
        ) as file,
    ):
        client.call("POST", path, files={"snapshot": (source.name, file)}, params=params)


# -- collections ------------------------------------------------------------------------------


def _collections(args: argparse.Namespace) -> int:
    import json

    with _client(args) as client:
        rows = [
            _collection_row(name, client.collection_info(name))
            for name in client.collection_names()
        ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    header = {"name": "NAME", "points": "POINTS", "status": "STATUS", "vectors": "VECTORS"}
    widths = {key: max(len(str(row[key])) for row in [header, *rows]) for key in header}
    for row in [header, *rows]:
        print("  ".join(str(row[key]).ljust(widths[key]) for key in header).rstrip())
    return EXIT_OK


def _collection_row(name: str, info: dict[str, Any]) -> dict[str, Any]:
    vectors = info.get("config", {}).get("params", {}).get("vectors", {})
    configured = {"": vectors} if "size" in vectors else vectors
    described = ", ".join(
        f"{n + ': ' if n else ''}{p.get('size')} {p.get('distance')}" for n, p in configured.items()
    )
    return {
        "name": name,
        "points": info.get("points_count"),
        "status": info.get("status"),
        "vectors": described,
    }


# -- bench ------------------------------------------------------------------------------------


def _add_bench(commands: Any) -> None:
    parser = commands.add_parser(
        "bench",
        help="run a benchmark script from bench/ (lists them without NAME)",
        description=(
            "Run bench/bench_NAME.py from the source checkout with this interpreter, passing "
            "ARGS through (e.g. quiver bench core --quick; quiver bench core --help for its "
            "flags). Without NAME, list the benchmarks."
        ),
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="benchmark, e.g. core or hnsw")
    parser.add_argument(
        "args", nargs=argparse.REMAINDER, metavar="ARGS", help="arguments for the benchmark script"
    )
    parser.set_defaults(handler=_bench)


def bench_scripts(root: Path = REPO_ROOT) -> dict[str, Path]:
    return {p.stem.removeprefix("bench_"): p for p in sorted((root / "bench").glob("bench_*.py"))}


def _bench(args: argparse.Namespace) -> int:
    from client.errors import CliError

    scripts = bench_scripts()
    if not scripts:
        raise CliError(
            f"no bench/bench_*.py under {REPO_ROOT}: the benchmarks run from a source checkout"
        )
    if args.name is None:
        width = max(len(name) for name in scripts)
        for name, path in scripts.items():
            print(f"{name.ljust(width)}  {_first_doc_line(path)}")
        return EXIT_OK
    script = scripts.get(args.name)
    if script is None:
        raise CliError(f"no benchmark {args.name!r}; there are: {', '.join(scripts)}")
    return subprocess.call([sys.executable, str(script), *args.args], cwd=REPO_ROOT)


def _first_doc_line(path: Path) -> str:
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    except (OSError, SyntaxError, ValueError):
        doc = None
    return (doc or "").strip().splitlines()[0] if doc else ""
