"""Opening a collection and installing its snapshot, per point (issue 23: a replica catching up).

GloVe-50, the first `--points` base vectors (Cosine, payload `{"row": i}`), upserted 1,000 at
a time with `indexing_threshold` 30,000 and indexed by the build worker (at 100,000 points:
one built HNSW segment of 90,000 and an exact appendable tail of 10,000), then snapshotted.
Then, in a fresh process per measurement, alternating between the code versions, `--repeat`
times each (the median is reported):

* open: `Collection.open` of the folder, what a restart does per collection;
* install: `Engine.recover` of the snapshot over the existing collection, what a replica
  does with a transferred snapshot (`ReplicaServer.install`): unpack, verify, open, swap.

`--baseline DIR` names a copy of other code to compare with (before/after in one run), e.g.
`git archive <commit> server index | tar -x -C DIR`; without it only this tree is measured.
Target (issue 23): recovery >= 50k points/s; install is the part of a replica's recovery
that runs on its own node, after the snapshot's bytes arrived.

    nice -n 10 python bench/bench_open.py --baseline /tmp/base     # 100,000 points
    python bench/bench_open.py --quick                               # 6,000 points
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from harness.cli import add_common_options, finish, log, new_parser
from harness.machine import machine_info
from harness.results import check

HERE = Path(__file__).resolve().parent
TREE = HERE.parent
NAME = "glove"
THRESHOLD = 30_000


def build(root: Path, points: int) -> Path:
    """The collection under ``root``, indexed, and its snapshot archive."""
    from server.engine.config import CollectionConfig
    from server.engine.engine import Engine

    base = np.load(HERE / "data" / "base.npy", mmap_mode="r")[:points]
    config = CollectionConfig.model_validate(
        {
            "vectors": {"": {"size": 50, "distance": "Cosine"}},
            "named_vectors": False,
            "optimizers_config": {"indexing_threshold": THRESHOLD},
        }
    )
    engine = Engine(root)
    try:
        engine.create(NAME, config)
        collection = engine.get(NAME)
        for start in range(0, points, 1000):
            ids = list(range(start, min(points, start + 1000)))
            chunk = np.ascontiguousarray(base[ids[0] : ids[-1] + 1], dtype=np.float32)
            collection.bulk_upsert(ids, {"": chunk}, [{"row": i} for i in ids])
        if not engine.worker.wait_idle(NAME, 1800):
            raise RuntimeError("the build worker did not finish")
        segments = [(s.kind, s.points, s.index) for s in collection.segments_info()]
        log(f"built: {segments}")
        return engine.snapshot_path(NAME, engine.create_snapshot(NAME).name)
    finally:
        engine.close()


def measure(root: Path, archive: Path) -> dict[str, float]:
    """One open and one install with the code this process imports (a child process)."""
    from server.engine.collection import Collection
    from server.engine.engine import Engine

    started = time.perf_counter()
    collection = Collection.open(NAME, root / "collections" / NAME)
    opened = time.perf_counter() - started
    points = collection.count(None)
    collection.close()
    engine = Engine(root)
    try:
        started = time.perf_counter()
        engine.recover(NAME, archive)
        installed = time.perf_counter() - started
        if engine.get(NAME).count(None) != points:
            raise RuntimeError("the installed snapshot lost points")
    finally:
        engine.close()
    return {"points": points, "open_s": opened, "install_s": installed}


def child(code: Path, root: Path, archive: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    command = [sys.executable, __file__, "--measure", str(root), str(archive)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    answer: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def summary(runs: list[dict[str, float]]) -> dict[str, Any]:
    points = runs[0]["points"]
    open_s = statistics.median(r["open_s"] for r in runs)
    install_s = statistics.median(r["install_s"] for r in runs)
    return {
        "open_s": round(open_s, 3),
        "open_points_per_s": round(points / open_s),
        "install_s": round(install_s, 3),
        "install_points_per_s": round(points / install_s),
        "runs": runs,
    }


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"## Open and snapshot install (GloVe-50, {results['points']:,} points)",
        "",
        "| code | open s | open points/s | install s | install points/s |",
        "|---|--:|--:|--:|--:|",
    ]
    for label, row in results["codes"].items():
        lines.append(
            f"| {label} | {row['open_s']} | {row['open_points_per_s']:,} "
            f"| {row['install_s']} | {row['install_points_per_s']:,} |"
        )
    lines += ["", f"Median of {results['repeat']} fresh processes each, alternating.", ""]
    lines += [
        f"Check: {c['name']} = {c['value']:,.0f} (target >= {c['target']:,}): "
        f"{'PASS' if c['passed'] else 'FAIL'}"
        for c in results["checks"]
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--measure":
        print(json.dumps(measure(Path(sys.argv[2]), Path(sys.argv[3]))))
        return 0
    parser = new_parser(__doc__, raw=True)
    add_common_options(parser, quick_help="6,000 points, a smoke run")
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=Path, default=None, help="other code to compare")
    parser.add_argument("--stem", default="open_install", help="result file name (no suffix)")
    args = parser.parse_args()
    points = 6_000 if args.quick else args.points
    codes = {"this tree": TREE}
    if args.baseline is not None:
        codes = {"baseline": args.baseline.resolve()} | codes
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in codes}
    with tempfile.TemporaryDirectory() as tmp:
        log(f"building {points:,} points")
        archive = build(Path(tmp), points)
        for round_ in range(args.repeat):
            for label, code in codes.items():
                runs[label].append(child(code, Path(tmp), archive))
                log(f"round {round_ + 1} {label}: {runs[label][-1]}")
    summaries = {label: summary(r) for label, r in runs.items()}
    install = summaries["this tree"]["install_points_per_s"]
    results = {
        "machine": machine_info(),
        "points": points,
        "repeat": args.repeat,
        "codes": summaries,
        "checks": [check("install points/s (this tree)", install, 50_000)],
    }
    return finish(results, args, args.stem, markdown)


if __name__ == "__main__":
    sys.exit(main())
