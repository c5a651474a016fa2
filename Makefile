# The two commands a user needs: `make serve` and `make test`. Both create the
# virtual environment on first use, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
EMBED_STAMP := $(VENV)/.installed-embed
TEXT_DATA := bench/data/text/meta.json
TOKEN_DATA := bench/data/tokens/meta.json
# The framework scenarios (tests/frameworks): one venv each, as their dependencies conflict.
FRAMEWORKS := langchain llamaindex haystack mem0 qdrant
FRAMEWORK_VENVS := .venv-frameworks
FRAMEWORK_STAMPS := $(FRAMEWORKS:%=$(FRAMEWORK_VENVS)/%/.installed)
HOST ?= 127.0.0.1
PORT ?= 6333
DATA_DIR ?= ./data

.PHONY: serve test test-containers test-browser test-frameworks lint typecheck check bench \
	bench-core bench-hnsw bench-planner bench-quantization bench-leanvec bench-muvera bench-bulk \
	bench-keyword bench-hybrid bench-sparse clean

# uv installs the same packages at the same versions as pip did, in 36 s instead of 198 s
# here (it fetches in parallel); pip stays in the venv for the bench extras below, whose
# torch must come from pip's local CPU wheel.
$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet uv
	$(VENV)/bin/uv pip install --quiet --python $(VENV)/bin/python -e '.[dev,cluster]'
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(VENV)/bin/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# torch comes from the local CPU wheel (pinned 2.13.0 in the `embed` extra): install it
# first so nothing asks the registry for a CUDA build.
$(EMBED_STAMP): $(BENCH_STAMP)
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -e '.[dev,bench,embed]'
	touch $(EMBED_STAMP)

# The 384-d Debian MiniLM set: ~22 min of embedding on 2 cores, cached in bench/data/.
$(TEXT_DATA): | $(EMBED_STAMP)
	$(VENV)/bin/python bench/text_embeddings.py build --base 56000 --queries 2000

# MiniLM token vectors of 20k of those descriptions: ~7 min of embedding on one core.
$(TOKEN_DATA): $(TEXT_DATA) | $(EMBED_STAMP)
	$(VENV)/bin/python bench/token_embeddings.py build --docs 20000 --queries 1000

serve: $(STAMP)
	$(VENV)/bin/quiver serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

# Bytecode is written and read back even where the environment sets PYTHONDONTWRITEBYTECODE
# (this CI machine does, and uv installs without .pyc): otherwise every server a test
# starts, every Ray worker and both test workers compile each module they import from
# source again, ~2.3 s of CPU per server start; test_crash_recovery.py took 80 s of CPU
# so and 34 s with bytecode. The first process to import a module writes its .pyc.
test: export PYTHONDONTWRITEBYTECODE :=

# numba compiles every kernel once into its cache (index/compiled.py), its two halves in two
# processes while ruff and mypy run, then loads both back from the cache (compiling again
# only what a race on numba's cache index dropped), before the test workers and the servers
# they start would each compile them.
# --no-loadscope-reorder: work goes out in collection order, where tests/conftest.py puts
# the serial Ray group first, so one worker runs it while the other takes the rest.
test: $(STAMP)
	$(VENV)/bin/python -m index.compiled writable & writable=$$!; \
	$(VENV)/bin/python -m index.compiled read-only & readonly=$$!; \
	$(VENV)/bin/ruff check server index client tests bench && $(VENV)/bin/mypy; checked=$$?; \
	wait $$writable; w=$$?; wait $$readonly; r=$$?; \
	test $$checked -eq 0 && test $$w -eq 0 && test $$r -eq 0
	$(VENV)/bin/python -m index.compiled
	$(VENV)/bin/pytest -q -n 2 --dist loadgroup --no-loadscope-reorder --durations=25

# The container smoke test (tests/deploy/test_container_smoke.py): root, ~3 min from a cold
# cache; it skips, saying why, where no Docker daemon can be started. .ci/run runs it as its
# own step after `make test`. Add QUIVER_CLUSTER_CONTAINER_TESTS=1 for the cluster profile.
test-containers: $(STAMP)
	QUIVER_CONTAINER_TESTS=1 $(VENV)/bin/pytest -q -rs -m container tests/deploy

