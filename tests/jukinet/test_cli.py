"""The Juki-net command line: configuration resolution and one-line errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from juki_gateway.cli import main
from juki_gateway.cli.jukinet import _from_gateway_toml
from juki_gateway.gateway.initdir import init_workdir


def test_consistency_check_reads_the_cs_and_peer_from_gateway_toml(tmp_path: Path) -> None:
    """With --config the CS identity, store and the peer endpoint come from gateway.toml."""
    init_workdir(tmp_path, dt.datetime.now(dt.UTC).replace(tzinfo=None), port_base=7300)
    cfg = _from_gateway_toml(tmp_path / "gateway.toml", "prefecture")
    assert (cfg.node_id, cfg.role, cfg.org) == ("cs-172014", "municipal-cs", "172014")
    assert cfg.cert == tmp_path / "pki" / "cs-172014.pem" and cfg.cert.exists()
    assert [(p.node_id, p.role, p.port) for p in cfg.peers] == [("pref-17", "prefecture", 7302)]
    assert cfg.store_url.startswith("sqlite:///")
    kiko = _from_gateway_toml(tmp_path / "gateway.toml", "kiko")
    assert [(p.node_id, p.port) for p in kiko.peers] == [("kiko", 7303)]


def test_missing_node_file_is_a_one_line_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing --node file exits 2 with one line naming it, not a traceback."""
    code = main(["consistency-check", "--peer", "kiko", "--node", str(tmp_path / "none.json")])
    err = capsys.readouterr().err
    assert code == 2 and "none.json" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
