# juki-gateway: every target installs into .venv by itself on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck pytest clean bench bench-codec bench-store

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: install
	$(PY) -m juki_gateway.demo

lint: install
	$(VENV)/bin/ruff check juki_gateway tests

# mypy --strict on the pure core (codecs, sans-IO protocol state machines) and the store.
typecheck: install
	$(VENV)/bin/mypy --strict juki_gateway/codecs juki_gateway/protocols juki_gateway/registry_store

pytest: install
	$(VENV)/bin/pytest -q

test: lint typecheck pytest

# Store tests run against SQLite and a real PostgreSQL: $$JUKI_TEST_PG_URL if set, else the
# test session starts a private throwaway cluster (initdb into a temporary directory).

# Durable update rates with and without group commit, and the 500k-resident load, on SQLite and
# PostgreSQL ($$JUKI_BENCH_PG_URL / $$JUKI_TEST_PG_URL, else a throwaway cluster with fsync on).
bench-store: install
	$(PY) -m juki_gateway.registry_store.bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
