#!/bin/bash
# uvicorn (`quiver serve`: httptools + uvloop) against granian on the same Quiver app and data.
# One process each, a 2,000-point 50-d collection (exact search, so the ASGI server's own
# cost is a large share), `wrk` at 1 and 8 connections posting plain /points/query bodies.
# Prints queries/s, p50 and the server's CPU time per request (from /proc, less sensitive
# to other load than wall-clock rates). Needs `wrk` and `pip install granian`.
#   bash bench/asgi_servers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORK=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$WORK"' EXIT
export QUIVER_GRPC_PORT=0 QUIVER_WARM_UP=0 QUIVER_DATA_DIR=$WORK/data PORT=${PORT:-16410}
start_uvicorn() { $PY -m server.cli serve --port "$PORT" --data-dir "$QUIVER_DATA_DIR" >"$WORK/server.log" 2>&1 & pid=$!; }
start_granian() {
  "$(dirname "$PY")/granian" --interface asgi --factory --host 127.0.0.1 --port "$PORT" \
    --loop uvloop --no-ws --log-level warning server.main:create_app >"$WORK/server.log" 2>&1 & pid=$!
}
wait_up() { for _ in $(seq 200); do curl -sf "localhost:$PORT/healthz" >/dev/null && return; sleep 0.3; done; exit 1; }
ticks() { local t=0; for p in $pid $(pgrep -P $pid); do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
measure() {  # server connections
  local t0 out n
  t0=$(ticks)
  out=$(wrk -t1 -c"$2" -d6s -s "$WORK/q.lua" --latency "http://127.0.0.1:$PORT")
  n=$(echo "$out" | grep -oP '^\s+\K\d+(?= requests in)')
  echo "$1 connections=$2 requests=$n q/s=$(echo "$out" | grep -oP 'Requests/sec:\s+\K[\d.]+')" \
    "p50=$(echo "$out" | grep -oP '50%\s+\K\S+') cpu_us_per_request=$(( ($(ticks) - t0) * 10000 / n ))"
}
cat >"$WORK/q.lua" <<LUA
local bodies = {}
for line in io.lines("$WORK/queries.jsonl") do bodies[#bodies + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function() i = i % #bodies + 1; return wrk.format(nil, "/collections/glove/points/query", nil, bodies[i]) end
LUA
start_uvicorn; wait_up
$PY - "$WORK" <<'PY'
import os, sys, httpx, numpy as np, orjson
x = np.random.default_rng(0).random((2000, 50), dtype=np.float32)
c = httpx.Client(base_url=f"http://127.0.0.1:{os.environ['PORT']}", timeout=60)
c.put("/collections/glove", json={"vectors": {"size": 50, "distance": "Cosine"}}).raise_for_status()
body = orjson.dumps({"points": [{"id": i, "vector": x[i]} for i in range(2000)]}, option=orjson.OPT_SERIALIZE_NUMPY)
c.put("/collections/glove/points?wait=true", content=body, headers={"content-type": "application/json"}).raise_for_status()
lines = [orjson.dumps({"query": v, "limit": 10}, option=orjson.OPT_SERIALIZE_NUMPY) for v in x[:500]]
open(f"{sys.argv[1]}/queries.jsonl", "wb").write(b"\n".join(lines) + b"\n")
PY
for round in 1 2; do
  for server in uvicorn granian; do
    kill $pid; wait $pid 2>/dev/null || true
    start_$server; wait_up
    wrk -t1 -c1 -d2s -s "$WORK/q.lua" "http://127.0.0.1:$PORT" >/dev/null  # warm-up
    measure $server 1; measure $server 8
  done
done
