"""Configuration path resolution shared by the sub-commands."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from juki_gateway.errors import UsageError
from juki_gateway.workdir import (
    CONFIG_ENV,
    add_config_argument,
    config_path_from,
    default_config_path,
    read_toml,
)


def test_default_is_env_then_juki_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --config the environment variable wins, else ./juki-data/gateway.toml."""
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    assert default_config_path() == Path("juki-data/gateway.toml")
    monkeypatch.setenv(CONFIG_ENV, "/x/y.toml")
    assert default_config_path() == Path("/x/y.toml")


def test_explicit_config_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit --config overrides the environment."""
    monkeypatch.setenv(CONFIG_ENV, "/x/y.toml")
    parser = argparse.ArgumentParser()
    add_config_argument(parser)
    assert config_path_from(parser.parse_args(["--config", "/a/b.toml"])) == Path("/a/b.toml")
    assert config_path_from(parser.parse_args([])) == Path("/x/y.toml")


def test_read_toml_errors_are_usage_errors(tmp_path: Path) -> None:
    """A missing or malformed file is a UsageError naming the path, not a traceback."""
    with pytest.raises(UsageError, match="init"):
        read_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[store\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        read_toml(bad)
