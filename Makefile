# Two commands: `make demo` and `make test`. Everything else is a step of theirs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
KR     := $(BIN)/kafka-reliable
STAMP  := $(VENV)/.installed

.PHONY: demo test install services broker redis stop lint bench clean

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

demo: services
	$(PY) scripts/demo_reliability_features.py --demo all

# Tests take Kafka from KAFKA_BOOTSTRAP_SERVERS, else testcontainers when a Docker engine
# answers, else the dev broker (tests/conftest.py); start the dev broker only in that case.
test: install redis
	@if [ -z "$$KAFKA_BOOTSTRAP_SERVERS" ] && ! docker info >/dev/null 2>&1; then $(KR) dev-broker start; fi
	$(BIN)/pytest -q tests

lint: install
	$(BIN)/ruff check kafka_reliable tests scripts
	$(BIN)/mypy kafka_reliable

bench: services
	$(PY) scripts/bench_producer.py

stop:
	-$(KR) dev-broker stop
	-$(KR) dev-redis stop

clean: stop
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
