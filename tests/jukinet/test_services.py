"""Juki-net requests and routed messages over real mutual TLS: search, numbers, 転入通知, 送付先,
refusals, consistency check and metrics."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from prometheus_client import generate_latest
from sqlalchemy import select
from twisted.internet import defer

from juki_gateway.codecs.samples import sample_soufusaki
from juki_gateway.gateway.jukinet.node import NodeConfig, RemoteError
from juki_gateway.gateway.jukinet.services import (
    consistency_check,
    request_kojin_bango,
    request_pool,
    search,
    take_juminhyo_code,
)
from juki_gateway.gateway.jukinet.topology import make_chain
from juki_gateway.gateway.metrics import metric_samples
from juki_gateway.protocols.jukinet.consistency import DiffKind
from juki_gateway.protocols.jukinet.layouts import (
    HONNIN_KAKUNIN,
    MOVE_IN_NOTICE,
    SOUFUSAKI,
    encode_body,
)
from juki_gateway.protocols.jukinet.messages import JukinetMessage as M
from juki_gateway.protocols.jukinet.numbers import (
    make_juminhyo_code,
    validate_juminhyo_code,
    validate_kojin_bango,
)
from juki_gateway.protocols.jukinet.records import decode_honnin_kakunin, honnin_kakunin_record
from juki_gateway.protocols.jukinet.search import SearchCriteria, seion_kana
from juki_gateway.registry_store import jukinet as st
from juki_gateway.registry_store.models import KojinBango, ProvisionRecord, Soufusaki
from juki_gateway.simulators.resident_events import (
    TENKYO,
    TENNYU,
    TENSHUTSU,
    Resident,
    encode_change,
    new_resident,
    timeline,
)
from tests.jukinet.conftest import NOW, node_read, start_nodes, stop_nodes, wait_for

FOUR = ("kizon-172014", "cs-172014", "pref-17", "kiko")


def _rows(table: Any) -> Any:
    return lambda conn: [dict(r._mapping) for r in conn.execute(select(table))]


def _provisions(kind: str) -> Any:
    """A node-store read: its provision records of ``kind``, oldest first."""
    pr = ProvisionRecord.__table__
    return lambda conn: [dict(r._mapping) for r in conn.execute(
        select(pr).where(pr.c.kind == kind).order_by(pr.c.id))]


@defer.inlineCallbacks
def _chain_with_residents(reactor: Any, cfgs: dict[str, NodeConfig], n: int) -> Generator[Any, Any, Any]:
    nodes = yield start_nodes(reactor, cfgs, FOUR)
    records = list(timeline(random.Random(11), "172014", n, residents=n))
    yield nodes["kizon-172014"].originate("cs-172014", M.UPDATE_NOTIFY, records)

    def arrived() -> defer.Deferred[bool]:
        return node_read(nodes["kiko"], lambda c: st.count_versions(c) >= n)

    yield wait_for(reactor, arrived, 30, "residents at 機構")
    return nodes


@pytest_twisted.inlineCallbacks
def test_search_rule_r3_refusals_matches_and_provision_records(
    chain_cfgs: dict[str, NodeConfig],
) -> Generator[Any, Any, None]:
    """A too-broad search is refused with 5102, a narrow one finds by kana and 外字 substitute;
    both leave provision records."""
    from twisted.internet import reactor

    nodes = yield _chain_with_residents(reactor, chain_cfgs, 40)
    try:
        cs = nodes["cs-172014"]
        current = yield node_read(nodes["pref-17"], st.current_records)
        target = next(v for v in map(decode_honnin_kakunin, current.values())
                      if "髙" in str(v["kanji_name"]))
        with pytest.raises(RemoteError) as exc:
            yield search(cs, "pref-17", SearchCriteria(name=str(target["kanji_name"]), sex="1"))
        assert exc.value.remote_code == 5102
        kana = seion_kana(str(target["kana_name"]))  # hiragana, no voicing marks, no spaces
        assert kana.startswith("たかはし")
        by_kana = yield search(cs, "pref-17", SearchCriteria(
            name=kana, birth_date=str(target["birth_date"])))
        assert any(r["juminhyo_code"] == target["juminhyo_code"] for r in by_kana.records)
        substituted = str(target["kanji_name"]).replace("髙", "高")
        found = yield search(cs, "kiko", SearchCriteria(name=substituted,
                                                          birth_date=str(target["birth_date"])))
        assert [r["juminhyo_code"] for r in found.records] == [target["juminhyo_code"]]
        assert (found.total, found.truncated) == (1, False)
        by_code = yield search(cs, "pref-17", SearchCriteria(juminhyo_code=str(target["juminhyo_code"])),
                               operator="OP0042", terminal="TERM007")
        assert len(by_code.records) == 1 and by_code.total == 1
        records = yield node_read(nodes["pref-17"], _provisions("search"))
        outcomes = sorted(r["outcome"] for r in records)
        assert outcomes.count("refused") == 1 and outcomes.count("provided") >= 2
        # who searched, from where: kept with the record of what they were given (R5)
        assert (records[-1]["operator_id"], records[-1]["terminal_id"],
                records[-1]["subject"]) == ("OP0042", "TERM007", target["juminhyo_code"])
        assert all(r["recipient"] == "cs-172014" for r in records)
    finally:
        yield stop_nodes(nodes)


#: one name shared by residents of 金沢市 and of 津幡町 (河北郡), for the search-limit test
SHARED_NAME, SHARED_KANA = "金沢\u3000花子", "カナザワ\u3000ハナコ"


def _namesakes(in_kanazawa: int) -> list[bytes]:
    """``in_kanazawa`` residents named SHARED_NAME in 金沢市, one in 河北郡津幡町, one of another
    name in 金沢市: their 転入 records, in a shuffled 住民票コード order."""
    people = [Resident(make_juminhyo_code(f"1720{i:06d}"), SHARED_NAME, SHARED_KANA,
                       f"19{60 + i:02d}0401", "2", "石川県金沢市広坂１丁目")
              for i in range(in_kanazawa)]
    people.append(Resident(make_juminhyo_code("1720000900"), SHARED_NAME, SHARED_KANA, "19700401",
                           "2", "石川県河北郡津幡町加賀爪"))
    people.append(Resident(make_juminhyo_code("1720000901"), "鈴木\u3000次郎", "スズキ\u3000ジロウ",
                           "19700401", "1", "石川県金沢市広坂１丁目"))
    random.Random(5).shuffle(people)
    return [encode_change(r, "172014", TENNYU, n, dt.date(2026, 4, 1))
            for n, r in enumerate(people, 1)]


@pytest_twisted.inlineCallbacks
def test_search_cut_at_the_limit_says_truncated_and_total(
    chain_cfgs: dict[str, NodeConfig],
) -> Generator[Any, Any, None]:
    """More matches than the prefecture's search_limit: its answer carries the matches with the
    smallest 住民票コード, truncated = 1 and the total; 機構 (default limit) answers them all; the
    address matches by 市区町村 (金沢市 ≠ 津幡町); a refused 生年月日+住所 search and the cut answer
    both leave provision records."""
    from twisted.internet import reactor

    chain_cfgs = {**chain_cfgs, "pref-17": replace(chain_cfgs["pref-17"], search_limit=3)}
    nodes = yield start_nodes(reactor, chain_cfgs, FOUR)
    try:
        records = _namesakes(7)
        yield nodes["kizon-172014"].originate("cs-172014", M.UPDATE_NOTIFY, records)
        yield wait_for(reactor, lambda: node_read(nodes["kiko"], lambda c: st.count_versions(c) >= 9),
                       30, "residents at 機構")
        cs = nodes["cs-172014"]
        in_kanazawa = sorted(make_juminhyo_code(f"1720{i:06d}") for i in range(7))
        cut = yield search(cs, "pref-17", SearchCriteria(name="かなざわはなこ", address="金沢市"))
        assert (cut.total, cut.truncated) == (7, True)
        assert [r["juminhyo_code"] for r in cut.records] == in_kanazawa[:3]
        whole = yield search(cs, "kiko", SearchCriteria(name=SHARED_NAME, address="石川県金沢市"))
        assert (whole.total, whole.truncated) == (7, False)
        assert [r["juminhyo_code"] for r in whole.records] == in_kanazawa
        town = yield search(cs, "pref-17", SearchCriteria(name=SHARED_NAME, address="石川県津幡町"))
        assert (town.total, town.truncated, len(town.records)) == (1, False, 1)
        assert str(town.records[0]["address"]).startswith("石川県河北郡津幡町加賀爪")
        with pytest.raises(RemoteError) as exc:
            yield search(cs, "pref-17", SearchCriteria(birth_date="19600401", address="石川県金沢市"))
        assert exc.value.remote_code == 5102
        rows = _provisions("search")

        def refusal_recorded() -> defer.Deferred[bool]:  # committed after the ERROR is sent
            return node_read(nodes["pref-17"], lambda c: any(r["outcome"] == "refused" for r in rows(c)))

        yield wait_for(reactor, refusal_recorded, 10, "the refusal's provision record")
        provisions = yield node_read(nodes["pref-17"], rows)
        assert [(r["subject"], r["detail"]) for r in provisions if r["outcome"] == "refused"] == [
            ("-", "search_too_broad")]
        cut_records = [r for r in provisions if r["detail"] == "truncated: 3 of 7"]
        assert sorted(r["subject"] for r in cut_records) == in_kanazawa[:3]
        assert all(r["outcome"] == "provided" for r in cut_records)
    finally:
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_kojin_bango_via_prefecture_and_code_pool(chain_cfgs: dict[str, NodeConfig]) -> Generator[Any, Any, None]:
    """機構 generates valid, distinct, stable 個人番号 relayed by the prefecture; the CS's
    住民票コード pool is filled by 機構, handed out at random and flagged when low."""
    from twisted.internet import reactor

    nodes = yield start_nodes(reactor, chain_cfgs, FOUR)
    try:
        cs = nodes["cs-172014"]
        yield wait_for(reactor, lambda: cs.links["pref-17"].proto and cs.links["kiko"].proto, 10, "links")
        a = yield request_kojin_bango(cs, "24727059608")
        b = yield request_kojin_bango(cs, "24846016224")
        again = yield request_kojin_bango(cs, "24727059608")
        assert validate_kojin_bango(a) == a and a != b and again == a
        at_kiko = yield node_read(nodes["kiko"], _rows(KojinBango.__table__))
        at_cs = yield node_read(cs, _rows(KojinBango.__table__))
        assert {r["kojin_bango"] for r in at_kiko} == {a, b} == {r["kojin_bango"] for r in at_cs}
        given = yield node_read(nodes["kiko"], _provisions("kojin_bango"))
        assert [(r["subject"], r["recipient"], r["detail"]) for r in given] == [
            ("24727059608", "pref-17", "generated"), ("24846016224", "pref-17", "generated"),
            ("24727059608", "pref-17", "already generated")]
        got = yield request_pool(cs, 30)
        assert got == 30 and len(cs.pool) == 30  # type: ignore[arg-type]
        taken = []
        for _ in range(25):
            code = yield take_juminhyo_code(cs)
            taken.append(code)
        assert len(set(taken)) == 25 and all(validate_juminhyo_code(c) for c in taken)
        assert cs.metrics.pool_size.labels("cs-172014")._value.get() == 5
        cs.pool.low_water = 5  # type: ignore[union-attr]
        cs.pool_metrics()
        assert cs.metrics.pool_low.labels("cs-172014")._value.get() == 1
        more = yield request_pool(cs, 30)
        assert more == 30 and not set(taken) & set(cs.pool._codes)  # type: ignore[union-attr]
    finally:
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_move_in_notice_routed_across_prefectures_and_soufusaki_to_kiko(
    tmp_path: Path,
) -> Generator[Any, Any, None]:
    """A 転入通知 goes 金沢 CS → 石川 → 機構 → 東京 → 千代田 CS; 送付先 reach 機構 and are marked sent."""
    from twisted.internet import reactor

    names = ("kizon-172014", "cs-172014", "pref-17", "kiko", "pref-13", "cs-131016")
    cfgs = make_chain(tmp_path, NOW, nodes=names)
    nodes = yield start_nodes(reactor, cfgs)
    try:
        notice = encode_body(MOVE_IN_NOTICE, {
            "juminhyo_code": "24727059608", "new_lg_code": "172014",
            "old_lg_code": "131016", "kanji_name": "髙橋　太郎", "birth_date": "19800101",
            "new_address": "石川県金沢市広坂１丁目１番", "move_in_date": "20260401"})
        kizon, cs = nodes["kizon-172014"], nodes["cs-172014"]
        yield wait_for(reactor, lambda: cs.links["pref-17"].proto and cs.links["kiko"].proto,
                       10, "links")
        # 機構 checks a 送付先 against its own records: the person's 個人番号 and 本人確認情報
        number = yield request_kojin_bango(cs, "24727059608")
        card = {**sample_soufusaki(1), "soufusaki_no": "172014000001",
                "juminhyo_code": "24727059608", "kojin_bango": number}
        yield kizon.originate("cs-172014", M.UPDATE_NOTIFY, [honnin_kakunin_record(
            juminhyo_code="24727059608", kana_name="ヨシダ　タロウ", lg_code="172014",
            change_reason=TENKYO, change_date="20260401", kojin_bango=number,
            **{k: card[k] for k in ("kanji_name", "birth_date", "sex", "address")})])
        yield wait_for(reactor, lambda: node_read(nodes["kiko"], lambda c: st.count_versions(c)),
                       20, "the person's 本人確認情報 at 機構")
        sou = encode_body(SOUFUSAKI, card)
        yield kizon.originate("cs-172014", M.MOVE_IN_NOTICE, [notice])
        yield kizon.originate("cs-172014", M.SOUFUSAKI_BATCH, [sou])

        def delivered() -> defer.Deferred[Any]:
            return node_read(nodes["cs-131016"], _rows(ProvisionRecord.__table__))

        yield wait_for(reactor, delivered, 20, "転入通知 at 千代田区")
        got = yield delivered()
        assert [(r["kind"], r["subject"], r["provider"]) for r in got] == [
            ("move_in_notice", "24727059608", "pref-13")]
        for name in ("cs-172014", "pref-17", "kiko", "pref-13"):
            mine = yield node_read(nodes[name], _provisions("move_in_notice"))
            assert mine == []  # relays only

        def soufusaki_at_kiko() -> defer.Deferred[Any]:
            return node_read(nodes["kiko"], _provisions("soufusaki"))

        yield wait_for(reactor, soufusaki_at_kiko, 20, "送付先 at 機構")
        for name, provider in (("cs-172014", "kizon-172014"), ("kiko", "cs-172014")):
            got = yield node_read(nodes[name], _provisions("soufusaki"))
            assert [(r["subject"], r["provider"], r["items"]) for r in got] == [
                ("24727059608", provider, "送付先情報")]

        def sent_marked() -> defer.Deferred[bool]:
            return node_read(nodes["cs-172014"], lambda c: [
                r for r in _rows(Soufusaki.__table__)(c) if r["sent_at"] is not None])

        yield wait_for(reactor, sent_marked, 20, "送付先 acknowledged by 機構")
        at_kiko = yield node_read(nodes["kiko"], _rows(Soufusaki.__table__))
        assert [r["soufusaki_no"] for r in at_kiko] == ["172014000001"]
        assert at_kiko[0]["record"] == sou  # 機構 keeps the 59-item record byte for byte
    finally:
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_a_refused_record_blocks_its_number_and_is_refused_again_on_resend(
    chain_cfgs: dict[str, NodeConfig],
) -> Generator[Any, Any, None]:
    """A record of another municipality is refused with 5104 (R2) and stays expected: the
    sender's link blocks at it, nothing after it is applied, and a resend after reconnecting
    gets the refusal again, never an ACK."""
    from twisted.internet import reactor

    nodes = yield start_nodes(reactor, chain_cfgs, FOUR)
    try:
        rng = random.Random(2)
        good = new_resident(rng, 1, "172014")
        foreign = new_resident(rng, 2, "131016")
        kizon = nodes["kizon-172014"]
        cs = nodes["cs-172014"]
        link = kizon.links["cs-172014"]
        yield wait_for(reactor, lambda: link.proto is not None, 10, "the link")
        yield kizon.originate("cs-172014", M.UPDATE_NOTIFY,
                              [encode_change(good, "172014", TENKYO, 1, NOW.date())])
        yield wait_for(reactor, lambda: link.seq.acked == 1, 20, "record 1 acknowledged")
        yield kizon.originate("cs-172014", M.UPDATE_NOTIFY,
                              [encode_change(foreign, "131016", TENKYO, 2, NOW.date())])
        yield wait_for(reactor, lambda: link.seq.blocked == 2, 20, "the link blocked at 2")
        yield kizon.originate("cs-172014", M.UPDATE_NOTIFY,
                              [encode_change(good, "172014", TENKYO, 3, NOW.date())])

        def refusals() -> float:
            return float(cs.metrics.errors.labels("cs-172014", "wrong_sender")._value.get())

        assert refusals() == 1
        assert link.seq.acked == 1 and link.seq.depth == 2  # 2 and 3 wait in the outbox
        assert cs.inbound["kizon-172014"].expected == 2
        kz = metric_samples(generate_latest(kizon.metrics.registry).decode())
        assert kz[("juki_gateway_jukinet_link_blocked",
                   (("node", "kizon-172014"), ("peer", "cs-172014")))] == 1

        # a reconnection tries the refused number again: refused again, still not acknowledged
        assert link.proto is not None
        link.proto.abort()
        # the CS counts its refusal when it writes the ERROR; the sender blocks when it reads it
        yield wait_for(reactor, lambda: refusals() == 2 and link.seq.blocked == 2, 20,
                       "the resend refused again, and the sender blocked at it")
        assert link.seq.acked == 1 and link.seq.blocked == 2
        assert cs.inbound["kizon-172014"].expected == 2

        def at_kiko() -> defer.Deferred[bool]:
            return node_read(nodes["kiko"], lambda c: st.count_versions(c) == 1)

        yield wait_for(reactor, at_kiko, 20, "record 1 at 機構")
        current = yield node_read(nodes["kiko"], st.current_records)
        assert list(current) == [good.juminhyo_code]
        samples = metric_samples(generate_latest(cs.metrics.registry).decode())
        key = ("juki_gateway_jukinet_messages_total",
               (("msg_type", "UPDATE_NOTIFY"), ("node", "cs-172014"), ("peer", "kizon-172014"),
                ("result", "refused")))
        assert samples[key] == 2
        applied = ("juki_gateway_jukinet_messages_total",
                   (("msg_type", "UPDATE_NOTIFY"), ("node", "cs-172014"), ("peer", "kizon-172014"),
                    ("result", "applied")))
        assert samples[applied] == 1
        # R5: the applied record and both refusals of the frame are provision records at the CS
        # (a refusal's record is committed after its ERROR is written)
        yield wait_for(reactor, lambda: node_read(cs, lambda c: sum(
            r["outcome"] == "refused" for r in _provisions("update_notify")(c)) == 2),
            10, "both refusals recorded")
        records = yield node_read(cs, _provisions("update_notify"))
        assert [(r["subject"], r["outcome"], r["provider"]) for r in records
                if r["outcome"] == "provided"] == [(good.juminhyo_code, "provided", "kizon-172014")]
        refused = [r for r in records if r["outcome"] == "refused"]
        assert len(refused) == 2 and all(r["detail"].startswith("wrong_sender") and
                                         r["subject"] == "-" for r in refused)
    finally:
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_consistency_check_finds_every_injected_difference(
    tmp_path: Path,
) -> Generator[Any, Any, None]:
    """Records removed or altered on either side are all reported, with the differing items."""
    from twisted.internet import reactor

    cfgs = make_chain(tmp_path, NOW, nodes=FOUR)
    nodes = yield start_nodes(reactor, cfgs)
    try:
        records = list(timeline(random.Random(4), "172014", 300, residents=300))
        yield nodes["kizon-172014"].originate("cs-172014", M.UPDATE_NOTIFY, records)

        def arrived() -> defer.Deferred[bool]:
            return node_read(nodes["pref-17"], lambda c: st.count_versions(c) == 300)

        yield wait_for(reactor, arrived, 30, "prefecture file")
        cs_codes = sorted((yield node_read(nodes["cs-172014"], st.current_records)))
        rng = random.Random(8)
        gone_cs, gone_pf, changed = rng.sample(cs_codes, 3), [], []
        rest = [c for c in cs_codes if c not in gone_cs]
        gone_pf, changed = rest[:4], rest[10:12]

        def mutate(engine: Any, delete: list[str], alter: list[str]) -> None:
            with engine.begin() as conn:
                for code in delete:
                    conn.exec_driver_sql("DELETE FROM honnin_kakunin WHERE juminhyo_code=?", (code,))
                for code in alter:
                    (rec,) = conn.exec_driver_sql(
                        "SELECT record FROM honnin_kakunin WHERE juminhyo_code=?", (code,)).one()
                    items = decode_honnin_kakunin(rec)
                    items["address"] = str(items["address"]).replace("広坂", "別名")
                    new = encode_body(HONNIN_KAKUNIN, items)
                    conn.exec_driver_sql("UPDATE honnin_kakunin SET record=? WHERE juminhyo_code=?",
                                         (new, code))

        yield nodes["cs-172014"].read(lambda: mutate(nodes["cs-172014"].engine, gone_cs, []))
        yield nodes["pref-17"].read(lambda: mutate(nodes["pref-17"].engine, gone_pf, changed))
        report = yield consistency_check(nodes["cs-172014"], "pref-17", chunk=37, window=3)
        kinds = {(k, c) for k, c, _ in report.differences}
        assert kinds == ({(DiffKind.MISSING_AT_CS.value, c) for c in gone_cs}
                         | {(DiffKind.MISSING_AT_PEER.value, c) for c in gone_pf}
                         | {(DiffKind.DIFFERS.value, c) for c in changed})
        assert all(items == ["住所"] for k, _, items in report.differences if k == "D")
        assert report.sent == len(cs_codes) - 3 and report.compared == report.sent
        text = report.format()
        assert "missing at the CS: 3" in text and "differing items: 2" in text
        # R5: the prefecture's records that went to the CS, and the check itself, are recorded
        # (in the prefecture's next group commit, after its answer)

        def summary_recorded() -> defer.Deferred[bool]:
            return node_read(nodes["pref-17"], lambda c: any(
                r["subject"] == "-" for r in _provisions("consistency")(c)))

        yield wait_for(reactor, summary_recorded, 10, "the check's provision record")
        given = yield node_read(nodes["pref-17"], _provisions("consistency"))
        assert {r["subject"] for r in given if r["subject"] != "-"} == set(gone_cs) | set(changed)
        assert [r["detail"] for r in given if r["subject"] == "-"] == [
            f"{report.compared} compared"]
    finally:
        yield stop_nodes(nodes)


def test_node_config_round_trips_through_json(tmp_path: Path) -> None:
    """The node runner's JSON configuration describes exactly the configuration it came from."""
    from juki_gateway.gateway.jukinet.topology import config_from_json, config_to_json

    cfgs = make_chain(tmp_path, NOW, nodes=("cs-172014", "pref-17"))
    for cfg in cfgs.values():
        assert config_from_json(config_to_json(cfg)) == cfg


