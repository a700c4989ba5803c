"""The optional dependencies (faker: 'sim', psycopg: 'postgres') are imported lazily, and a
command that needs a missing one ends with one line naming the extra to install."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Run the command line in a fresh interpreter where the named top-level modules cannot be
#: imported, as on a host where the extra was not installed.
_WITHOUT = textwrap.dedent("""
    import sys, importlib.abc
    BLOCKED = set(sys.argv[1].split(","))
    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, Blocker())
    import juki_gateway.gateway.service  # the daemon's whole service tree
    from juki_gateway.cli import main
    status = main(sys.argv[2:])
    leaked = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
    assert not leaked, leaked
    raise SystemExit(status)
""")


def _without(blocked: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", _WITHOUT, blocked, *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("blocked", "argv", "extra"), [
    ("faker", ["simulate", "quickstart", "--config", "nowhere/gateway.toml"], "sim"),
    ("faker", ["capture", "quickstart", "--out", "run.jsonl", "--config", "nowhere/gateway.toml"],
     "sim"),
    ("psycopg", ["store", "migrate", "--db", "postgresql+psycopg://juki@127.0.0.1:9/juki"],
     "postgres"),
])
def test_a_missing_extra_is_one_line_naming_it(tmp_path: Path, blocked: str, argv: list[str],
                                               extra: str) -> None:
    """Without faker, simulate and capture; without psycopg, a PostgreSQL store: exit 1 and one
    line on stderr naming the extra to install, no traceback."""
    result = _without(blocked, *argv, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("juki-gateway: error [missing_extra]: ")
    assert f"pip install 'juki-gateway[{extra}]'" in lines[0]


def test_the_core_commands_run_without_either_extra(tmp_path: Path) -> None:
    """init, certs and the daemon's service tree need neither faker nor psycopg (the child
    asserts neither was imported)."""
    result = _without("faker,psycopg", "init", str(tmp_path / "wd"), "--port-base", "7100",
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = _without("faker,psycopg", "certs", "list", "--config",
                      str(tmp_path / "wd" / "gateway.toml"), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "cs-172014" in listed.stdout
