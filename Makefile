# The two commands a user needs: `make serve` and `make test`. Both create the
# virtual environment on first use, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
HOST ?= 127.0.0.1
PORT ?= 6333
DATA_DIR ?= ./data

.PHONY: serve test lint typecheck check bench bench-core bench-hnsw bench-planner clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(VENV)/bin/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

serve: $(STAMP)
	$(VENV)/bin/quiver serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

test: $(STAMP)
	$(VENV)/bin/ruff check server index tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check server index tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: bench-core bench-hnsw bench-planner

bench-core: $(BENCH_STAMP)
	$(VENV)/bin/python bench/bench_core.py

bench-hnsw: $(BENCH_STAMP)
	$(VENV)/bin/python bench/bench_hnsw.py

bench-planner: $(BENCH_STAMP)
	$(VENV)/bin/python bench/bench_planner.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
