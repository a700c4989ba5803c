"""Number changes over real mutual TLS along 既存住基 → CS → 都道府県 → 機構: a 住民票コード変更
retires the old code at every node and the 個人番号 follows the person; a change naming an old
code a node does not hold is refused (5116) and blocks the link at its number; a 個人番号変更
asked of 機構 replaces the person's number, after which 機構 takes only the new one."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest
import pytest_twisted
from sqlalchemy import Connection, select
from twisted.internet import defer

from juki_gateway.codecs.samples import sample_soufusaki
from juki_gateway.gateway.jukinet.node import JukinetNode, NodeConfig, RemoteError
from juki_gateway.gateway.jukinet.services import (
    request_kojin_bango,
    request_kojin_bango_change,
    search,
)
from juki_gateway.protocols.jukinet.layouts import SOUFUSAKI, encode_body
from juki_gateway.protocols.jukinet.messages import JukinetMessage as M
from juki_gateway.protocols.jukinet.numbers import validate_kojin_bango
from juki_gateway.protocols.jukinet.records import (
    JUMINHYO_CODE_CHANGE,
    KOJIN_BANGO_CHANGE,
    TENKYO,
    TENNYU,
    decode_honnin_kakunin,
    honnin_kakunin_record,
)
from juki_gateway.protocols.jukinet.search import SearchCriteria
from juki_gateway.registry_store import jukinet as st
from juki_gateway.registry_store.models import KojinBango, ProvisionRecord, Soufusaki
from juki_gateway.registry_store.residents import get_current
from juki_gateway.registry_store.retention import jst_date
from tests.jukinet.conftest import node_read, start_nodes, stop_nodes, wait_for

FOUR = ("kizon-172014", "cs-172014", "pref-17", "kiko")
PERSON = {"kanji_name": "金沢　花子", "kana_name": "カナザワ　ハナコ", "birth_date": "19800401",
          "sex": "2", "address": "石川県金沢市広坂一丁目１番１号"}
OLD, NEW, UNKNOWN = "24727059608", "24846016224", "25208017643"


def _record(code: str, reason: str, number: str | None, seq: int, **items: Any) -> bytes:
    return honnin_kakunin_record(juminhyo_code=code, lg_code="172014", change_reason=reason,
                                 change_date="20260401", kojin_bango=number, seq=seq,
                                 **{**PERSON, **items})


def _soufusaki(code: str, number: str, no: int) -> bytes:
    return encode_body(SOUFUSAKI, {**sample_soufusaki(1), "soufusaki_no": f"172014{no:06d}",
                                   "juminhyo_code": code, "kojin_bango": number,
                                   **{k: v for k, v in PERSON.items() if k != "kana_name"}})


def _owners(number: str) -> Callable[[Connection], list[tuple[str, str]]]:
    """A node-store read: (住民票コード, status) of a 個人番号's rows."""
    k = KojinBango.__table__
    return lambda conn: [(r.juminhyo_code, r.status) for r in conn.execute(
        select(k.c.juminhyo_code, k.c.status).where(k.c.kojin_bango == number))]


def _numbers(conn: Connection) -> dict[str, tuple[str, str, Any]]:
    """A node-store read: 個人番号 → (住民票コード, status, replaced_on)."""
    k = KojinBango.__table__
    return {r.kojin_bango: (r.juminhyo_code, r.status, r.replaced_on) for r in conn.execute(
        select(k.c.kojin_bango, k.c.juminhyo_code, k.c.status, k.c.replaced_on))}


def _provisions(kind: str, outcome: str) -> Callable[[Connection], list[str]]:
    pr = ProvisionRecord.__table__
    return lambda conn: [r.detail for r in conn.execute(
        select(pr.c.detail).where(pr.c.kind == kind, pr.c.outcome == outcome).order_by(pr.c.id))]


def _refusals(node: JukinetNode, code: str) -> float:
    return float(node.metrics.errors.labels(node.node_id, code)._value.get())


