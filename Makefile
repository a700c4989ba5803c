# juki-gateway: every target installs into .venv by itself on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck pytest clean bench bench-codec bench-jukinet

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

# mypy --strict on the pure core: codecs and sans-IO protocol state machines.
typecheck: install
	$(VENV)/bin/mypy --strict juki_gateway/codecs juki_gateway/protocols

pytest: install
	$(VENV)/bin/pytest -q

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Juki-net links: e2e durable notifications/s over mTLS and the 500k consistency check.
bench-jukinet: install
	$(PY) -m benchmarks.bench_jukinet
