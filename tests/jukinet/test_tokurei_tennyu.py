"""特例転入 over real mutual TLS across two prefectures (docs/moves.md): the old municipality's
existing system gives its CS the 転出証明書情報, the new one fetches it through CS → 都道府県 →
機構 → 都道府県 → CS; wrong and hostile requests get their own codes and leave provision
records at the old CS; the move then runs to its end (転入, 転入通知, 転出確定, 消除) and a
same-day 消除 from the old municipality never deletes the mover at 機構."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from sqlalchemy import Connection, select
from twisted.internet import defer

from juki_gateway.gateway.jukinet.node import JukinetNode, RemoteError
from juki_gateway.gateway.jukinet.services import (
    fetch_move_in_notices,
    register_tenshutsu_shomei,
    request_tenshutsu_shomei,
)
from juki_gateway.gateway.jukinet.topology import make_chain
from juki_gateway.protocols.jukinet.errors import BadCheckDigit
from juki_gateway.protocols.jukinet.layouts import (
    MOVE_IN_NOTICE,
    TENSHUTSU_SHOMEI,
    TENSHUTSU_SHOMEI_REQUEST,
    decode_body,
    encode_body,
)
from juki_gateway.protocols.jukinet.messages import JukinetMessage as M
from juki_gateway.registry_store import jukinet as st
from juki_gateway.registry_store.models import ProvisionRecord
from juki_gateway.simulators.resident_events import (
    TENKYO,
    TENNYU,
    TENSHUTSU,
    Resident,
    encode_change,
    new_resident,
)
from tests.jukinet.conftest import NOW, node_read, start_nodes, stop_nodes, wait_for

NAMES = ("kizon-172014", "cs-172014", "pref-17", "kiko", "pref-13", "cs-131016", "kizon-131016")
MOVE_DAY = dt.date(2026, 3, 28)


def _shomei(person: Resident, *, to: str = "172014", tokurei: bool = True) -> dict[str, Any]:
    return {
        "juminhyo_code": person.juminhyo_code, "kojin_bango": None,
        "kanji_name": person.name_kanji, "kana_name": person.name_kana,
        "birth_date": person.birth_date, "sex": person.sex,
        "householder_name": person.name_kanji, "relationship": "01000000",
        "old_lg_code": "131016", "old_address": "東京都千代田区丸の内一丁目１番",
        "new_lg_code": to, "new_address": "石川県金沢市広坂一丁目１番１号",
        "move_out_date": MOVE_DAY.strftime("%Y%m%d"), "notification_date": "20260320",
        "tokurei": "1" if tokurei else "0",
    }


def _notice(person: Resident, new: str, old: str, address: str, day: str) -> bytes:
    return encode_body(MOVE_IN_NOTICE, {
        "juminhyo_code": person.juminhyo_code, "new_lg_code": new, "old_lg_code": old,
        "kanji_name": person.name_kanji, "birth_date": person.birth_date,
        "new_address": address, "move_in_date": day})


def _provisions(kind: str) -> Callable[[Connection], list[tuple[str, str, str, str, str]]]:
    pr = ProvisionRecord.__table__
    return lambda conn: [(r.provider, r.recipient, r.subject, r.outcome, r.detail)
                         for r in conn.execute(select(pr).where(pr.c.kind == kind)
                                               .order_by(pr.c.id))]


@defer.inlineCallbacks
def _refused(d: defer.Deferred[Any]) -> Generator[Any, Any, int]:
    try:
        yield d
    except RemoteError as exc:
        return exc.remote_code
    raise AssertionError("answered, not refused")


@defer.inlineCallbacks
def _linked(reactor: Any, nodes: dict[str, JukinetNode]) -> Generator[Any, Any, None]:
    def up() -> bool:
        return all(link.proto is not None for n in nodes.values() for link in n.links.values())

    yield wait_for(reactor, up, 15, "every link")


@pytest_twisted.inlineCallbacks
def test_tokurei_tennyu_across_prefectures_and_the_move_to_its_end(
    tmp_path: Path,
) -> Generator[Any, Any, None]:
    """千代田区 → 金沢市 with the card: the 転出証明書情報 千代田's existing system gave its CS
    comes back to 金沢's existing system through both prefectures and 機構, byte for byte; a
    wrong 生年月日, an unknown code, a paper 転出, another 転出先 and a request for another
    municipality are refused with 5117/5117/5118/5119/5104, each provision-recorded where it
    was decided. The 転入 and 転入通知 follow; 千代田's existing system confirms the 転出 and
    sends a 消除 dated the day of the 転入: it removes the person at 千代田 and 東京 but is
    superseded at 機構, which keeps the 転入 current; the 転出証明書情報 is gone from 千代田's CS."""
    from twisted.internet import reactor

    nodes = yield start_nodes(reactor, make_chain(tmp_path, NOW, nodes=NAMES))
    try:
        yield _linked(reactor, nodes)
        new_kizon, old_kizon = nodes["kizon-172014"], nodes["kizon-131016"]
        old_cs, kiko = nodes["cs-131016"], nodes["kiko"]
        rng = random.Random(17)
        person, paper, elsewhere = (new_resident(rng, i, "131016") for i in (1, 2, 3))
        lived = encode_change(person, "131016", TENKYO, 1, dt.date(2026, 3, 1))
        yield old_kizon.originate("cs-131016", M.UPDATE_NOTIFY, [lived])
        yield register_tenshutsu_shomei(old_kizon, _shomei(person))
        yield register_tenshutsu_shomei(old_kizon, _shomei(paper, tokurei=False))
        yield register_tenshutsu_shomei(old_kizon, _shomei(elsewhere, to="162019"))
        kept = yield node_read(old_cs, lambda c: st.tenshutsu_shomei_of(c, person.juminhyo_code))
        assert kept == ("172014", True, encode_body(TENSHUTSU_SHOMEI, _shomei(person)))

        got = yield request_tenshutsu_shomei(new_kizon, person.juminhyo_code, person.birth_date,
                                             "131016", operator="OP0007", terminal="TERM007")
        assert got == decode_body(TENSHUTSU_SHOMEI, encode_body(TENSHUTSU_SHOMEI, _shomei(person)))

        wrong_birth = "19000101" if person.birth_date != "19000101" else "19000102"
        codes = []
        for code, born in ((person.juminhyo_code, wrong_birth), ("24727059608", "19800401"),
                           (paper.juminhyo_code, paper.birth_date),
                           (elsewhere.juminhyo_code, elsewhere.birth_date)):
            codes.append((yield _refused(request_tenshutsu_shomei(new_kizon, code, born,
                                                                  "131016"))))
        assert codes == [5117, 5117, 5118, 5119]
        # hostile: a request naming another 転入先 than the asker's own, at the CS and at a
        # prefecture; and one whose 転出元 is its 転入先
        body = encode_body(TENSHUTSU_SHOMEI_REQUEST, {
            "juminhyo_code": person.juminhyo_code, "birth_date": person.birth_date,
            "old_lg_code": "131016", "new_lg_code": "162019"})
        assert (yield _refused(new_kizon.request("cs-172014", M.TENSHUTSU_SHOMEI_REQUEST,
                                                 body, 1))) == 5104
        as_tokyo = encode_body(TENSHUTSU_SHOMEI_REQUEST, {
            "juminhyo_code": person.juminhyo_code, "birth_date": person.birth_date,
            "old_lg_code": "172014", "new_lg_code": "172014"})
        assert (yield _refused(old_cs.request("pref-13", M.TENSHUTSU_SHOMEI_REQUEST,
                                              as_tokyo, 1))) == 5108
        as_other = encode_body(TENSHUTSU_SHOMEI_REQUEST, {
            "juminhyo_code": person.juminhyo_code, "birth_date": person.birth_date,
            "old_lg_code": "131016", "new_lg_code": "172014"})
        assert (yield _refused(old_cs.request("pref-13", M.TENSHUTSU_SHOMEI_REQUEST,
                                              as_other, 1))) == 5104

        def five(conn: Connection) -> bool:
            return len(_provisions("tenshutsu_shomei")(conn)) == 5

        yield wait_for(reactor, lambda: node_read(old_cs, five), 10, "the old CS's records")
        assert (yield node_read(old_cs, _provisions("tenshutsu_shomei"))) == [
            ("cs-131016", "cs-172014", person.juminhyo_code, "provided", ""),
            ("cs-131016", "cs-172014", "-", "refused", "tenshutsu_shomei_unknown"),
            ("cs-131016", "cs-172014", "-", "refused", "tenshutsu_shomei_unknown"),
            ("cs-131016", "cs-172014", paper.juminhyo_code, "refused", "not_tokurei_tenshutsu"),
            ("cs-131016", "cs-172014", elsewhere.juminhyo_code, "refused",
             "tenshutsu_shomei_wrong_requester"),
        ]
        for name, peer in (("cs-172014", "kizon-172014"), ("pref-13", "cs-131016")):
            yield wait_for(reactor, lambda n=name: node_read(  # type: ignore[misc]
                nodes[n], lambda c: _provisions("tenshutsu_shomei")(c)), 10, "refusal records")
            refusals = yield node_read(nodes[name], _provisions("tenshutsu_shomei"))
            assert refusals and all(r[1] == peer and r[3] == "refused" for r in refusals)

        # the 転入 at 金沢 on the day of the 転出, and its 転入通知 to 千代田
        yield wait_for(reactor, lambda: node_read(kiko, st.current_records), 20, "the resident")
        tennyu = encode_change(person, "172014", TENNYU, 2, MOVE_DAY)
        notice = _notice(person, "172014", "131016", "石川県金沢市広坂一丁目１番１号",
                         MOVE_DAY.strftime("%Y%m%d"))
        yield new_kizon.originate("cs-172014", M.UPDATE_NOTIFY, [tennyu])
        yield new_kizon.originate("cs-172014", M.MOVE_IN_NOTICE, [notice])

        def delivered() -> defer.Deferred[Any]:
            return fetch_move_in_notices(old_kizon, "cs-131016", 0)

        yield wait_for(reactor, delivered, 20, "the notice at 千代田's existing system")
        assert (yield node_read(old_cs, lambda c: st.tenshutsu_shomei_of(
            c, person.juminhyo_code))) is None
        # 転出確定: the 消除, dated the 転出予定日 (the day of the 転入), then the acknowledgement
        shojo = encode_change(person, "131016", TENSHUTSU, 3, MOVE_DAY)
        yield old_kizon.originate("cs-131016", M.UPDATE_NOTIFY, [shojo])
        to_kiko = nodes["pref-13"].links["kiko"]
        yield wait_for(reactor, lambda: to_kiko.seq.acked == 2, 20, "the 消除 at 機構")
        assert (yield fetch_move_in_notices(old_kizon, "cs-131016", 1)) == []
        assert (yield node_read(kiko, st.current_records)) == {person.juminhyo_code: tennyu}
        assert (yield node_read(kiko, st.deleted_records)) == {}
        for name in ("cs-131016", "pref-13"):
            assert person.juminhyo_code in (yield node_read(nodes[name], st.deleted_records))
        updates = yield node_read(kiko, _provisions("update_notify"))
        assert [(r[0], r[3]) for r in updates if r[2] == person.juminhyo_code] == [
            ("pref-13", "provided"), ("pref-17", "provided"), ("pref-13", "superseded")]
    finally:
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_a_registration_for_another_municipality_is_refused(
    tmp_path: Path,
) -> Generator[Any, Any, None]:
    """The CS keeps 転出証明書情報 of its own municipality only (5104), and one whose 転出先 is
    its 転出元 is malformed (5108); neither is kept."""
    from twisted.internet import reactor

    nodes = yield start_nodes(reactor, make_chain(tmp_path, NOW, nodes=NAMES[:2]))
    try:
        yield _linked(reactor, nodes)
        kizon, cs = nodes["kizon-172014"], nodes["cs-172014"]
        person = new_resident(random.Random(3), 1, "172014")
        foreign = _shomei(person)  # 転出元 131016: not this CS's
        assert (yield _refused(register_tenshutsu_shomei(kizon, foreign))) == 5104
        same = {**_shomei(person), "old_lg_code": "172014"}
        assert (yield _refused(register_tenshutsu_shomei(kizon, same))) == 5108
        assert (yield node_read(cs, lambda c: st.tenshutsu_shomei_of(
            c, person.juminhyo_code))) is None
    finally:
        yield stop_nodes(nodes)


