# musicgraph: `make run` (server on the embedded store with demo data) and `make test` (everything).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test lint typecheck neo4j-test-server browser redis-server

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/musicgraph demo --if-empty
	$(BIN)/musicgraph serve

lint: setup
	$(BIN)/ruff check src tests bench

typecheck: setup
	$(BIN)/mypy

# Chromium for the browser tests (tests/web): Debian's packages, installed when missing.
browser:
	bash .ci/install-chromium

# redis-server for the event bus tests (tests/bus): Debian's package, installed when missing.
redis-server:
	bash .ci/install-redis-server

# The Neo4j the tests start: a Java launcher built with Maven (skipped when it is up to date).
neo4j-test-server: setup
	$(BIN)/python -m tests.support.neo4j_server build

test: lint typecheck neo4j-test-server browser redis-server
	$(BIN)/pytest