@pytest_twisted.inlineCallbacks
def test_a_code_change_moves_the_person_to_the_new_code_at_every_node(
    chain_cfgs: dict[str, NodeConfig],
) -> Generator[Any, Any, None]:
    """After 転入 under the old code, then (one frame) the 住民票コード変更 and a 転居 under the new
    code: at the CS, the prefecture and 機構 the new code is current, the old one a 消除者 whose
    versions are kept and whom a search no longer finds; at 機構 the 個人番号 belongs to the
    new code (asked for the new code's number, 機構 answers it; for the old code, it refuses),
    so a 送付先 with it under the new code is accepted and under the old one refused."""
    from twisted.internet import reactor

    nodes = yield start_nodes(reactor, chain_cfgs, FOUR)
    try:
        kizon, cs, pref, kiko = (nodes[n] for n in FOUR)
        yield wait_for(reactor, lambda: cs.links["pref-17"].proto and cs.links["kiko"].proto,
                       10, "links")
        number = yield request_kojin_bango(cs, OLD)
        yield kizon.originate("cs-172014", M.UPDATE_NOTIFY, [_record(OLD, TENNYU, number, 1)])
        yield wait_for(reactor, lambda: node_read(cs, st.current_records), 20, "the 転入 at the CS")
        yield kizon.originate("cs-172014", M.UPDATE_NOTIFY, [
            _record(NEW, JUMINHYO_CODE_CHANGE, number, 2, old_juminhyo_code=OLD),
            _record(NEW, TENKYO, number, 3)])
        yield wait_for(reactor, lambda: node_read(kiko, lambda c: list(st.current_records(c)) == [NEW]),
                       20, "the new code current at 機構")
        for node in (cs, pref, kiko):
            current = yield node_read(node, st.current_records)
            deleted = yield node_read(node, st.deleted_records)
            assert list(current) == [NEW] and list(deleted) == [OLD], node.node_id
            assert (yield node_read(node, lambda c: get_current(c, OLD))) is None
            kept = yield node_read(node, st.versions)
            assert len(kept[OLD]) == 2 and len(kept[NEW]) == 2, node.node_id  # … its history kept
            assert st.juminhyo_of(kept[OLD][-1]) == NEW  # its last version: the change itself
        assert (yield node_read(kiko, _owners(number))) == [(NEW, "active")]
        assert (yield node_read(cs, _owners(number))) == [(NEW, "active")]
        by_old = yield search(cs, "kiko", SearchCriteria(juminhyo_code=OLD))
        by_new = yield search(cs, "kiko", SearchCriteria(juminhyo_code=NEW))
        assert (by_old.total, by_new.total) == (0, 1)
        assert by_new.records[0]["kojin_bango"] == number
        assert (yield request_kojin_bango(cs, NEW)) == number  # the person's, not a new one
        with pytest.raises(RemoteError) as retired:  # the old code gets no number any more
            yield request_kojin_bango(cs, OLD)
        assert retired.value.remote_code == 5116

        # the card side: 機構's number is the new code's, no longer the old one's
        sf = Soufusaki.__table__

        def cards() -> Any:
            return node_read(kiko, lambda c: [tuple(r) for r in c.execute(
                select(sf.c.juminhyo_code, sf.c.kojin_bango))])

        yield kizon.originate("cs-172014", M.SOUFUSAKI_BATCH, [_soufusaki(NEW, number, 1)])
        yield wait_for(reactor, cards, 20, "the new code's 送付先 at 機構")
        yield kizon.originate("cs-172014", M.SOUFUSAKI_BATCH, [_soufusaki(OLD, number, 2)])
        to_kiko = cs.links["kiko"]
        yield wait_for(reactor, lambda: to_kiko.seq.blocked == 2, 20, "the old code's 送付先 refused")
        assert _refusals(kiko, "kojin_bango_not_authentic") >= 1
        assert (yield cards()) == [(NEW, number)]
    finally:
        yield stop_nodes(nodes)


