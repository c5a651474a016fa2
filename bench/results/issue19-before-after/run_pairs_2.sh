#!/usr/bin/env bash
set -u
OUT=/work/main/bench/results/issue19-before-after
PY=/work/main/.venv/bin/python
run() { local tree=$1 label=$2; shift 2
  (cd /tmp/benchpair/$tree && PYTHONPATH=/tmp/benchpair/$tree $PY "$@" --results-dir "$OUT/$label" > "$OUT/$label.log" 2>&1; echo "$label rc=$?" >> "$OUT/rc.txt"); }
run after  core-after-2  bench/bench_core.py --queries 500 --batch-queries 2000
run before core-before-2 bench/bench_core.py --queries 500 --batch-queries 2000
