# juki-gateway: every target installs into .venv by itself on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install tools promtool demo test lint typecheck pytest clean bench bench-codec bench-tls bench-store bench-jukinet bench-intermediate bench-topology docs vectors

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[sim,postgres,dev]'  # dev needs both extras too
	touch $(STAMP)

# External TLS scanner for the test suite, in its own venv (it pins its own cryptography).
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed

tools: $(TOOLS_STAMP) promtool

# promtool (Debian's prometheus package) checks /metrics and ops/alerts.yml in the tests.
promtool:
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; \
	  else echo "promtool is missing: install Debian's 'prometheus' package (sudo apt-get install prometheus)" >&2; exit 1; fi; }

$(TOOLS_STAMP):
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q 'sslyze>=6.0,<7'
	touch $(TOOLS_STAMP)

demo: install
	$(PY) -m juki_gateway.demo

lint: install
	$(VENV)/bin/ruff check juki_gateway tests benchmarks

# mypy --strict on the pure core (codecs, sans-IO protocol state machines), the dev PKI, the
# store, the daemon and the command line (pyproject.toml says where and why a check is relaxed).
typecheck: install
	$(VENV)/bin/mypy --strict juki_gateway/codecs juki_gateway/protocols juki_gateway/registry_store juki_gateway/certs juki_gateway/gateway juki_gateway/cli

pytest: install tools
	$(VENV)/bin/pytest -q

test: lint typecheck pytest

# mTLS handshakes vs openssl s_server, and framed PING/PONG throughput vs asyncio + ssl.
bench-tls: install
	$(PY) -m benchmarks.bench_tls

# Store tests run against SQLite and a real PostgreSQL: $$JUKI_TEST_PG_URL if set, else the
# test session starts a private throwaway cluster (initdb into a temporary directory).

# Durable update rates with and without group commit, and the 500k-resident load, on SQLite and
# PostgreSQL ($$JUKI_BENCH_PG_URL / $$JUKI_TEST_PG_URL, else a throwaway cluster with fsync on).
bench-store: install
	$(PY) -m benchmarks.bench_store

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache

# Intermediate server: answered and held queries per second over mutual TLS (never fails on speed).
bench-intermediate: install
	$(PY) -m benchmarks.bench_intermediate 6000

# Benchmark of the record codec: generated codec vs plain construct vs hand-written struct floor.
bench-codec: install
	$(PY) benchmarks/bench_codec.py

# Regenerate the generated documents from the layout tables and the message catalogue (a test
# runs `python -m juki_gateway.docs --check`, which fails when one is stale; --help lists them).
docs: install
	$(PY) -m juki_gateway.docs

# Regenerate the golden vectors in tests/vectors/ (records, and one frame per Juki-net message
# type in tests/vectors/jukinet/) from the tables, the message catalogue and the samples.
vectors: install
	$(PY) -m juki_gateway.protocols.vectors tests/vectors

# Juki-net links: e2e durable notifications/s over mTLS and the 500k consistency check.
# BASELINE=REV: the nodes also run REV's code in alternating legs, and the rate ratio is printed.
bench-jukinet: install
	$(PY) -m benchmarks.bench_jukinet $(if $(BASELINE),--baseline $(BASELINE))

# What one daemon can host: durable notifications/s end to end and RSS for kanazawa (one city),
# hokuriku on one daemon (37 nodes) and hokuriku split over three daemons (機構 on PostgreSQL:
# $$JUKI_BENCH_PG_URL / $$JUKI_TEST_PG_URL, else a throwaway cluster; SQLite, said so, if none).
bench-topology: install
	$(PY) -m benchmarks.bench_topology