def test_the_layouts_round_trip() -> None:
    """A 転出証明書情報 with a 個人番号 and its request decode to what was encoded."""
    person = new_resident(random.Random(5), 1, "131016")
    values = {**_shomei(person), "kojin_bango": "123456789018"}
    assert decode_body(TENSHUTSU_SHOMEI, encode_body(TENSHUTSU_SHOMEI, values))["kojin_bango"] \
        == "123456789018"
    with pytest.raises(BadCheckDigit):
        encode_body(TENSHUTSU_SHOMEI, {**values, "kojin_bango": "123456789019"})


@pytest_twisted.inlineCallbacks
def test_a_prefecture_holds_move_in_notices_for_a_cs_it_has_no_link_to(
    tmp_path: Path,
) -> Generator[Any, Any, None]:
    """野々市市's CS (172031) has a link to 石川 but 石川 has none to it: a 転入通知 金沢 sends
    it travels 金沢 CS → 石川 → 機構 → 石川, which holds it (instead of refusing it and blocking
    its link from 機構) until 野々市's CS fetches it; acknowledging more than was handed out is
    refused (5111) and forgets nothing; a 転入通知 for 金沢 sent after it still arrives."""
    from twisted.internet import reactor

    names = ("kizon-172014", "cs-172014", "pref-17", "kiko", "cs-172031")
    nodes = yield start_nodes(reactor, make_chain(tmp_path, NOW, nodes=names))
    try:
        yield _linked(reactor, nodes)
        kizon, nonoichi = nodes["kizon-172014"], nodes["cs-172031"]
        person = new_resident(random.Random(7), 1, "172031")
        notice = _notice(person, "172014", "172031", "石川県金沢市広坂一丁目１番１号",
                         "20260401")
        yield kizon.originate("cs-172014", M.MOVE_IN_NOTICE, [notice])

        def fetched() -> defer.Deferred[Any]:
            return fetch_move_in_notices(nonoichi, "pref-17", 0)

        yield wait_for(reactor, fetched, 20, "the notice held at 石川 for 野々市")
        assert (yield _refused(fetch_move_in_notices(nonoichi, "pref-17", 2))) == 5111
        assert (yield fetched()) == [(1, notice)]
        assert (yield fetch_move_in_notices(nonoichi, "pref-17", 1)) == []
        # 機構's link to 石川 did not block: a notice from 野々市 to 金沢 reaches 金沢's CS
        back = _notice(person, "172031", "172014", "石川県野々市市三納一丁目１番地",
                       "20260402")
        yield nonoichi.originate("pref-17", M.MOVE_IN_NOTICE, [back])
        yield wait_for(reactor, lambda: fetch_move_in_notices(kizon, "cs-172014", 0), 20,
                       "the notice at 金沢's existing system")
        assert (yield fetch_move_in_notices(kizon, "cs-172014", 0)) == [(1, back)]
    finally:
        yield stop_nodes(nodes)
