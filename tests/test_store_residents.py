"""本人確認情報, 消除者, 個人番号 and 送付先 store functions on both engines."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import Engine, func, inspect, select

from juki_gateway.registry_store.models import (
    DeletedResident,
    HonninKakunin,
    HonninKakuninHistory,
    table_of,
)
from juki_gateway.registry_store.residents import (
    KojinBangoInUse,
    SearchTooBroad,
    UnknownResident,
    apply_honnin_kakunin,
    delete_resident,
    find_by_kojin_bango,
    get_current,
    history_of,
    kojin_bango_status,
    load_residents,
    register_kojin_bango,
    search_residents,
)
from juki_gateway.registry_store.synthetic import make_resident

NOW = dt.datetime(2026, 4, 1, 9, 0, 0)


def test_apply_keeps_history_and_newest_wins(store_engine: Engine) -> None:
    """Each change adds a history row; within one batch the last version becomes current."""
    r1 = make_resident(7)
    r2 = dataclasses.replace(r1, address="石川県金沢市本町2-1", seq=2)
    r3 = dataclasses.replace(r1, address="石川県金沢市東山3-3", seq=3)
    with store_engine.begin() as conn:
        assert apply_honnin_kakunin(conn, [r1], NOW) == [1]
        assert apply_honnin_kakunin(conn, [r2, r3], NOW) == [2, 3]
    with store_engine.begin() as conn:
        assert get_current(conn, r1.juminhyo_code) == r3
        assert [h[2].address for h in history_of(conn, r1.juminhyo_code)] == [
            r1.address, r2.address, r3.address]


def test_lookups_by_number_and_by_name_pairs(store_engine: Engine) -> None:
    """Residents are found by 個人番号, by name+birth date and by name+address."""
    rows = [make_resident(n) for n in range(1, 40)]
    with store_engine.begin() as conn:
        assert load_residents(conn, rows, NOW) == len(rows)
    # The initial load drops and rebuilds the lookup indexes: they must all be back.
    names = {i["name"] for i in inspect(store_engine).get_indexes("honnin_kakunin")}
    assert names == {str(i.name) for i in table_of(HonninKakunin).indexes}
    target = rows[12]
    with store_engine.begin() as conn:
        assert find_by_kojin_bango(conn, target.kojin_bango or "") == target
        by_birth = search_residents(conn, name_kanji=target.name_kanji, birth_date=target.birth_date)
        assert target in by_birth
        assert all(r.birth_date == target.birth_date for r in by_birth)
        by_addr = search_residents(conn, seion_kana=target.seion_kana, address=target.address)
        assert by_addr == [target]
        by_kanji_addr = search_residents(conn, name_kanji=target.name_kanji, address=target.address)
        assert by_kanji_addr == [target]


LOOKUPS = {
    "住民票コード": lambda conn, r: get_current(conn, r.juminhyo_code),
    "個人番号": lambda conn, r: find_by_kojin_bango(conn, r.kojin_bango or ""),
    "氏名+生年月日": lambda conn, r: search_residents(conn, name_kanji=r.name_kanji,
                                                 birth_date=r.birth_date),
    "清音化かな+生年月日": lambda conn, r: search_residents(conn, seion_kana=r.seion_kana,
                                                   birth_date=r.birth_date),
    "氏名+住所": lambda conn, r: search_residents(conn, name_kanji=r.name_kanji, address=r.address),
    "清音化かな+住所": lambda conn, r: search_residents(conn, seion_kana=r.seion_kana,
                                                 address=r.address),
}


@pytest.mark.parametrize("lookup", list(LOOKUPS))
def test_every_lookup_reads_through_an_index(store_engine: Engine, lookup: str) -> None:
    """Each lookup's statement is planned as an index search, never a scan of the current
    table: SQLite's EXPLAIN QUERY PLAN shows SEARCH … USING INDEX / PRIMARY KEY; PostgreSQL
    (sequential scans disabled, as a scan of a small test table would be cheaper) an index
    scan. 氏名+住所 goes through the 氏名 prefix of (氏名, 生年月日) (revision 0005)."""
    from sqlalchemy import event

    rows = [make_resident(n) for n in range(1, 40)]
    with store_engine.begin() as conn:
        load_residents(conn, rows, NOW)
    seen: list[tuple[str, object]] = []

    def capture(conn: object, cursor: object, statement: str, parameters: object,
                context: object, executemany: bool) -> None:
        seen.append((statement, parameters))

    event.listen(store_engine, "before_cursor_execute", capture)
    try:
        with store_engine.connect() as conn:
            assert LOOKUPS[lookup](conn, rows[12])
    finally:
        event.remove(store_engine, "before_cursor_execute", capture)
    statements = [(st, p) for st, p in seen if "honnin_kakunin" in st]
    assert statements
    sqlite = store_engine.dialect.name == "sqlite"
    with store_engine.begin() as conn:
        for statement, params in statements:
            if sqlite:
                plan = [str(r[3]) for r in conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + statement, params)]  # type: ignore[arg-type]
                assert not any(p.startswith("SCAN honnin_kakunin") for p in plan), plan
                assert any(p.startswith("SEARCH honnin_kakunin USING") for p in plan), plan
            else:
                conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
                plan = [str(r[0]) for r in conn.exec_driver_sql(
                    "EXPLAIN " + statement, params)]  # type: ignore[arg-type]
                assert not any("Seq Scan on honnin_kakunin" in p for p in plan), plan
                assert any("Index" in p for p in plan), plan
            if lookup == "氏名+住所":
                assert any("ix_honnin_kakunin_name_birth" in p for p in plan), plan


def test_search_needs_two_items(store_engine: Engine) -> None:
    """A name alone, or a birth date alone, is refused as too broad (R3)."""
    with store_engine.begin() as conn:
        with pytest.raises(SearchTooBroad):
            search_residents(conn, name_kanji="山田太郎")
        with pytest.raises(SearchTooBroad):
            search_residents(conn, birth_date=dt.date(1980, 1, 1), address="金沢市")


def test_deceased_resident_number_is_kept_and_marked(store_engine: Engine) -> None:
    """Deleting a dead resident moves them to 消除者 and keeps their 個人番号 marked deceased (R10)."""
    r = make_resident(3)
    with store_engine.begin() as conn:
        apply_honnin_kakunin(conn, [r], NOW)
        register_kojin_bango(conn, r.kojin_bango or "", r.juminhyo_code, NOW)
        delete_resident(conn, r.juminhyo_code, deleted_on=dt.date(2026, 4, 2), deceased=True,
                        now=NOW, final=dataclasses.replace(r, change_reason="B03", seq=2))
    with store_engine.begin() as conn:
        assert get_current(conn, r.juminhyo_code) is None
        assert kojin_bango_status(conn, r.kojin_bango or "") == "deceased"
        d = DeletedResident.__table__
        row = conn.execute(select(d).where(d.c.juminhyo_code == r.juminhyo_code)).one()
        assert row.deceased and row.change_reason == "B03"
        h = HonninKakuninHistory.__table__
        assert conn.execute(select(func.count()).select_from(h)).scalar() == 1  # superseded v1
        with pytest.raises(UnknownResident):
            delete_resident(conn, r.juminhyo_code, deleted_on=dt.date(2026, 4, 2),
                            deceased=False, now=NOW)


def test_kojin_bango_never_reassigned(store_engine: Engine) -> None:
    """A 個人番号 already given to one resident cannot be given to another."""
    with store_engine.begin() as conn:
        register_kojin_bango(conn, "123456789018", "24727059608", NOW)
        register_kojin_bango(conn, "123456789018", "24727059608", NOW)  # idempotent
        with pytest.raises(KojinBangoInUse):
            register_kojin_bango(conn, "123456789018", "24846016224", NOW)


def test_updates_touching_different_columns_in_one_batch(store_engine: Engine) -> None:
    """A batch mixing name, address and number changes leaves every resident exactly as sent."""
    base = [make_resident(n) for n in (21, 22, 23)]
    with store_engine.begin() as conn:
        load_residents(conn, base, NOW)
    changed = [
        dataclasses.replace(base[0], name_kanji="髙橋一郎", seion_kana="タカハシイチロウ", seq=2),
        dataclasses.replace(base[1], address="石川県金沢市本町9-9", seq=2),
        dataclasses.replace(base[2], kojin_bango="983205673214", seq=2),
    ]
    with store_engine.begin() as conn:
        assert apply_honnin_kakunin(conn, changed, NOW) == [2, 2, 2]
    with store_engine.begin() as conn:
        assert [get_current(conn, r.juminhyo_code) for r in base] == changed
        assert search_residents(conn, name_kanji="髙橋一郎", birth_date=base[0].birth_date) == [
            changed[0]]
        assert find_by_kojin_bango(conn, "983205673214") == changed[2]
        assert find_by_kojin_bango(conn, base[2].kojin_bango or "") is None


def test_batch_in_reverse_key_order_keeps_each_residents_newest_last(store_engine: Engine) -> None:
    """A batch arriving out of key order, with two changes of one stored and one new resident
    interleaved, leaves each resident's newest change current and the older ones in history."""
    stored = make_resident(40)
    with store_engine.begin() as conn:
        load_residents(conn, [stored, make_resident(41)], NOW)
    fresh = make_resident(30)
    s2 = dataclasses.replace(stored, address="石川県金沢市本町1-1", seq=2)
    s3 = dataclasses.replace(stored, address="石川県金沢市本町3-3", seq=3)
    f2 = dataclasses.replace(fresh, address="石川県金沢市東山2-2", seq=2)
    other = dataclasses.replace(make_resident(41), address="石川県金沢市片町1-1", seq=2)
    batch = [other, s2, fresh, f2, s3]  # keys 41, 40, 30, 30, 40: descending, interleaved
    with store_engine.begin() as conn:
        assert apply_honnin_kakunin(conn, batch, NOW) == [2, 2, 1, 2, 3]
    with store_engine.begin() as conn:
        assert get_current(conn, stored.juminhyo_code) == s3
        assert [h[2] for h in history_of(conn, stored.juminhyo_code)] == [stored, s2, s3]
        assert get_current(conn, fresh.juminhyo_code) == f2
        assert [(h[0], h[2]) for h in history_of(conn, fresh.juminhyo_code)] == [
            (1, fresh), (2, f2)]
        assert get_current(conn, other.juminhyo_code) == other
        assert search_residents(conn, name_kanji=stored.name_kanji, address=s3.address) == [s3]
        assert search_residents(conn, name_kanji=stored.name_kanji, address=s2.address) == []


def test_change_of_unindexed_columns_only_rewrites_record_and_keeps_lookups(
    store_engine: Engine,
) -> None:
    """An update that changes only unindexed columns (更新順番号, record) replaces the current
    row, keeps it findable by its unchanged indexed columns and moves the old one to history."""
    base = [make_resident(n) for n in (51, 52)]
    with store_engine.begin() as conn:
        load_residents(conn, base, NOW)
    same = dataclasses.replace(base[0], seq=5, record=b"x" * 40)
    moved = dataclasses.replace(base[1], address="石川県金沢市本町5-5", seq=5)
    with store_engine.begin() as conn:
        assert apply_honnin_kakunin(conn, [moved, same], NOW) == [2, 2]
    with store_engine.begin() as conn:
        assert get_current(conn, same.juminhyo_code) == same
        assert find_by_kojin_bango(conn, same.kojin_bango or "") == same
        assert search_residents(conn, name_kanji=same.name_kanji, address=same.address) == [same]
        assert [h[2] for h in history_of(conn, same.juminhyo_code)] == [base[0], same]
        assert get_current(conn, moved.juminhyo_code) == moved