# The dashboard (tests/browser): node's test runner for its JavaScript, then a real headless
# Chromium (Debian's chromium + chromium-driver; nothing downloads a browser) against a real
# server; screenshots land in tests/browser/artifacts/. Not part of `make test`.
test-browser: $(STAMP)
	node --test tests/browser/js/*.test.mjs
	QUIVER_BROWSER_TESTS=1 $(VENV)/bin/pytest -q -rs tests/browser

# Each framework's venv holds only the framework and pytest, every version pinned in
# tests/frameworks/requirements/NAME.txt; the Quiver server the tests start runs from .venv.
$(FRAMEWORK_VENVS)/%/.installed: tests/frameworks/requirements/%.txt
	test -x $(FRAMEWORK_VENVS)/$*/bin/python || $(PYTHON) -m venv $(FRAMEWORK_VENVS)/$*
	$(FRAMEWORK_VENVS)/$*/bin/pip install --quiet --upgrade pip
	$(FRAMEWORK_VENVS)/$*/bin/pip install --quiet -r $<
	touch $@

# LangChain, LlamaIndex, Haystack and mem0 through their own Qdrant stores, and
# qdrant-client's server-side BM25 Documents, against a real server (issue 15); every
# framework runs even when one fails. .ci/run runs it as its own step after the containers.
test-frameworks: $(STAMP) $(FRAMEWORK_STAMPS)
	@status=0; for name in $(FRAMEWORKS); do \
		echo "== tests/frameworks/test_$$name.py ($(FRAMEWORK_VENVS)/$$name)"; \
		FRAMEWORKS_SERVER_PYTHON=$(abspath $(VENV))/bin/python \
			$(FRAMEWORK_VENVS)/$$name/bin/pytest -q -p no:cacheprovider \
			tests/frameworks/test_$$name.py || status=1; \
	done; exit $$status

lint: $(STAMP)
	$(VENV)/bin/ruff check server index client tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: bench-core bench-hnsw bench-planner bench-quantization bench-leanvec bench-muvera \
	bench-bulk bench-keyword bench-hybrid bench-sparse

bench-core: $(BENCH_STAMP)
	$(VENV)/bin/python bench/bench_core.py

bench-hnsw: $(BENCH_STAMP)
	$(VENV)/bin/python bench/bench_hnsw.py

bench-planner: $(BENCH_STAMP)
	$(VENV)/bin/python bench/bench_planner.py

bench-quantization: $(BENCH_STAMP) $(TEXT_DATA)
	$(VENV)/bin/python bench/bench_quantization.py

bench-leanvec: $(BENCH_STAMP) $(TEXT_DATA)
	$(VENV)/bin/python bench/bench_leanvec.py

bench-muvera: $(BENCH_STAMP) $(TOKEN_DATA)
	$(VENV)/bin/python bench/bench_muvera.py

bench-bulk: $(BENCH_STAMP) $(TEXT_DATA)
	$(VENV)/bin/python bench/bench_bulk.py

# BM25 over HTTP vs bm25s: needs apt's English lists (text_embeddings.py reads them), or the
# text cache, whose texts it then uses; no embeddings.
bench-keyword: $(BENCH_STAMP)
	$(VENV)/bin/python bench/bench_keyword.py

# Dense + BM25 + RRF / DBSF: the MiniLM cache, and the model for the synopsis queries.
bench-hybrid: $(BENCH_STAMP) $(TEXT_DATA)
	$(VENV)/bin/python bench/bench_hybrid.py

# 1M synthetic SPLADE-like vectors: both cores for ~15 min and ~6 GB of memory, hence nice.
bench-sparse: $(BENCH_STAMP)
	nice -n 10 $(VENV)/bin/python bench/bench_sparse.py

clean:
	rm -rf $(VENV) $(FRAMEWORK_VENVS) .pytest_cache .mypy_cache
