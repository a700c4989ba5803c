"""One ``juki-gateway serve`` hosting all of hokuriku: 機構, 石川県, 富山県 and 34 municipal CSs.

A real ``serve`` subprocess on loopback (ephemeral ports) with the working directory ``init
--topology hokuriku`` made: every node's link up, updates from a 富山県 and an 石川県 existing
system reaching 機構 through their own prefecture only, and each prefecture refusing the other's
CSs (R2) in the TLS handshake.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
import tomli_w
from sqlalchemy import create_engine, select
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from juki_gateway.codecs.frame import encode_frame
from juki_gateway.codecs.messages import MessageType
from juki_gateway.gateway.initdir import init_workdir
from juki_gateway.gateway.topology import load_topology
from juki_gateway.protocols.jukinet.messages import JukinetMessage
from juki_gateway.protocols.jukinet.records import TENKYO, honnin_kakunin_record
from juki_gateway.registry_store.models import HonninKakunin
from juki_gateway.simulators.client import Identity, open_connection, timestamp
from juki_gateway.simulators.kiko_numbers import KikoNumbers
from juki_gateway.simulators.population import Resident, build_population
from juki_gateway.workdir import read_toml
from tests.gateway_support import Daemon, attempt, decode_frames, start_daemon, wait_healthy

pytestmark = pytest.mark.timeout(180)

#: 富山市 (富山県) and 能登町 (石川県): one existing system of each prefecture sends an update
SENDERS = ("162019", "174637")



def _codes(url: str) -> set[str]:
    """The 住民票コード in one node's current file."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            t = HonninKakunin.__table__
            return {str(c) for c in conn.execute(select(t.c.juminhyo_code)).scalars()}
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def hokuriku(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """``init --topology hokuriku``, its ports made ephemeral, then one ``serve`` for all of it
    (the links connect to whatever port their peer endpoint bound)."""
    root = tmp_path_factory.mktemp("hokuriku")
    init_workdir(root, dt.datetime.now(dt.UTC), port_base=7100, topology=load_topology("hokuriku"))
    topo = read_toml(root / "gateway.toml")
    for table in (*topo["endpoints"], *topo["links"], topo["metrics"], topo["admin"]):
        table["port"] = 0
    topo["logs"]["flush_delay"] = 0.0
    topo["timeouts"]["drain"] = 3.0
    (root / "gateway.toml").write_text(tomli_w.dumps(topo))
    daemon = start_daemon(root, timeout=90)
    try:
        yield daemon
    finally:
        assert daemon.stop(timeout=30) == 0


def test_one_daemon_hosts_every_node_with_every_link_up(hokuriku: Daemon) -> None:
    """serve listens on all 38 endpoints (37 Juki-net nodes and the intermediate server) and
    /health turns 200 with every node's store and all 106 links up."""
    assert len([n for n in hokuriku.ports if n != "admin"]) == 38
    code, body = wait_healthy(hokuriku.metrics_url)
    assert code == 200, body["reasons"]
    checks = body["checks"]
    nodes = [k for k in checks if k.startswith("jukinet:")]
    links = [k for k in checks if k.startswith("link:")]
    assert len(nodes) == 37 and len(links) == 106
    assert {checks[k] for k in (*nodes, *links)} == {"ok"}
    assert {"link:cs-162019->pref-16", "link:cs-174637->pref-17", "link:pref-16->kiko",
            "link:kiko->pref-17", "link:pref-17->cs-174637", "link:cs-162019->kiko"} <= set(links)


def _update(person: Resident, lg_code: str, seq: int, reactor: Any) -> bytes:
    body = honnin_kakunin_record(
        juminhyo_code=person.juminhyo_code, kanji_name=person.kanji_name,
        kana_name=person.kana_name, birth_date=person.birth_date, sex=person.sex,
        lg_code=lg_code, address=person.address, kojin_bango=person.kojin_bango,
        change_reason=TENKYO, change_date="20260401")
    return encode_frame(JukinetMessage.UPDATE_NOTIFY, f"kizon-{lg_code}", f"cs-{lg_code}", body,
                        record_count=1, seq=seq, timestamp=timestamp(reactor))


@pytest_twisted.ensureDeferred
async def test_updates_from_both_prefectures_reach_kiko_through_their_own_prefecture(
        hokuriku: Daemon) -> None:
    """An update from 富山市's existing system and one from 能登町's are acknowledged by their
    CS and reach 機構, each through its own prefecture's store and not the other's."""
    from twisted.internet import reactor

    assert (await deferToThread(wait_healthy, hokuriku.metrics_url))[0] == 200
    store = {n: f"sqlite:///{hokuriku.workdir / f'jukinet-{n}.sqlite3'}"
             for n in ("kiko", "pref-16", "pref-17", *(f"cs-{c}" for c in SENDERS))}
    people = dict(zip(SENDERS, build_population(2, seed=19, as_of=dt.date(2026, 4, 1)).residents[:2],
                      strict=True))
    numbers = KikoNumbers(store["kiko"])  # 機構 generated their 個人番号 before the run
    try:
        assert await deferToThread(numbers.register, list(people.values())) == 2
    finally:
        numbers.close()
    for code, person in people.items():
        conn = await open_connection(reactor, "127.0.0.1", hokuriku.ports[f"cs-{code}"],
                                     Identity.from_pki(hokuriku.workdir / "pki", f"kizon-{code}"),
                                     f"cs-{code}")
        try:
            [ack] = await conn.request(_update(person, code, 1, reactor), 1)
        finally:
            await conn.close()
        assert ack.header.msg_type == MessageType.ACK and ack.header.seq == 1
        assert person.juminhyo_code in await deferToThread(_codes, store[f"cs-{code}"])
    toyama, noto = people["162019"].juminhyo_code, people["174637"].juminhyo_code
    for _ in range(200):
        at_kiko = await deferToThread(_codes, store["kiko"])
        if {toyama, noto} <= at_kiko:
            break
        await deferLater(reactor, 0.05, lambda: None)
    assert {toyama, noto} <= at_kiko
    pref16, pref17 = (await deferToThread(_codes, store["pref-16"]),
                      await deferToThread(_codes, store["pref-17"]))
    assert toyama in pref16 and noto not in pref16
    assert noto in pref17 and toyama not in pref17


@pytest.mark.parametrize(("endpoint", "client", "reason"), [
    ("pref-17", "cs-162019", "org_not_allowed"),   # 富山市's CS at 石川県's server
    ("pref-16", "cs-174637", "org_not_allowed"),   # 能登町's CS at 富山県's server
    ("cs-174637", "kizon-162019", "org_not_allowed"),  # another municipality's existing system
    ("pref-16", "kizon-162019", "role_not_allowed"),   # an existing system at a prefecture
    ("pref-16", "cs-163210", "ok"),                # 舟橋村's CS at its own prefecture
    ("pref-17", "cs-172031", "ok"),                # 小松市's CS at its own prefecture
])
def test_each_prefecture_accepts_only_its_own_csses(hokuriku: Daemon, endpoint: str, client: str,
                                                    reason: str) -> None:
    """R2 across the two prefectures: a CS of one prefecture is refused by the other's server in
    the handshake (no data, a log line with the reason); its own prefecture answers PING."""
    mark = hokuriku.log_mark()
    got = attempt(hokuriku.ports[endpoint], hokuriku.workdir / "pki", client, endpoint)
    [rec] = hokuriku.records_for_peer(got.peer_addr, since=mark)
    assert rec["validation_status"] == reason and rec["endpoint"] == endpoint
    if reason == "ok":
        assert got.error is None
        assert [f.msg_type for f in decode_frames(got.data)] == [MessageType.PONG]
    else:
        assert got.data == b"" and got.error is not None and rec["established"] is False
