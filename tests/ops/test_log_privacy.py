"""No resident value reaches a log: a real daemon whose store fails during an update, and records
refused for every reason a CS refuses them, then every log searched for every value sent."""

from __future__ import annotations

import datetime as dt
import signal
import sqlite3
from pathlib import Path

import pytest_twisted

from juki_gateway.codecs.frame import encode_frame
from juki_gateway.codecs.messages import MessageType
from juki_gateway.errors import JukiError
from juki_gateway.protocols.jukinet.messages import JukinetMessage as M
from juki_gateway.protocols.jukinet.numbers import make_juminhyo_code
from juki_gateway.protocols.jukinet.records import fullwidth_digits
from juki_gateway.simulators.client import Identity, open_connection
from juki_gateway.simulators.resident_events import TENKYO, Resident, encode_change
from tests.gateway_support import make_workdir, start_daemon

CS, SENDER, TS = "cs-172014", "kizon-172014", "20261126120000"
TODAY = dt.date(2026, 11, 26)
#: A name the failing store refuses to insert (the trigger below matches it).
DOOMED = "轟　雷蔵"


def _resident(serial: int, name: str, kana: str, municipality: str = "172014") -> Resident:
    return Resident(make_juminhyo_code(f"{municipality[:4]}{serial:06d}"), name, kana,
                    f"19{50 + serial % 40:02d}0{1 + serial % 9}1{serial % 9}", "1",
                    f"石川県金沢市尾張町{fullwidth_digits(serial)}丁目")


def _values(r: Resident, record_address: str) -> list[str]:
    """What of a resident must never be found in a log."""
    return [r.juminhyo_code, r.name_kanji, r.name_kanji.replace("　", ""), r.name_kana,
            r.name_kana.replace("　", ""), r.birth_date, r.address, record_address]


def _update(seq: int, record: bytes) -> bytes:
    return encode_frame(M.UPDATE_NOTIFY, SENDER, CS, record, record_count=1, seq=seq, timestamp=TS)


@pytest_twisted.ensureDeferred
async def test_no_resident_value_reaches_any_log(tmp_path: Path) -> None:
    """The store fails while applying an update (its driver error quotes the row), and records
    are refused for a bad check digit, another municipality, a malformed item and a wrong
    type; afterwards no name, kana, birth date, address or 住民票コード sent appears in the
    daemon's JSON log, its stderr or the handshake log."""
    from twisted.internet import reactor

    wd = make_workdir(tmp_path / "wd", links=True)  # the CS routes to its prefecture
    first = start_daemon(wd)  # creates and migrates the CS node's store
    assert first.stop(signal.SIGTERM) == 0
    db = sqlite3.connect(wd / "jukinet-cs-172014.sqlite3")
    db.execute("CREATE TRIGGER fail_store BEFORE INSERT ON honnin_kakunin "
               f"WHEN NEW.name_kanji = '{DOOMED}' BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    db.commit()
    db.close()

    sent: list[str] = []
    doomed = _resident(11, DOOMED, "トドロキ　ライゾウ")
    bad_digit = _resident(12, "鬼塚　雅之介", "オニヅカ　マサノスケ")
    foreign = _resident(13, "醍醐　千代丸", "ダイゴ　チヨマル", municipality="131016")
    malformed = _resident(14, "柳生　十兵衛", "ヤギュウ　ジュウベエ")

    def record(r: Resident, municipality: str, serial: int) -> bytes:
        rec = encode_change(r, municipality, TENKYO, serial, TODAY)
        sent.extend(_values(r, f"{r.address}{fullwidth_digits(serial)}番"))
        return rec

    failing = record(doomed, "172014", 1)
    wrong_digit = bytearray(record(bad_digit, "172014", 2))
    wrong_digit[10] = ord("0") + (wrong_digit[10] - ord("0") + 1) % 10
    other = record(foreign, "131016", 3)
    broken = bytearray(record(malformed, "172014", 4))
    broken[293 + 4] = ord("X")  # a letter inside the birth date: a malformed item

    daemon = start_daemon(wd)
    try:
        ident = Identity.from_pki(wd / "pki", SENDER)
        conn = await open_connection(reactor, "127.0.0.1", daemon.ports[CS], ident, CS)
        # the store fails: nothing is acknowledged, the node drops the connection
        try:
            got = await conn.request(_update(1, failing), 1, timeout=10)
        except JukiError:
            got = []
        assert all(f.msg_type != MessageType.ACK for f in got)
        conn = await open_connection(reactor, "127.0.0.1", daemon.ports[CS], ident, CS)
        replies = await conn.request(_update(1, bytes(wrong_digit)) + _update(1, other)
                                     + _update(1, bytes(broken)), 3, timeout=10)
        codes = [(f.msg_type, int(f.body[:4])) for f in replies]
        assert codes == [(MessageType.ERROR, 5103), (MessageType.ERROR, 5104),
                         (MessageType.ERROR, 5108)], codes  # bad check digit, R2, bad item
        await conn.close()
    finally:
        assert daemon.stop(signal.SIGTERM) == 0
    logs = {name: (wd / name).read_text(encoding="utf-8", errors="replace")
            for name in ("logs/gateway.jsonl", "serve.stderr", "logs/handshakes.jsonl")}
    assert "incident" in logs["logs/gateway.jsonl"]  # the store's failure was logged, as a code
    for name, text in logs.items():
        leaked = sorted({v for v in sent if v and v in text})
        assert leaked == [], f"{name} holds {leaked}"
