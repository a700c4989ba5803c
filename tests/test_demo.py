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
    assert (tmp_path / "demo" / "quickstart-summary.json").exists()
