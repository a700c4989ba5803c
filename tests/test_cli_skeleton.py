"""The command line's skeleton: help, version and error handling."""

from __future__ import annotations

from pathlib import Path

import pytest

from juki_gateway.cli import main


def test_version_prints_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """``--version`` names the program and exits 0."""
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert "juki-gateway" in capsys.readouterr().out


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a sub-command the help text is printed and the exit code is 2."""
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out.lower()


def test_init_listen_binds_endpoints_and_metrics_only(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """``init --listen ADDR`` (a container's 0.0.0.0) puts ADDR on every endpoint and the
    metrics listener, keeps the admin port and the daemon's own links on loopback, and loads;
    an address that is not an IP is a usage error (exit 2) that writes nothing."""
    from juki_gateway.gateway.config import load_config

    assert main(["init", str(tmp_path / "bad"), "--listen", "any"]) == 2
    assert "--listen 'any' is not an IP address" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    assert main(["init", str(tmp_path / "wd"), "--listen", "0.0.0.0"]) == 0
    config = load_config(tmp_path / "wd" / "gateway.toml")
    assert {ep.host for ep in config.endpoints} == {"0.0.0.0"}
    assert config.metrics.host == "0.0.0.0" and config.admin.host == "127.0.0.1"
    assert {link.host for link in config.links} == {"127.0.0.1"}
