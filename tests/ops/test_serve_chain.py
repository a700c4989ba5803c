"""``juki-gateway serve`` hosting the Juki-net chain: CS → prefecture → 機構 in one process.

The chain test drives a real ``serve`` subprocess over mutual TLS as the existing system; the
health test runs two daemons in-process on the test reactor, one hosting only the CS and linking
to the other's prefecture endpoint on another port, as a deployment hosting one role does.
"""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import tomli_w
from sqlalchemy import create_engine, func, select
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from juki_gateway.codecs.frame import encode_frame
from juki_gateway.codecs.messages import MessageType
from juki_gateway.protocols.jukinet.messages import JukinetMessage
from juki_gateway.registry_store.models import HonninKakunin, InboxEntry
from juki_gateway.simulators.client import Identity, open_connection, timestamp
from juki_gateway.simulators.drivers import update_record
from juki_gateway.simulators.kiko_numbers import KikoNumbers
from juki_gateway.simulators.population import build_population
from juki_gateway.workdir import read_toml
from tests.gateway_support import Daemon, get_json, make_workdir, start_daemon

pytestmark = pytest.mark.timeout(120)


def _count(url: str, receiver: str, sender: str) -> tuple[int, int]:
    """(highest 更新順番号 ``receiver`` applied from ``sender``, residents in its current file)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            i = InboxEntry.__table__
            top = conn.execute(select(func.max(i.c.seq)).where(
                i.c.receiver == receiver, i.c.sender == sender)).scalar()
            people = conn.execute(select(func.count()).select_from(HonninKakunin.__table__)).scalar()
        return int(top or 0), int(people or 0)
    finally:
        engine.dispose()


def _has(url: str, code: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            t = HonninKakunin.__table__
            return conn.execute(select(t.c.juminhyo_code).where(
                t.c.juminhyo_code == code)).first() is not None
    finally:
        engine.dispose()


@pytest.fixture
def chain(tmp_path: Path) -> Any:
    """A serve process whose gateway.toml links cs-172014 → pref-17 → kiko on its own endpoints."""
    d = start_daemon(make_workdir(tmp_path, links=True), timeout=60)
    yield d
    assert d.stop() == 0


@pytest_twisted.ensureDeferred
async def test_update_from_kizon_reaches_kiko_through_one_serve_process(chain: Daemon) -> None:
    """Updates sent to serve's CS are acknowledged only once in the CS's store, and reach 機構's."""
    from twisted.internet import reactor

    stores = {n: f"sqlite:///{chain.workdir / f'jukinet-{n}.sqlite3'}"
              for n in ("cs-172014", "pref-17", "kiko")}
    people = build_population(30, seed=5, as_of=dt.date(2026, 4, 1)).residents[:30]
    # residents from before the run: 機構 generated their 個人番号 (its check refuses others)
    numbers = KikoNumbers(stores["kiko"])
    try:
        assert await deferToThread(numbers.register, people) == len(people)
    finally:
        numbers.close()
    conn = await open_connection(reactor, "127.0.0.1", chain.ports["cs-172014"],
                                 Identity.from_pki(chain.workdir / "pki", "kizon-172014"),
                                 "cs-172014")
    try:
        for seq, person in enumerate(people, start=1):
            frame = encode_frame(JukinetMessage.UPDATE_NOTIFY, "kizon-172014", "cs-172014",
                                 update_record(person, "tenkyo", "20260401"), record_count=1,
                                 seq=seq, timestamp=timestamp(reactor))
            [ack] = await conn.request(frame, 1)
            assert ack.header.msg_type == MessageType.ACK and ack.header.seq == seq
            # acknowledged means committed: the CS's own store holds it at this moment
            assert await deferToThread(_has, stores["cs-172014"], person.juminhyo_code)
            assert (await deferToThread(_count, stores["cs-172014"], "cs-172014",
                                        "kizon-172014"))[0] == seq
    finally:
        await conn.close()
    for _ in range(200):
        at_kiko = await deferToThread(_count, stores["kiko"], "kiko", "pref-17")
        if at_kiko[0] >= len(people):
            break
        await deferLater(reactor, 0.05, lambda: None)
    assert at_kiko == (len(people), len(people))
    assert await deferToThread(_count, stores["pref-17"], "pref-17", "cs-172014") == (30, 30)
    for person in people:
        assert await deferToThread(_has, stores["kiko"], person.juminhyo_code)
    links = [r for r in chain.log_records() if "->" in r["endpoint"]]
    established = {r["endpoint"] for r in links if r["established"]}
    assert {"cs-172014->pref-17", "pref-17->kiko"} <= established <= {
        "cs-172014->pref-17", "pref-17->kiko", "kiko->pref-17", "pref-17->cs-172014"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])



