"""JSON-lines logging: resident identifiers become stable HMAC pseudonyms, other numbers stay."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

from twisted.logger import Logger, LogLevel

from juki_gateway.gateway.jsonlog import JsonLinesObserver, Pseudonymizer, load_or_create_key

KEY = b"k" * 32


def test_identifier_runs_are_masked_in_text() -> None:
    """11-, 12- and 15-digit runs are pseudonymised; 14-digit timestamps and 16-digit numbers are not."""
    m = Pseudonymizer(KEY)
    text = m.mask_text("jc 24727059608 kb 123456789018 atena 000000000000042 "
                       "ts 20260401093000 req 0000000000000017 port 7101")
    assert "24727059608" not in text and "123456789018" not in text
    assert "000000000000042" not in text
    assert "20260401093000" in text and "0000000000000017" in text and "7101" in text
    assert m.mask_text("24727059608") == m.mask_text("24727059608")
    assert Pseudonymizer(b"x" * 32).mask_text("24727059608") != m.mask_text("24727059608")


def test_resident_fields_are_masked_whole() -> None:
    """Fields named for resident data are replaced whole, even when they are not digit runs."""
    m = Pseudonymizer(KEY)
    assert m.mask_value("kanji_name", "金沢\u3000花子").startswith("pid:")
    assert m.mask_value("address", "石川県金沢市広坂１丁目")[:4] == "pid:"
    nested = m.mask_value("detail", {"juminhyo_code": "24727059608", "count": 3})
    assert nested["juminhyo_code"].startswith("pid:") and nested["count"] == 3


def test_observer_writes_masked_json_lines() -> None:
    """An event logged through twisted.logger comes out as one masked JSON line per stream."""
    a, b = io.StringIO(), io.StringIO()
    log = Logger(namespace="test", observer=JsonLinesObserver([a, b], Pseudonymizer(KEY)))
    log.info("applied update for {juminhyo_code} at seq {seq}", juminhyo_code="24727059608", seq=3)
    for stream in (a, b):
        lines = stream.getvalue().splitlines()
        assert len(lines) == 1
        rec = json.loads(lines[0])
        assert rec["level"] == LogLevel.info.name and rec["namespace"] == "test"
        assert "24727059608" not in lines[0]
        assert rec["juminhyo_code"].startswith("pid:") and rec["seq"] == 3
        assert rec["message"].startswith("applied update for pid:")


def test_key_is_created_private_and_reused(tmp_path: Path) -> None:
    """The pseudonym key is made once with mode 0600 and read back unchanged."""
    key = load_or_create_key(tmp_path)
    assert len(key) == 32 and load_or_create_key(tmp_path) == key
    assert stat.S_IMODE((tmp_path / "log-pseudonym.key").stat().st_mode) == 0o600
