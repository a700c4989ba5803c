"""A real ``juki-gateway serve`` runs retention on every store it holds, unasked."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from juki_gateway.gateway.config import load_config
from juki_gateway.registry_store.anchor import KEY_NAME, load_key
from juki_gateway.registry_store.audit import list_audit, verify_chain
from juki_gateway.registry_store.engine import create_store_engine
from tests.gateway_support import make_workdir, start_daemon

pytestmark = pytest.mark.timeout(120)


def test_daemon_runs_retention_on_every_store_at_start_up(tmp_path: Path) -> None:
    """Started on an init-made working directory, the daemon runs each store's retention at
    start-up without anyone calling 'retention run': /metrics gives the last run of the registry
    store and of every node store, and each store's audit log holds the run, anchored."""
    root = make_workdir(tmp_path)
    config = load_config(root / "gateway.toml")
    stores = config.stores()
    assert set(stores) == {"registry", "cs-172014", "pref-17", "kiko"}
    started = time.time()
    d = start_daemon(root)
    try:
        runs = d.retention_settled()
        assert set(runs) == set(stores), runs
        samples = d.scrape()
        assert all(started - 1 <= t <= time.time() + 1 for t in runs.values()), runs
        for store in stores:
            key = ("juki_gateway_retention_purged_rows_total",
                   (("store", store), ("table", "soufusaki")))
            assert samples[key] == 0
    finally:
        assert d.stop() == 0
    key = load_key(config.pki_dir / KEY_NAME)
    for name, url in stores.items():
        engine = create_store_engine(url)
        with engine.connect() as conn:
            assert [e.action for e in list_audit(conn, subject="retention")] == \
                ["retention_purge"], name
            assert verify_chain(conn, keys=[key]).ok, name
        engine.dispose()
