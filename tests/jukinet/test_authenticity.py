"""機構's authenticity checks (III(2)2 リスク3, III(3)2) over real links: a 個人番号 機構 did not
generate for that 住民票コード is refused (5114), a 送付先 whose 基本4情報 differ from 機構's
本人確認情報 is refused (5115), both recorded; the card gets 機構's own 個人番号."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest_twisted
from sqlalchemy import select

from juki_gateway.codecs.samples import sample_soufusaki
from juki_gateway.gateway.jukinet.node import JukinetNode, NodeConfig
from juki_gateway.gateway.jukinet.services import request_kojin_bango
from juki_gateway.protocols.jukinet.layouts import SOUFUSAKI, encode_body
from juki_gateway.protocols.jukinet.messages import JukinetMessage as M
from juki_gateway.protocols.jukinet.records import TENKYO, honnin_kakunin_record
from juki_gateway.registry_store import jukinet as st
from juki_gateway.registry_store.models import ProvisionRecord, Soufusaki
from tests.jukinet.conftest import node_read, start_nodes, stop_nodes, wait_for

FOUR = ("kizon-172014", "cs-172014", "pref-17", "kiko")
PERSON = {"kanji_name": "金沢　花子", "kana_name": "カナザワ　ハナコ", "birth_date": "19800401",
          "sex": "2", "address": "石川県金沢市広坂一丁目１番１号"}


def _update(code: str, kojin_bango: str | None, seq: int) -> bytes:
    return honnin_kakunin_record(juminhyo_code=code, lg_code="172014", change_reason=TENKYO,
                                 change_date="20260401", kojin_bango=kojin_bango, seq=seq,
                                 **PERSON)


def _soufusaki(code: str, number: str, no: int, **changes: str) -> bytes:
    return encode_body(SOUFUSAKI, {**sample_soufusaki(1), "soufusaki_no": f"172014{no:06d}",
                                   "juminhyo_code": code, "kojin_bango": number,
                                   **{k: v for k, v in PERSON.items() if k != "kana_name"},
                                   **changes})


def _refusals(node: JukinetNode, code: str) -> float:
    return float(node.metrics.errors.labels(node.node_id, code)._value.get())


def _refused_provisions(kind: str) -> Any:
    pr = ProvisionRecord.__table__
    return lambda conn: [r.detail for r in conn.execute(
        select(pr).where(pr.c.kind == kind, pr.c.outcome == "refused").order_by(pr.c.id))]


@pytest_twisted.inlineCallbacks
def test_kiko_refuses_numbers_it_did_not_generate_and_checks_soufusaki(
    chain_cfgs: dict[str, NodeConfig],
) -> Generator[Any, Any, None]:
    """A number obtained from 機構 passes; a well-formed number 機構 never gave that person is
    refused at 機構 and blocks the prefecture's link at that record; a 送付先 with another 住所
    is refused; a good 送付先 is kept with 機構's number."""
    from twisted.internet import reactor

    nodes = yield start_nodes(reactor, chain_cfgs, FOUR)
    try:
        kizon, cs, pref, kiko = (nodes[n] for n in FOUR)
        yield wait_for(reactor, lambda: cs.links["pref-17"].proto and cs.links["kiko"].proto,
                       10, "links")
        good_code, other_code = "24727059608", "24846016224"
        number = yield request_kojin_bango(cs, good_code)
        other_number = yield request_kojin_bango(cs, other_code)
        yield kizon.originate("cs-172014", M.UPDATE_NOTIFY, [_update(good_code, number, 1)])

        def at_kiko() -> Any:
            return node_read(kiko, lambda c: st.count_versions(c) == 1)

        yield wait_for(reactor, at_kiko, 20, "the authentic record at 機構")

        # 送付先: 住所 differs → 5115; the CS's link to 機構 blocks at it
        yield kizon.originate("cs-172014", M.SOUFUSAKI_BATCH,
                              [_soufusaki(good_code, number, 1, address="石川県金沢市別町１番")])
        link = cs.links["kiko"]
        yield wait_for(reactor, lambda: _refusals(kiko, "soufusaki_mismatch") >= 1 and
                       link.seq.blocked == 1, 20, "the mismatching 送付先 refused")
        yield wait_for(reactor, lambda: node_read(kiko, _refused_provisions("soufusaki")), 10,
                       "the refusal recorded")
        details = yield node_read(kiko, _refused_provisions("soufusaki"))
        assert details and details[0].startswith("soufusaki_mismatch")

        # another person's (genuine) number on this person's record → 5114 at 機構
        yield kizon.originate("cs-172014", M.UPDATE_NOTIFY, [_update(good_code, other_number, 2)])
        to_kiko = pref.links["kiko"]
        yield wait_for(reactor, lambda: _refusals(kiko, "kojin_bango_not_authentic") >= 1 and
                       to_kiko.seq.blocked == 2, 20, "the forged number refused")
        current = yield node_read(kiko, st.current_records)
        assert list(current) == [good_code]
        versions = yield node_read(kiko, st.count_versions)
        assert versions == 1  # the refused version was not applied
        yield wait_for(reactor, lambda: node_read(kiko, _refused_provisions("update_notify")), 10,
                       "the refusal recorded")
        details = yield node_read(kiko, _refused_provisions("update_notify"))
        assert details and details[0].startswith("kojin_bango_not_authentic")
    finally:
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_a_matching_soufusaki_is_kept_for_the_card(
    chain_cfgs: dict[str, NodeConfig],
) -> Generator[Any, Any, None]:
    """A 送付先 that matches 機構's 本人確認情報 is kept at 機構 with the number from 機構's own
    record, and recorded as provided."""
    from twisted.internet import reactor

    nodes = yield start_nodes(reactor, chain_cfgs, FOUR)
    try:
        kizon, cs, _pref, kiko = (nodes[n] for n in FOUR)
        yield wait_for(reactor, lambda: cs.links["pref-17"].proto and cs.links["kiko"].proto,
                       10, "links")
        code = "24727059608"
        number = yield request_kojin_bango(cs, code)
        yield kizon.originate("cs-172014", M.UPDATE_NOTIFY, [_update(code, number, 1)])
        # (the 送付先 goes CS → 機構 directly, the update through the prefecture: 機構 must
        # have the 本人確認情報 first, or it refuses the 送付先)
        yield wait_for(reactor, lambda: node_read(kiko, lambda c: st.count_versions(c) == 1),
                       20, "the update at 機構")
        yield kizon.originate("cs-172014", M.SOUFUSAKI_BATCH, [_soufusaki(code, number, 1)])

        def kept() -> Any:
            sf = Soufusaki.__table__
            return node_read(kiko, lambda c: c.execute(select(sf.c.kojin_bango)).scalars().all())

        yield wait_for(reactor, kept, 20, "送付先 at 機構")
        assert (yield kept()) == [number]
        pr = ProvisionRecord.__table__
        given = yield node_read(kiko, lambda c: c.execute(select(pr.c.outcome).where(
            pr.c.kind == "soufusaki")).scalars().all())
        assert given == ["provided"]
    finally:
        yield stop_nodes(nodes)

