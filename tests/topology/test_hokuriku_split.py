"""hokuriku split over three ``juki-gateway serve`` daemons sharing one working directory.

``init DIR --topology hokuriku --daemon kiko=kiko --daemon ishikawa=… --daemon toyama=…
--store-url kiko=<PostgreSQL>``, then three real ``serve`` subprocesses on loopback, each in its
own sub-directory with its own admin and metrics ports, linked to each other over real mTLS with
the one CA of ``DIR/pki``: every daemon's /health turns 200 with all its links up; updates from
a 富山県 and an 石川県 existing system reach 機構's PostgreSQL store through their own
prefecture; a 転入通知 from 富山市 reaches 能登町's existing system across all three daemons;
updates queued in the 富山 daemon survive its restart and reach 機構 once each.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import tomli_w
from sqlalchemy import create_engine, select
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from juki_gateway.cli import main
from juki_gateway.codecs.frame import encode_frame
from juki_gateway.codecs.messages import MessageType
from juki_gateway.gateway.topology import load_topology
from juki_gateway.protocols.jukinet.layouts import (
    MOVE_IN_DELIVERY,
    MOVE_IN_NOTICE,
    decode_bodies,
    encode_body,
)
from juki_gateway.protocols.jukinet.messages import JukinetMessage as M
from juki_gateway.protocols.jukinet.records import (
    TENKYO,
    TENNYU,
    TENSHUTSU,
    honnin_kakunin_record,
)
from juki_gateway.registry_store.models import DeletedResident, HonninKakunin, ProvisionRecord
from juki_gateway.simulators.client import Identity, open_connection, timestamp
from juki_gateway.simulators.kiko_numbers import KikoNumbers
from juki_gateway.simulators.population import Resident, build_population
from juki_gateway.workdir import read_toml
from tests.gateway_support import Daemon, free_port_base, rss_mb, start_daemon, wait_healthy

pytestmark = pytest.mark.timeout(300)

#: The split: 機構 alone (on PostgreSQL), 石川県 with its 19 CSs (and 金沢市's intermediate
#: server), 富山県 with its 15 CSs.
DAEMONS = {"kiko": "kiko", "ishikawa": "pref-17,cs-17*,ims-*", "toyama": "pref-16,cs-16*"}
#: Juki-net nodes and links each daemon hosts (links: its nodes' outbound ones)
EXPECTED = {"kiko": (1, 2), "ishikawa": (20, 58), "toyama": (16, 46)}


@dataclass
class Split:
    """The split working directory, its three running daemons and the senders' 更新順番号."""

    root: Path
    kiko_url: str
    daemons: dict[str, Daemon] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)

    def next_seq(self, code: str) -> int:
        self.seqs[code] = self.seqs.get(code, 0) + 1
        return self.seqs[code]

    def store(self, node: str) -> str:
        """The store URL of ``node``: 機構's PostgreSQL, else the hosting daemon's SQLite file."""
        if node == "kiko":
            return self.kiko_url
        daemon = "toyama" if node.split("-")[1].startswith("16") else "ishikawa"
        return f"sqlite:///{self.root / daemon / f'jukinet-{node}.sqlite3'}"


def init_argv(root: Path, kiko_url: str) -> list[str]:
    """``juki-gateway init`` of the split (:data:`DAEMONS`) on free ports, 機構 at ``kiko_url``."""
    base = free_port_base(load_topology("hokuriku").max_offset() + 2 * len(DAEMONS))
    argv = ["init", str(root), "--topology", "hokuriku", "--port-base", str(base),
            "--store-url", f"kiko={kiko_url}"]
    for name, selection in DAEMONS.items():
        argv += ["--daemon", f"{name}={selection}"]
    return argv


def _start(root: Path, name: str) -> Daemon:
    return start_daemon(root / name, timeout=90)