@pytest_twisted.ensureDeferred
async def test_health_reports_the_link_down_until_the_prefecture_is_reachable(tmp_path: Path) -> None:
    """A daemon hosting only the CS answers /health 500 "link … down" while the prefecture's host
    is unreachable, and 200 once a second daemon serves pref-17 on the linked port."""
    from twisted.internet import reactor

    from juki_gateway.gateway.config import load_config
    from juki_gateway.gateway.service import makeService
    from juki_gateway.registry_store.migrate import upgrade

    pref_port = _free_port()
    cs_root = make_workdir(tmp_path / "cs")
    topo = read_toml(cs_root / "gateway.toml")
    topo["endpoints"] = [e for e in topo["endpoints"] if e["name"] == "cs-172014"]
    juki = topo.pop("jukinet")
    topo["jukinet"] = {"host": True, "cs-172014": juki["cs-172014"]}
    topo["links"] = [{"name": "cs-172014->pref-17", "local": "cs-172014", "peer": "pref-17",
                      "peer_role": "prefecture", "peer_org": "17", "host": "127.0.0.1",
                      "port": pref_port, "backoff_initial": 0.1, "backoff_max": 0.2}]
    (cs_root / "gateway.toml").write_text(tomli_w.dumps(topo))
    pref_root = tmp_path / "pref"
    pref_root.mkdir()
    (pref_root / "logs").mkdir()
    topo2 = read_toml(cs_root / "gateway.toml")
    topo2["pki"] = {"dir": str(cs_root / "pki"), "ca": str(cs_root / "pki" / "ca.pem"),
                    "crl": str(cs_root / "pki" / "crl.pem")}
    full = read_toml(make_workdir(tmp_path / "template") / "gateway.toml")
    topo2["endpoints"] = [{**e, "cert": str(cs_root / e["cert"]), "key": str(cs_root / e["key"]),
                           "port": pref_port if e["name"] == "pref-17" else 0}
                          for e in full["endpoints"] if e["name"] in ("pref-17", "kiko")]
    topo2["links"] = []
    topo2["jukinet"] = {"host": True, "pref-17": juki["pref-17"], "kiko": juki["kiko"]}
    (pref_root / "gateway.toml").write_text(tomli_w.dumps(topo2))
    cs_config = load_config(cs_root / "gateway.toml")
    upgrade(cs_config.store.url)
    cs = makeService(cs_config, reactor)
    cs.startService()
    pref = None
    try:
        await cs.whenListening()
        health = f"http://127.0.0.1:{cs.metrics_listener.bound_port()}/health"
        await deferLater(reactor, 0.5, lambda: None)  # several connection attempts refused
        code, body = await deferToThread(get_json, health)
        assert code == 500 and body["reasons"] == ["link cs-172014->pref-17: down"]
        assert body["checks"]["jukinet:cs-172014"] == "ok"
        pref_config = load_config(pref_root / "gateway.toml")
        upgrade(pref_config.store.url)
        pref = makeService(pref_config, reactor)
        pref.startService()
        await pref.whenListening()
        for _ in range(100):
            code, body = await deferToThread(get_json, health)
            if code == 200:
                break
            await deferLater(reactor, 0.1, lambda: None)
        assert code == 200 and body["checks"]["link:cs-172014->pref-17"] == "ok"
    finally:
        if pref is not None:
            await pref.stopService()
        await cs.stopService()
