"""``make demo`` runs and shows a decoded record with its 外字 items."""

from __future__ import annotations

import pytest

from juki_gateway import demo


def test_demo_shows_gaiji_items(capsys: pytest.CaptureFixture[str]) -> None:
    """The demo exits 0 and prints the explained bytes and the decoded 外字 items."""
    assert demo.main() == 0
    out = capsys.readouterr().out
    assert "𠮷田　太郎" in out and "外字数(氏名)" in out
    assert '"高橋　崎子"' in out and "substitute_name_positions" in out
    assert "rejected [unknown_message_type]" in out