@pytest.fixture(scope="module")
def split(pg_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Split]:
    """``init`` of the split (the CLI, in-process), then the three daemons started."""
    root = tmp_path_factory.mktemp("split") / "hokuriku"
    assert main(init_argv(root, pg_database_url)) == 0
    for name in DAEMONS:
        path = root / name / "gateway.toml"
        cfg = read_toml(path)
        cfg["logs"]["flush_delay"] = 0.0
        cfg["timeouts"]["drain"] = 3.0
        path.write_text(tomli_w.dumps(cfg))
    s = Split(root, pg_database_url)
    try:
        for name in DAEMONS:
            s.daemons[name] = _start(root, name)
        yield s
    finally:
        codes = {}
        for name, daemon in s.daemons.items():
            try:
                codes[name] = daemon.stop(timeout=30)
            except subprocess.TimeoutExpired:
                codes[name] = -9
        assert codes == dict.fromkeys(s.daemons, 0)


def _rows(url: str, table: Any, *columns: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            t = table.__table__
            return [tuple(r) for r in conn.execute(select(*(t.c[c] for c in columns)))]
    finally:
        engine.dispose()


def _codes(url: str) -> set[str]:
    """The 住民票コード in one node's current file."""
    return {str(r[0]) for r in _rows(url, HonninKakunin, "juminhyo_code")}


async def _wait(what: str, check: Any, seconds: float = 30.0) -> Any:
    """Poll ``check`` (run in a thread) until it returns something true."""
    from twisted.internet import reactor

    deadline = time.monotonic() + seconds
    while True:
        got = await deferToThread(check)
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await deferLater(reactor, 0.1, lambda: None)


#: residents of the tests, each used by one test only
PEOPLE = build_population(6, seed=19, as_of=dt.date(2026, 4, 1)).residents[:6]


async def _register(s: Split, people: list[Resident]) -> None:
    """機構 generated their 個人番号 before the run (its PostgreSQL store)."""
    numbers = KikoNumbers(s.kiko_url)
    try:
        assert await deferToThread(numbers.register, people) == len(people)
    finally:
        numbers.close()


def _record(person: Resident, lg_code: str, reason: str, date: str) -> bytes:
    return honnin_kakunin_record(
        juminhyo_code=person.juminhyo_code, kanji_name=person.kanji_name,
        kana_name=person.kana_name, birth_date=person.birth_date, sex=person.sex,
        lg_code=lg_code, address=person.address, kojin_bango=person.kojin_bango,
        change_reason=reason, change_date=date)


async def _send(s: Split, code: str, msg_type: int, body: bytes) -> None:
    """One sequenced frame from municipality ``code``'s existing system to its CS, ACKed."""
    from twisted.internet import reactor

    daemon = s.daemons["toyama" if code.startswith("16") else "ishikawa"]
    seq = s.next_seq(code)
    conn = await open_connection(reactor, "127.0.0.1", daemon.ports[f"cs-{code}"],
                                 Identity.from_pki(s.root / "pki", f"kizon-{code}"), f"cs-{code}")
    try:
        [ack] = await conn.request(encode_frame(msg_type, f"kizon-{code}", f"cs-{code}", body,
                                                record_count=1, seq=seq,
                                                timestamp=timestamp(reactor)), 1)
    finally:
        await conn.close()
    assert ack.header.msg_type == MessageType.ACK and ack.header.seq == seq


async def _fetch_notices(s: Split, code: str, acked: int) -> list[tuple[int, bytes]]:
    """MOVE_IN_NOTICE_FETCH by ``code``'s existing system at its CS."""
    from twisted.internet import reactor

    conn = await open_connection(reactor, "127.0.0.1", s.daemons["ishikawa"].ports[f"cs-{code}"],
                                 Identity.from_pki(s.root / "pki", f"kizon-{code}"), f"cs-{code}")
    try:
        [answer] = await conn.request(encode_frame(
            M.MOVE_IN_NOTICE_FETCH, f"kizon-{code}", f"cs-{code}", request_no=1, seq=acked,
            timestamp=timestamp(reactor)), 1)
    finally:
        await conn.close()
    assert answer.header.msg_type == M.MOVE_IN_NOTICE_LIST
    return [(int(v["delivery_no"]), bytes(v["notice"]))
            for v in decode_bodies(MOVE_IN_DELIVERY, answer.body)]


def test_three_daemons_each_healthy_with_their_links_up_over_mtls(split: Split) -> None:
    """Each daemon hosts only its selection, on its own admin and metrics ports, and turns
    /health 200 with all its links up: the links crossing daemons are real mTLS connections
    (機構's handshake log shows both prefectures authenticated by the shared CA)."""
    figures = []
    for name, daemon in split.daemons.items():
        code, body = wait_healthy(daemon.metrics_url)
        assert code == 200, (name, body["reasons"])
        nodes = [k for k in body["checks"] if k.startswith("jukinet:")]
        links = [k for k in body["checks"] if k.startswith("link:")]
        assert (len(nodes), len(links)) == EXPECTED[name]
        assert {body["checks"][k] for k in (*nodes, *links)} == {"ok"}
        figures.append(f"{name} {rss_mb(daemon.proc.pid):.0f} MB")
    print("\nRSS with /health 200: " + ", ".join(figures))
    # its own admin and metrics ports each (the admin port listens where the intermediate
    # server is: in daemon ishikawa)
    own = {name: (read_toml(split.root / name / "gateway.toml")["admin"]["port"],
                  d.metrics_url) for name, d in split.daemons.items()}
    assert len({a for a, _m in own.values()}) == len({m for _a, m in own.values()}) == 3
    assert split.daemons["ishikawa"].ports["admin"] == own["ishikawa"][0]
    assert set(split.daemons["kiko"].ports) == {"kiko"}
    assert "ims-172014" in split.daemons["ishikawa"].ports
    inbound = {(r["peer_role"], r["peer_org"], r["validation_status"])
               for r in split.daemons["kiko"].log_records()
               if r["endpoint"] == "kiko" and r["established"]}
    assert {("prefecture", "16", "ok"), ("prefecture", "17", "ok")} <= inbound


@pytest_twisted.ensureDeferred
async def test_updates_from_both_prefectures_reach_kiko_on_postgresql(split: Split) -> None:
    """An update from 富山市's and one from 能登町's existing system, each ACKed by its CS in its
    prefecture's daemon, reach 機構's PostgreSQL store through their own prefecture only."""
    toyama, noto = PEOPLE[0:2]
    await _register(split, [toyama, noto])
    await _send(split, "162019", M.UPDATE_NOTIFY, _record(toyama, "162019", TENKYO, "20260401"))
    await _send(split, "174637", M.UPDATE_NOTIFY, _record(noto, "174637", TENKYO, "20260401"))
    codes = {toyama.juminhyo_code, noto.juminhyo_code}
    await _wait("both updates at 機構", lambda: codes <= _codes(split.kiko_url))
    pref16, pref17 = _codes(split.store("pref-16")), _codes(split.store("pref-17"))
    assert toyama.juminhyo_code in pref16 and noto.juminhyo_code not in pref16
    assert noto.juminhyo_code in pref17 and toyama.juminhyo_code not in pref17


@pytest_twisted.ensureDeferred
async def test_a_move_in_notice_crosses_all_three_daemons(split: Split) -> None:
    """A person moves from 能登町 (石川) to 富山市 (富山): 富山市's 転入通知 travels cs-162019 →
    pref-16 (daemon toyama) → 機構 (daemon kiko) → pref-17 → cs-174637 (daemon ishikawa), whose
    existing system fetches it (MOVE_IN_NOTICE_FETCH) and sends the 消除; 機構 keeps the person
    at 富山市, and the old CS holds them as 消除者."""
    person = PEOPLE[2]
    await _register(split, [person])
    code = person.juminhyo_code
    await _send(split, "174637", M.UPDATE_NOTIFY, _record(person, "174637", TENKYO, "20260301"))
    await _wait("the resident at 機構", lambda: code in _codes(split.kiko_url))
    notice = encode_body(MOVE_IN_NOTICE, {
        "juminhyo_code": code, "new_lg_code": "162019", "old_lg_code": "174637",
        "kanji_name": person.kanji_name, "birth_date": person.birth_date,
        "new_address": "富山県富山市新桜町７番３８号", "move_in_date": "20260403"})
    await _send(split, "162019", M.UPDATE_NOTIFY, _record(person, "162019", TENNYU, "20260403"))
    await _send(split, "162019", M.MOVE_IN_NOTICE, notice)

    async def delivered() -> list[tuple[int, bytes]]:
        return await _fetch_notices(split, "174637", 0)

    deadline = time.monotonic() + 30
    while not (got := await delivered()):
        assert time.monotonic() < deadline, "the 転入通知 never reached 能登町's existing system"
        await deferToThread(time.sleep, 0.1)
    assert got == [(1, notice)]
    await _send(split, "174637", M.UPDATE_NOTIFY,
                _record(person, "174637", TENSHUTSU, "20260402"))
    assert await _fetch_notices(split, "174637", 1) == []  # acknowledged: forgotten
    old_cs = split.store("cs-174637")
    await _wait("the 消除 at 能登町's CS",
                lambda: code in {r[0] for r in _rows(old_cs, DeletedResident, "juminhyo_code")})

    def kiko_outcomes() -> list[str]:
        return [str(r[1]) for r in _rows(split.kiko_url, ProvisionRecord, "subject", "outcome")
                if r[0] == code]

    # 機構 received the 転居, the 転入 and the 消除; the 消除 is older than the 転入: superseded
    outcomes = await _wait("the 消除 at 機構", lambda: len(kiko_outcomes()) >= 3 and kiko_outcomes())
    assert sorted(outcomes) == ["provided", "provided", "superseded"]
    [(lg_code,)] = [r[1:] for r in _rows(split.kiko_url, HonninKakunin, "juminhyo_code",
                                         "municipality_code") if r[0] == code]
    assert lg_code == "162019"


def _link(daemon: str, split: Split, action: str, name: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "juki_gateway", "link", action, name, "--config",
         str(split.root / daemon / "gateway.toml"), "--reason", "test", "--operator", "op-test"],
        capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr


@pytest_twisted.ensureDeferred
async def test_updates_queued_in_a_daemon_survive_its_restart(split: Split) -> None:
    """With 富山県's link to 機構 held, three 富山 municipalities' updates are ACKed and queue
    in pref-16's outbox; daemon toyama is stopped (SIGTERM, exit 0) and started again; once the
    link is released they reach 機構 once each, and the other daemons' links to it are back."""
    people = PEOPLE[3:6]
    senders = ("162027", "162043", "163210")  # 高岡市, 魚津市, 舟橋村
    await _register(split, people)
    await deferToThread(_link, "toyama", split, "hold", "pref-16->kiko")
    for code, person in zip(senders, people, strict=True):
        await _send(split, code, M.UPDATE_NOTIFY, _record(person, code, TENKYO, "20260405"))
    codes = {p.juminhyo_code for p in people}
    await _wait("the updates at pref-16", lambda: codes <= _codes(split.store("pref-16")))
    assert not codes & await deferToThread(_codes, split.kiko_url)
    toyama = split.daemons["toyama"]
    assert await deferToThread(toyama.stop, timeout=30) == 0
    split.daemons["toyama"] = toyama = await deferToThread(_start, split.root, "toyama")
    code, body = await deferToThread(wait_healthy, toyama.metrics_url, 5.0)
    assert code != 200 and "link pref-16->kiko: held by operator" in body["reasons"]
    assert not codes & await deferToThread(_codes, split.kiko_url)
    await deferToThread(_link, "toyama", split, "release", "pref-16->kiko")
    await _wait("the queued updates at 機構", lambda: codes <= _codes(split.kiko_url))
    received = [r[0] for r in await deferToThread(
        _rows, split.kiko_url, ProvisionRecord, "subject", "kind") if r[1] == "update_notify"]
    assert sorted(c for c in received if c in codes) == sorted(codes)  # each exactly once
    for name, daemon in split.daemons.items():
        status, health = await deferToThread(wait_healthy, daemon.metrics_url)
        assert status == 200, (name, health["reasons"])