@pytest.mark.parametrize("old", [UNKNOWN, None], ids=["old-code-not-current", "no-old-code"])
@pytest_twisted.inlineCallbacks
def test_a_code_change_the_cs_cannot_take_is_refused_and_blocks_the_link(
    chain_cfgs: dict[str, NodeConfig], old: str | None,
) -> Generator[Any, Any, None]:
    """A 住民票コード変更 whose 旧住民票コード the CS does not hold as current (decided in its
    store), or that names none (decided from the frame), is refused with 5116: the existing
    system's link blocks at that number, nothing of it is applied, and a refused provision
    record names the code."""
    from twisted.internet import reactor

    nodes = yield start_nodes(reactor, chain_cfgs, FOUR)
    try:
        kizon, cs, _pref, _kiko = (nodes[n] for n in FOUR)
        yield kizon.originate("cs-172014", M.UPDATE_NOTIFY, [_record(OLD, TENNYU, None, 1)])
        yield wait_for(reactor, lambda: node_read(cs, st.current_records), 20, "the 転入 at the CS")
        yield kizon.originate("cs-172014", M.UPDATE_NOTIFY, [
            _record(NEW, JUMINHYO_CODE_CHANGE, None, 2, old_juminhyo_code=old)])
        link = kizon.links["cs-172014"]
        yield wait_for(reactor, lambda: link.seq.blocked == 2, 20, "the change refused")
        assert _refusals(cs, "juminhyo_code_change_refused") == 1
        current = yield node_read(cs, st.current_records)
        assert list(current) == [OLD]
        assert (yield node_read(cs, st.deleted_records)) == {}
        yield wait_for(reactor, lambda: node_read(cs, _provisions("update_notify", "refused")), 10,
                       "the refusal recorded")
        details = yield node_read(cs, _provisions("update_notify", "refused"))
        assert details == ["juminhyo_code_change_refused (1 records from 更新順番号 2)"]
    finally:
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_a_kojin_bango_change_replaces_the_persons_number_at_kiko(
    chain_cfgs: dict[str, NodeConfig],
) -> Generator[Any, Any, None]:
    """The old number passes 機構's check until the CS asks (via the prefecture) for a change:
    機構 draws a new valid number, keeps the old one replaced with today's date, answers the
    same new number to a repeated request and refuses numbers that are not the person's (5114);
    the CS records the same; afterwards the 個人番号変更 update and a 送付先 with the new number
    are accepted, while an update and a 送付先 with the old number are refused (5114). Each
    answer and refusal is a provision record at 機構."""
    from twisted.internet import reactor

    nodes = yield start_nodes(reactor, chain_cfgs, FOUR)
    try:
        kizon, cs, pref, kiko = (nodes[n] for n in FOUR)
        yield wait_for(reactor, lambda: cs.links["pref-17"].proto and cs.links["kiko"].proto,
                       10, "links")
        old = yield request_kojin_bango(cs, OLD)
        other = yield request_kojin_bango(cs, NEW)
        yield kizon.originate("cs-172014", M.UPDATE_NOTIFY, [_record(OLD, TENNYU, old, 1)])
        yield wait_for(reactor, lambda: node_read(kiko, st.current_records), 20,
                       "the old number accepted at 機構")

        new = yield request_kojin_bango_change(cs, OLD, old)
        assert validate_kojin_bango(new) == new and new not in (old, other)
        again = yield request_kojin_bango_change(cs, OLD, old)  # as if the answer were lost
        assert again == new
        for number in (other, "123456789018"):  # another person's, and one never generated
            with pytest.raises(RemoteError) as refused:
                yield request_kojin_bango_change(cs, OLD, number)
            assert refused.value.remote_code == 5114
        today = jst_date(kiko.now())
        for node in (kiko, cs):
            numbers = yield node_read(node, _numbers)
            assert numbers == {old: (OLD, "replaced", today), new: (OLD, "active", None),
                               other: (NEW, "active", None)}, node.node_id
        pr = ProvisionRecord.__table__

        def kojin_bango_records() -> defer.Deferred[list[tuple[str, str, str]]]:
            return node_read(kiko, lambda c: [(r.subject, r.outcome, r.detail) for r in c.execute(
                select(pr).where(pr.c.kind == "kojin_bango").order_by(pr.c.id))])

        # a refusal's record is committed after its ERROR is sent
        yield wait_for(reactor, lambda: kojin_bango_records().addCallback(lambda g: len(g) >= 6),
                       10, "every request recorded")
        given = yield kojin_bango_records()
        assert given == [(OLD, "provided", "generated"), (NEW, "provided", "generated"),
                         (OLD, "provided", "changed"), (OLD, "provided", "already changed"),
                         (OLD, "refused", "kojin_bango_not_authentic"),
                         (OLD, "refused", "kojin_bango_not_authentic")]

        yield kizon.originate("cs-172014", M.UPDATE_NOTIFY,
                              [_record(OLD, KOJIN_BANGO_CHANGE, new, 2)])
        yield wait_for(reactor, lambda: node_read(
            kiko, lambda c: [r.kojin_bango for r in st.search_rows(c, juminhyo_code=OLD)] == [new]),
            20, "the new number at 機構")
        sf = Soufusaki.__table__

        def cards() -> Any:
            return node_read(kiko, lambda c: [tuple(r) for r in c.execute(
                select(sf.c.juminhyo_code, sf.c.kojin_bango))])

        yield kizon.originate("cs-172014", M.SOUFUSAKI_BATCH, [_soufusaki(OLD, new, 1)])
        yield wait_for(reactor, cards, 20, "the 送付先 with the new number kept")
        assert (yield cards()) == [(OLD, new)]

        # the old number is no longer the person's
        yield kizon.originate("cs-172014", M.SOUFUSAKI_BATCH, [_soufusaki(OLD, old, 2)])
        yield wait_for(reactor, lambda: cs.links["kiko"].seq.blocked == 2, 20,
                       "the 送付先 with the old number refused")
        yield kizon.originate("cs-172014", M.UPDATE_NOTIFY, [_record(OLD, TENKYO, old, 3)])
        yield wait_for(reactor, lambda: pref.links["kiko"].seq.blocked == 3, 20,
                       "the update with the old number refused")
        assert _refusals(kiko, "kojin_bango_not_authentic") == 4  # 2 requests, 2 frames
        current = yield node_read(kiko, st.current_records)
        assert decode_honnin_kakunin(current[OLD])["kojin_bango"] == new
    finally:
        yield stop_nodes(nodes)