@pytest.mark.parametrize("limit", [0, 1001])
def test_node_json_search_limit_out_of_range_is_a_usage_error(tmp_path: Path, limit: int) -> None:
    """A node's JSON configuration with a search_limit outside 1–1000 is refused, naming it."""
    from juki_gateway.errors import UsageError
    from juki_gateway.gateway.jukinet.topology import config_from_json, config_to_json

    cfg = make_chain(tmp_path, NOW, nodes=("pref-17",))["pref-17"]
    with pytest.raises(UsageError, match="search_limit must be 1–1000"):
        config_from_json(config_to_json(replace(cfg, search_limit=limit)))



@pytest_twisted.inlineCallbacks
def test_a_late_tenshutsu_through_another_prefecture_does_not_delete_the_mover(
    tmp_path: Path,
) -> Generator[Any, Any, None]:
    """Two prefectures: a person moves from 千代田区 to 金沢市. The 転入 (4/3) reaches 機構
    through 石川 first; the 転出 (4/1) comes later through 東京. 機構 keeps the 転入 current,
    records the 転出 as received but superseded, and acknowledges it (nothing blocks)."""
    from twisted.internet import reactor

    names = ("kizon-172014", "cs-172014", "pref-17", "kiko", "pref-13", "cs-131016",
             "kizon-131016")
    nodes = yield start_nodes(reactor, make_chain(tmp_path, NOW, nodes=names))
    try:
        person = new_resident(random.Random(9), 1, "131016")
        tennyu = encode_change(person, "172014", TENNYU, 1, dt.date(2026, 4, 3))
        tenshutsu = encode_change(person, "131016", TENSHUTSU, 2, dt.date(2026, 4, 1))
        kiko = nodes["kiko"]
        yield nodes["kizon-172014"].originate("cs-172014", M.UPDATE_NOTIFY, [tennyu])
        yield wait_for(reactor, lambda: node_read(kiko, st.current_records), 20, "the 転入 at 機構")
        yield nodes["kizon-131016"].originate("cs-131016", M.UPDATE_NOTIFY, [tenshutsu])
        link = nodes["pref-13"].links["kiko"]
        yield wait_for(reactor, lambda: link.seq.acked == 1, 20, "機構 acknowledged the 転出")
        current = yield node_read(kiko, st.current_records)
        assert current == {person.juminhyo_code: tennyu}
        records = yield node_read(kiko, _provisions("update_notify"))
        assert [(r["provider"], r["outcome"]) for r in records] == [
            ("pref-17", "provided"), ("pref-13", "superseded")]
    finally:
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_the_old_existing_system_gets_the_move_in_notice_and_confirms_the_move_out(
    tmp_path: Path,
) -> Generator[Any, Any, None]:
    """転入通知 to the end: 金沢 CS → 石川 → 機構 → 東京 → 千代田 CS, which hands it to its
    existing system (MOVE_IN_NOTICE_FETCH, kept until acknowledged); that system confirms the
    転出 and sends the 消除, which removes the person at 千代田 and reaches 機構 as superseded
    (the 転入 stays current there)."""
    from twisted.internet import reactor

    from juki_gateway.gateway.jukinet.services import fetch_move_in_notices

    names = ("kizon-172014", "cs-172014", "pref-17", "kiko", "pref-13", "cs-131016",
             "kizon-131016")
    nodes = yield start_nodes(reactor, make_chain(tmp_path, NOW, nodes=names))
    try:
        person = new_resident(random.Random(11), 1, "131016")
        old_kizon, old_cs, kiko = nodes["kizon-131016"], nodes["cs-131016"], nodes["kiko"]
        lived = encode_change(person, "131016", TENKYO, 1, dt.date(2026, 3, 1))
        yield old_kizon.originate("cs-131016", M.UPDATE_NOTIFY, [lived])
        yield wait_for(reactor, lambda: node_read(kiko, st.current_records), 20, "the resident")
        tennyu = encode_change(person, "172014", TENNYU, 2, dt.date(2026, 4, 3))
        notice = encode_body(MOVE_IN_NOTICE, {
            "juminhyo_code": person.juminhyo_code, "new_lg_code": "172014",
            "old_lg_code": "131016", "kanji_name": person.name_kanji,
            "birth_date": person.birth_date, "new_address": "石川県金沢市広坂１丁目１番",
            "move_in_date": "20260403"})
        yield nodes["kizon-172014"].originate("cs-172014", M.UPDATE_NOTIFY, [tennyu])
        yield nodes["kizon-172014"].originate("cs-172014", M.MOVE_IN_NOTICE, [notice])
        yield wait_for(reactor, lambda: old_kizon.links["cs-131016"].proto, 10, "the link")

        def delivered() -> defer.Deferred[Any]:
            return fetch_move_in_notices(old_kizon, "cs-131016", 0)

        # acknowledging what was never handed out is refused and forgets nothing
        with pytest.raises(RemoteError) as early:
            yield fetch_move_in_notices(old_kizon, "cs-131016", 1)
        assert early.value.remote_code == 5111

        yield wait_for(reactor, delivered, 20, "the notice at 千代田's existing system")
        again = yield delivered()  # not acknowledged: it comes again
        assert again == [(1, notice)]
        # 転出確定: the old existing system sends the 消除, then acknowledges the notice
        tenshutsu = encode_change(person, "131016", TENSHUTSU, 3, dt.date(2026, 4, 2))
        yield old_kizon.originate("cs-131016", M.UPDATE_NOTIFY, [tenshutsu])
        assert (yield fetch_move_in_notices(old_kizon, "cs-131016", 1)) == []

        def gone_at_old_cs() -> defer.Deferred[bool]:
            return node_read(old_cs, lambda c: person.juminhyo_code in st.deleted_records(c))

        yield wait_for(reactor, gone_at_old_cs, 20, "the 消除 at 千代田")
        to_kiko = nodes["pref-13"].links["kiko"]
        yield wait_for(reactor, lambda: to_kiko.seq.acked == 2, 20, "the 消除 at 機構")
        assert (yield node_read(kiko, st.current_records)) == {person.juminhyo_code: tennyu}
    finally:
        yield stop_nodes(nodes)
