# Two commands: `make demo` and `make test`. Everything else is a step of theirs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
KR     := $(BIN)/kafka-reliable
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast test-faults install install-test-tools services broker redis stop lint \
	bench bench-cluster bench-quick clean console chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Kafka: KAFKA_BOOTSTRAP_SERVERS when set, else the dev broker (jars from Maven on first run).
broker: install
	@if [ -n "$$KAFKA_BOOTSTRAP_SERVERS" ]; then echo "using Kafka at $$KAFKA_BOOTSTRAP_SERVERS"; \
	else $(KR) dev-broker start; fi

# Redis: REDIS_URL when set, else a local redis-server (installed from Debian when missing and possible).
redis: install
	@if [ -n "$$REDIS_URL" ]; then echo "using Redis at $$REDIS_URL"; else \
	  command -v redis-server >/dev/null || bash scripts/install-redis.sh; \
	  $(KR) dev-redis start; fi

services: broker redis

# Debian's chromium for the console's browser tests (Playwright drives it; no browser download).
# Under CI=true a browser that cannot be installed fails `make test`.
chromium:
	@bash scripts/install-chromium.sh || [ "$${CI:-}" != "true" ]

# The DLQ web console on http://127.0.0.1:8080/ (docs/console.md); set
# KAFKA_RELIABLE_CONSOLE_TOKEN to allow redrive and purge. Try it after `make demo`.
console: broker
	$(KR) console

demo: services
	$(PY) scripts/demo_reliability_features.py --demo all

# Tools some tests need besides Python packages (chromium for the console's browser tests, ...):
# every scripts/install-*.sh runs (Redis's is the redis step's); each exits 0 at once when its
# tool is there. One that cannot install its tool fails `make test` only under CI=true.
install-test-tools:
	@for s in scripts/install-*.sh; do [ "$$s" = scripts/install-redis.sh ] && continue; \
	  bash "$$s" || [ "$${CI:-}" != "true" ] || exit 1; done

# The whole suite, tiers unit -> integration -> faults (testpaths), on PYTEST_WORKERS xdist
# workers; tests sharing a private cluster run in one group (CONTRIBUTING.md). Kafka comes
# from KAFKA_BOOTSTRAP_SERVERS when set, else testcontainers when a Docker engine answers,
# else the dev broker, started here once so the workers only connect to it.
PYTEST_WORKERS ?= 4
test: install redis install-test-tools
	@if [ -z "$$KAFKA_BOOTSTRAP_SERVERS" ] && ! docker info >/dev/null 2>&1; then \
	  $(KR) dev-broker start && export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092; fi; \
	$(BIN)/pytest -q -n $(PYTEST_WORKERS)

# The unit tier: no broker, no Redis, seconds (CPU-bound: one worker per core).
test-fast: install
	$(BIN)/pytest -q -n auto tests/unit

# Every fault scenario at full size on a private 3-broker cluster (reserved ports); prints the
# table and writes bench/results/faults.json. `make test` runs the quick ones (docs/reliability.md).
test-faults: install redis
	KAFKA_RELIABLE_FAULTS=all $(BIN)/pytest -q tests/faults

lint: install
	$(BIN)/ruff check kafka_reliable tests scripts
	$(BIN)/mypy kafka_reliable

# Benchmark suite (scripts/bench.py): every benchmark in one run, on a quiet machine (it waits up
# to 5 min for the 1-minute load to fall below 0.5, then refuses; BENCH_ARGS=--force runs anyway,
# and is recorded in the report). Writes bench/results/suite.json (bench-cluster: suite-cluster.json,
# on the 3-broker dev cluster, started if needed), docs/benchmarks.md and docs/img/bench-*.png.
# kcat (Debian package) is the C reference; when it cannot be installed its row says why.
BENCH_DEPS = $(BIN)/pip install -q -e '.[dev,bench]'; \
	command -v kcat >/dev/null || { [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null && \
	  { apt-get install -y -q kcat >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q kcat >/dev/null; }; }; } || \
	echo "kcat could not be installed: the C reference is reported as not available"

# A dev Redis Cluster (3 masters) for the Redis-Cluster dedup row; without one the row says why.
BENCH_REDIS_CLUSTER = $(KR) dev-redis start --cluster 3 || echo "no Redis Cluster: that row is skipped"

bench: services
	@$(BENCH_DEPS)
	@$(BENCH_REDIS_CLUSTER)
	$(PY) scripts/bench.py --wait-load 300 $(BENCH_ARGS)
	$(PY) scripts/bench_wal_write.py

bench-cluster: install redis
	@$(BENCH_DEPS)
	@$(BENCH_REDIS_CLUSTER)
	$(PY) scripts/bench.py --cluster --wait-load 300 $(BENCH_ARGS)

# Smoke run (< 3 min, one round, small sizes) into bench/results/quick/; runs on a busy machine.
bench-quick: services
	@$(BENCH_DEPS)
	$(PY) scripts/bench.py --quick --force $(BENCH_ARGS)

stop:
	-$(KR) dev-broker stop
	-$(KR) dev-redis stop

clean: stop
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
