"""JSON-lines logging: resident identifiers become stable HMAC pseudonyms, other numbers stay."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel

from juki_gateway.gateway.handshake_log import FIELDS
from juki_gateway.gateway.jsonlog import (
    JsonLinesObserver,
    Pseudonymizer,
    ReopenableFile,
    daemon_log_observer,
    load_or_create_key,
)

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


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_records_open_with_ts_level_event_as_the_handshake_log_does() -> None:
    """Every daemon-log line starts ts, level, event (the handshake log's first three fields);
    a library's event without a name is named by its namespace."""
    out = io.StringIO()
    observer = JsonLinesObserver([out], Pseudonymizer(KEY))
    Logger(namespace="juki_gateway.x", observer=observer).warn(
        "link {link} down", event="link_down", link="cs-172014->pref-17")
    Logger(namespace="twisted.web", observer=observer).info("something")
    first, second = _lines(out)
    assert list(first)[:5] == ["ts", "level", "event", "message", "namespace"]
    assert first["event"] == "link_down" and first["link"] == "cs-172014->pref-17"
    assert first["level"] == "warn" and str(first["ts"]).endswith("Z")
    assert second["event"] == "twisted.web" and "event" not in list(second)[3:]
    assert list(first)[:3] == list(FIELDS[:3])


def test_library_info_goes_below_info_and_own_info_stays() -> None:
    """Twisted's "Starting factory" and access lines (info) are dropped at the info threshold;
    the daemon's own info lines and a library's warnings are kept."""
    out = io.StringIO()
    chain, _ = daemon_log_observer([out], Pseudonymizer(KEY), Clock(), 60.0)
    Logger(namespace="twisted.internet.protocol.Factory", observer=chain).info(
        "Starting factory {factory!r}", factory=object())
    Logger(namespace="twisted.python.log", observer=chain).info('"GET /metrics HTTP/1.1" 200')
    Logger(namespace="twisted.python.log", observer=chain).warn("a library warning")
    Logger(namespace="juki_gateway.retention", observer=chain).info("ran", event="retention_run")
    assert [r["event"] for r in _lines(out)] == ["twisted.python.log", "retention_run"]


def test_a_repeated_error_is_written_once_per_window_with_its_count() -> None:
    """An error repeated every second (new connection ids each time) gives one line at once and
    one line with repeats=N when the window ends; another link's error is not held back."""
    out, clock = io.StringIO(), Clock()
    chain, limiter = daemon_log_observer([out], Pseudonymizer(KEY), clock, 60.0)
    log = Logger(namespace="juki_gateway.gateway.connection", observer=chain)
    for i in range(150):
        log.warn("[{conn_id}] link {link} refused: {status}", event="link_handshake_refused",
                 conn_id=f"c{i}", link="cs-172014->pref-17", status="unknown_ca")
        if i == 10:
            log.warn("[{conn_id}] link {link} refused: {status}", event="link_handshake_refused",
                     conn_id="other", link="pref-17->kiko", status="unknown_ca")
        clock.advance(1.0)
    recs = _lines(out)
    assert [(r["link"], r.get("repeats")) for r in recs] == [
        ("cs-172014->pref-17", None), ("pref-17->kiko", None),
        ("cs-172014->pref-17", 59), ("cs-172014->pref-17", 60)]
    assert recs[2]["conn_id"] == "c59"  # the latest repeat of the window
    limiter.flush()  # at shutdown: the 30 repeats of the open window are not lost
    assert _lines(out)[-1]["repeats"] == 30 and _lines(out)[-1]["conn_id"] == "c149"


def test_info_lines_are_never_held_back() -> None:
    """The limiter leaves info lines alone: each connection's own info line is written."""
    out, clock = io.StringIO(), Clock()
    chain, _ = daemon_log_observer([out], Pseudonymizer(KEY), clock, 60.0)
    log = Logger(namespace="juki_gateway.gateway.connection", observer=chain)
    for i in range(5):
        log.info("[{conn_id}] idle for {s:.0f}s, closing", event="idle_closed", conn_id=f"c{i}", s=300)
    assert len(_lines(out)) == 5


def test_reopenable_file_follows_a_rotation(tmp_path: Path) -> None:
    """After the file is moved away, reopen() writes to a new 0600 file at the same path."""
    path = tmp_path / "logs" / "gateway.jsonl"
    f = ReopenableFile(path)
    f.write("one\n")
    f.flush()
    path.rename(tmp_path / "rotated")
    f.write("two\n")
    f.reopen()
    f.write("three\n")
    f.close()
    assert (tmp_path / "rotated").read_text() == "one\ntwo\n"
    assert path.read_text() == "three\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_failure_is_logged_by_class_and_code_never_by_its_text() -> None:
    """A logged failure carries what it is, never what it says: a project error its code, wire
    code and place; an OS error its class and errno name; anything else its class. Its text
    (which may quote a name, an address or a statement's parameters) is not in the line."""
    from twisted.internet.error import ConnectionRefusedError

    from juki_gateway.codecs.errors import CodecError

    out = io.StringIO()
    log = Logger(namespace="test", observer=JsonLinesObserver([out], Pseudonymizer(KEY)))
    secret = "山田太郎 石川県金沢市広坂一丁目１番１号"
    for exc in (ValueError(secret), CodecError(f"bad kana {secret}", field="kana_name"),
                ConnectionRefusedError(secret), OSError(2, secret)):
        try:
            raise exc
        except Exception:
            log.failure("failed", event="test_failure")
    recs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["error"] for r in recs] == [
        "ValueError", f"{CodecError.code} ({CodecError.wire_code}) field kana_name",
        "ConnectionRefusedError", "FileNotFoundError (ENOENT)"]
    assert all(secret not in json.dumps(r, ensure_ascii=False) for r in recs)
