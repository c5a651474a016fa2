#!/usr/bin/env bash
# Interleaved before/after runs of bench_core and bench_hnsw --quick: the code at e01d851
# (before issue 19) and at the given commit, each from its own exported tree, so the
# server process and in-process engine both come from the tree under test.
set -u
AFTER=${1:?commit}
OUT=${2:?out dir}
PY=/work/main/.venv/bin/python
rm -rf /tmp/benchpair/before /tmp/benchpair/after; mkdir -p /tmp/benchpair/before /tmp/benchpair/after "$OUT"
git -C /work/main archive e01d851 | tar -x -C /tmp/benchpair/before
git -C /work/main archive "$AFTER" | tar -x -C /tmp/benchpair/after
run() {  # tree label script args...
  local tree=$1 label=$2; shift 2
  (cd /tmp/benchpair/$tree && PYTHONPATH=/tmp/benchpair/$tree $PY "$@" --results-dir "$OUT/$label" > "$OUT/$label.log" 2>&1; echo "$label rc=$?" >> "$OUT/rc.txt")
}
run before hnsw-before-1 bench/bench_hnsw.py --quick
run after  hnsw-after-1  bench/bench_hnsw.py --quick
run after  hnsw-after-2  bench/bench_hnsw.py --quick
run before hnsw-before-2 bench/bench_hnsw.py --quick
run before core-before-1 bench/bench_core.py --queries 500 --batch-queries 2000
run after  core-after-1  bench/bench_core.py --queries 500 --batch-queries 2000
