"""The benchmarks' shared harness: what every `bench/*.py` script needs besides its own
measurements. Imported by the scripts (run as `python bench/<script>.py`, so `bench/` is on
the path), never by the server or the tests.

- `cli`: paths, `log`, the common flags (`--quick`, `--port`, `--results-dir`), `guarded`
  (a failed server is exit status 2) and `finish` (print, save, exit status of the checks);
- `results`: `save_results` (`.json`, `.md`, optional `.png`) and `check` rows;
- `machine`: `machine_info` (CPU, memory, versions, date, git commit), `cpu_busy_fraction`,
  `rss_bytes`;
- `metrics`: `recall_at_k`, `latency_summary` (ms percentiles), `rate`;
- `server`: `QuiverServer`, a real server process on 127.0.0.1 in a temporary data folder;
- `http`: requests against a collection (`expect_ok`, `send_singles`, `search_batches`),
  `HttpOutcome`, status polling (`wait_green`);
- `clients`: spawned client processes that start their timed queries together;
- `data`: exact ground truth and its `.npy` cache, shared by the data-set modules.
"""
