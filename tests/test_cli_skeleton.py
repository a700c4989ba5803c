"""The command line's skeleton: help, version and error handling."""

from __future__ import annotations

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
