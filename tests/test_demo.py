"""``make demo``: the codec section shows 外字 items, and the whole demo runs end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from juki_gateway import demo

REPO = Path(__file__).resolve().parent.parent


def test_demo_shows_gaiji_items(capsys: pytest.CaptureFixture[str]) -> None:
    """The codec section exits 0 and prints the explained bytes and the decoded 外字 items."""
    assert demo.codec_section() == 0
    out = capsys.readouterr().out
    assert "𠮷田　太郎" in out and "外字数(氏名)" in out
    assert '"高橋　崎子"' in out and "substitute_name_positions" in out
    assert "rejected [unknown_message_type]" in out


@pytest.mark.timeout(300)
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    """The demo sets up a working directory, runs quickstart against serve alone (hosting the
    Juki-net chain), every invariant holds end to end, and the daemon is stopped afterwards."""
    env = dict(os.environ, JUKI_DEMO_DIR=str(tmp_path / "demo"), JUKI_DEMO_DURATION="8",
               PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "juki_gateway.demo"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "RESULT: all invariants held" in out
    assert "nothing lost (R4)" in out and "no automatic answer about a flagged person (R7)" in out
    assert "every acknowledged update reached 機構 exactly once (R4)" in out
    assert "every resident got its 符号 through the intermediate server" in out
    assert "jukinet-node" not in out and "→ 200 ok" in out and "daemon stopped" in out
    # nothing the run left behind is readable by another account (stores, WAL, logs, keys …)
    made = [tmp_path / "demo", *sorted((tmp_path / "demo").rglob("*"))]
    assert len(made) > 20 and any(p.name.endswith("-wal") or p.suffix == ".sqlite3" for p in made)
    readable = [f"{p.relative_to(tmp_path)} {p.stat().st_mode & 0o777:o}" for p in made
                if not p.is_symlink() and p.stat().st_mode & 0o077]
    assert readable == []
    assert (tmp_path / "demo" / "quickstart-summary.json").exists()


def test_init_repairs_a_directory_others_could_read(tmp_path: Path) -> None:
    """init takes group and other bits off an existing working directory and lists what it
    changed; a second run finds nothing to change."""
    from juki_gateway.cli import main

    wd = tmp_path / "wd"
    assert main(["init", str(wd)]) == 0
    (wd / "registry.sqlite3").write_bytes(b"x")
    for p in (wd, wd / "logs", wd / "registry.sqlite3", wd / "gateway.toml"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    out = subprocess.run([sys.executable, "-m", "juki_gateway", "init", str(wd)],
                         capture_output=True, text=True, timeout=60).stdout
    assert "restricted 4 file(s) and directories others could read" in out
    assert all(not p.stat().st_mode & 0o077 for p in [wd, *wd.rglob("*")])
    again = subprocess.run([sys.executable, "-m", "juki_gateway", "init", str(wd)],
                           capture_output=True, text=True, timeout=60).stdout
    assert "restricted" not in again
