"""What the existing system (既存住基) asks of its CS over real mutual TLS, along 既存住基 → CS →
都道府県 → 機構: a 個人番号 (the CS asks on and records 機構's number), a 個人番号変更, unused
住民票コード from the CS's pool (refilled from 機構 when low, 5106 when it cannot give as many as
asked), and searches of the CS's own file (R3, provision records at the CS); requests for
another municipality are refused (5104)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from sqlalchemy import Connection, select
from twisted.internet import defer

from juki_gateway.gateway.jukinet.node import JukinetNode, RemoteError
from juki_gateway.gateway.jukinet.services import (
    draw_juminhyo_codes,
    request_kojin_bango,
    request_kojin_bango_change,
    search,
)
from juki_gateway.gateway.jukinet.topology import make_chain
from juki_gateway.protocols.jukinet.layouts import (
    JUMINHYO_CODE_DRAW_REQUEST,
    KOJIN_BANGO_REQUEST,
    encode_body,
)
from juki_gateway.protocols.jukinet.messages import JukinetMessage as M
from juki_gateway.protocols.jukinet.numbers import validate_juminhyo_code, validate_kojin_bango
from juki_gateway.protocols.jukinet.records import TENNYU, honnin_kakunin_record
from juki_gateway.protocols.jukinet.search import SearchCriteria
from juki_gateway.registry_store import jukinet as st
from juki_gateway.registry_store.models import KojinBango, ProvisionRecord
from juki_gateway.simulators.drivers import Endpoints, KizonJuki
from juki_gateway.simulators.population import Population
from juki_gateway.simulators.scenario import KizonJuki as KizonConfig
from juki_gateway.simulators.summary import RunSummary
from tests.jukinet.conftest import NOW, node_read, start_nodes, stop_nodes, wait_for

FOUR = ("kizon-172014", "cs-172014", "pref-17", "kiko")
CS = "cs-172014"
PERSON = {"kanji_name": "金沢　花子", "kana_name": "カナザワ　ハナコ", "birth_date": "19800401",
          "sex": "2", "address": "石川県金沢市広坂一丁目１番１号"}
CODE, OTHER = "24727059608", "24846016224"


def _numbers(conn: Connection) -> dict[str, tuple[str, str]]:
    """A node-store read: 個人番号 → (住民票コード, status)."""
    k = KojinBango.__table__
    return {r.kojin_bango: (r.juminhyo_code, r.status) for r in conn.execute(
        select(k.c.kojin_bango, k.c.juminhyo_code, k.c.status))}


def _provisions(kind: str) -> Callable[[Connection], list[tuple[str, str, str, str]]]:
    """A node-store read: (recipient, subject, outcome, detail) of one kind's provision records."""
    pr = ProvisionRecord.__table__
    return lambda conn: [(r.recipient, r.subject, r.outcome, r.detail) for r in conn.execute(
        select(pr).where(pr.c.kind == kind).order_by(pr.c.id))]


@defer.inlineCallbacks
def _linked(reactor: Any, nodes: dict[str, JukinetNode]) -> Generator[Any, Any, None]:
    kizon, cs = nodes["kizon-172014"], nodes[CS]
    yield wait_for(reactor, lambda: kizon.links[CS].proto and all(
        cs.links[p].proto for p in cs.links if p in nodes), 10, "links")


@pytest_twisted.inlineCallbacks
def test_the_existing_system_gets_kikos_number_through_its_cs(
    chain_cfgs: dict[str, Any],
) -> Generator[Any, Any, None]:
    """The existing system asks its CS for a 個人番号: it gets the number 機構 generated and
    recorded, the CS records the same, a repeat gets the same number; a 個人番号変更 asked the
    same way replaces it at 機構 and the CS, 機構's refusal of a number that is not the
    person's comes back with its code (5114), and a request naming another municipality is
    refused by the CS (5104) without reaching 機構."""
    from twisted.internet import reactor

    nodes = yield start_nodes(reactor, chain_cfgs, FOUR)
    try:
        kizon, cs, _pref, kiko = (nodes[n] for n in FOUR)
        yield _linked(reactor, nodes)
        number = yield request_kojin_bango(kizon, CODE)
        assert validate_kojin_bango(number) == number
        assert (yield request_kojin_bango(kizon, CODE)) == number
        for node in (kiko, cs):
            assert (yield node_read(node, _numbers)) == {number: (CODE, "active")}, node.node_id
        assert (yield node_read(kizon, _numbers)) == {}

        new = yield request_kojin_bango_change(kizon, CODE, number)
        assert new != number and validate_kojin_bango(new) == new
        for node in (kiko, cs):
            numbers = yield node_read(node, _numbers)
            assert numbers == {number: (CODE, "replaced"), new: (CODE, "active")}, node.node_id
        with pytest.raises(RemoteError) as not_his:
            yield request_kojin_bango_change(kizon, CODE, "123456789018")
        assert not_his.value.remote_code == 5114

        # 機構's records: generated, already generated, changed, refused (committed after the ERROR)
        yield wait_for(reactor, lambda: node_read(
            kiko, lambda c: len(_provisions("kojin_bango")(c)) == 4), 10, "機構's records")
        given_before = yield node_read(kiko, _provisions("kojin_bango"))
        body = encode_body(KOJIN_BANGO_REQUEST, {"juminhyo_code": OTHER, "lg_code": "131016"})
        with pytest.raises(RemoteError) as elsewhere:
            yield kizon.request(CS, M.KOJIN_BANGO_REQUEST, body, 1)
        assert elsewhere.value.remote_code == 5104
        assert (yield node_read(kiko, _provisions("kojin_bango"))) == given_before
    finally:
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_the_existing_system_draws_unused_codes_from_the_cs_pool(
    tmp_path: Path,
) -> Generator[Any, Any, None]:
    """Draws from an empty pool make the CS ask 機構 for codes first (and again whenever a draw
    would leave it at its low-water mark): every code handed out is valid, distinct, one 機構
    issued to the municipality, and gone from the CS's pool; a draw for another municipality is
    refused (5104)."""
    from twisted.internet import reactor

    cfgs = make_chain(tmp_path, NOW, pool_low_water=5)
    nodes = yield start_nodes(reactor, cfgs, FOUR)
    try:
        kizon, cs, _pref, kiko = (nodes[n] for n in FOUR)
        yield _linked(reactor, nodes)
        codes: list[str] = []
        for count in (3, 4, 1, 6):
            got = yield draw_juminhyo_codes(kizon, count)
            assert len(got) == count
            codes.extend(got)
        assert len(set(codes)) == len(codes) == 14
        assert all(validate_juminhyo_code(c) == c for c in codes)
        assert cs.pool is not None and len(cs.pool) > cs.pool.low_water - 6
        pooled = yield node_read(cs, st.pool_codes)
        assert not set(pooled) & set(codes) and len(pooled) == len(cs.pool)
        known = yield node_read(kiko, lambda c: all(st.juminhyo_code_known(c, x) for x in codes))
        assert known

        body = encode_body(JUMINHYO_CODE_DRAW_REQUEST, {"lg_code": "131016", "count": 1})
        with pytest.raises(RemoteError) as elsewhere:
            yield kizon.request(CS, M.JUMINHYO_CODE_DRAW_REQUEST, body, 1)
        assert elsewhere.value.remote_code == 5104
    finally:
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_a_draw_the_pool_cannot_give_is_refused(tmp_path: Path) -> Generator[Any, Any, None]:
    """With 機構 out of reach and the pool empty, a draw is refused with 5106 and takes
    nothing."""
    from twisted.internet import reactor

    cfgs = make_chain(tmp_path, NOW, nodes=("kizon-172014", CS))
    nodes = yield start_nodes(reactor, cfgs)
    try:
        kizon, cs = nodes["kizon-172014"], nodes[CS]
        yield wait_for(reactor, lambda: kizon.links[CS].proto, 10, "the link")
        with pytest.raises(RemoteError) as empty:
            yield draw_juminhyo_codes(kizon, 2)
        assert empty.value.remote_code == 5106
        assert cs.pool is not None and len(cs.pool) == 0
    finally:
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_the_existing_system_searches_its_cs_file(
    chain_cfgs: dict[str, Any],
) -> Generator[Any, Any, None]:
    """After a 転入 reaches the CS, the existing system's narrow search (氏名 and 生年月日) is
    answered from the CS's own file, a search by 氏名 alone is refused (5102), and each leaves a
    provision record at the CS naming the existing system."""
    from twisted.internet import reactor

    nodes = yield start_nodes(reactor, chain_cfgs, FOUR)
    try:
        kizon, cs = nodes["kizon-172014"], nodes[CS]
        yield _linked(reactor, nodes)
        yield kizon.originate(CS, M.UPDATE_NOTIFY, [honnin_kakunin_record(
            juminhyo_code=CODE, lg_code="172014", change_reason=TENNYU, change_date="20260401",
            seq=1, **PERSON)])
        yield wait_for(reactor, lambda: node_read(cs, st.current_records), 20, "the 転入 at the CS")
        found = yield search(kizon, CS, SearchCriteria(name="金沢　花子", birth_date="19800401"),
                             operator="OP0001", terminal="TERM001")
        assert found.total == 1 and found.records[0]["juminhyo_code"] == CODE
        with pytest.raises(RemoteError) as broad:
            yield search(kizon, CS, SearchCriteria(name="金沢　花子"))
        assert broad.value.remote_code == 5102
        yield wait_for(reactor, lambda: node_read(cs, lambda c: len(_provisions("search")(c)) == 2),
                       10, "the provision records")
        records = yield node_read(cs, _provisions("search"))
        assert records == [("kizon-172014", CODE, "provided", ""),
                           ("kizon-172014", "-", "refused", "search_too_broad")]
    finally:
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_the_kizon_simulator_draws_codes_and_asks_numbers_over_the_wire(
    tmp_path: Path,
) -> Generator[Any, Any, None]:
    """The existing-system simulator, a client with its own certificate, draws two codes from
    the CS, gets 機構's 個人番号 for one of them through the CS, and is refused (5102) a search
    too broad; every exchange is in its run summary."""
    from twisted.internet import reactor

    cfgs = make_chain(tmp_path, NOW)
    nodes = yield start_nodes(reactor, cfgs, (CS, "pref-17", "kiko"))
    try:
        cs, kiko = nodes[CS], nodes["kiko"]
        yield wait_for(reactor, lambda: all(link.proto for link in cs.links.values()), 10, "links")
        summary = RunSummary("kizon-requests")
        sim = KizonJuki(reactor, KizonConfig(), Population(seed=1, as_of=dt.date(2026, 4, 1)),
                        Endpoints("127.0.0.1", {CS: cs.bound_port}, tmp_path / "pki"), summary)
        codes = yield defer.Deferred.fromCoroutine(sim.draw_juminhyo_codes(2))
        assert len(set(codes)) == 2
        number = yield defer.Deferred.fromCoroutine(sim.request_kojin_bango(codes[0]))
        assert (yield node_read(kiko, _numbers)) == {number: (codes[0], "active")}
        with pytest.raises(RemoteError) as broad:
            yield defer.Deferred.fromCoroutine(sim.search(SearchCriteria(name="金沢　花子")))
        assert broad.value.remote_code == 5102
        assert summary.outcomes[("JUMINHYO_CODE_DRAW_REQUEST", "answered")] == 1
        assert summary.outcomes[("KOJIN_BANGO_REQUEST", "answered")] == 1
        assert summary.outcomes[("SEARCH_REQUEST", "refused")] == 1
        yield defer.Deferred.fromCoroutine(sim.close())
    finally:
        yield stop_nodes(nodes)
