"""Number changes in a node's store and their pure parts: a 住民票コード変更 retires the old code
and moves the person's 個人番号 to the new one; what the frame alone or the store refuses (5116);
a 個人番号変更 keeps the old number, replaced, and the check takes only the new one."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import replace

import pytest
from sqlalchemy import Connection, Engine, select

from juki_gateway.protocols.jukinet.errors import (
    JuminhyoCodeChangeRefused,
    KojinBangoNotAuthentic,
    RefusedInStore,
    SoufusakiMismatch,
)
from juki_gateway.protocols.jukinet.numbers import make_juminhyo_code, make_kojin_bango
from juki_gateway.protocols.jukinet.records import (
    JUMINHYO_CODE_CHANGE,
    KOJIN_BANGO_CHANGE,
    TENKYO,
    TENNYU,
    code_change_of,
    fullwidth_digits,
    honnin_kakunin_record,
    old_juminhyo_code,
)
from juki_gateway.registry_store import jukinet as st
from juki_gateway.registry_store.models import KojinBango
from juki_gateway.registry_store.residents import (
    get_current,
    kojin_bango_row,
    register_kojin_bango,
    replace_kojin_bango,
)
from juki_gateway.simulators.resident_events import Resident, encode_change, new_resident, serial_of

T0 = dt.datetime(2026, 11, 26, 12, 0, 0)
DAY = T0.date()
X, Y, Z = "24727059608", "24846016224", "25208017643"
NUMBER = "123456789018"


def _change(r: Resident, new: str, serial: int, old: str | None = "", **items: object) -> bytes:
    """The 住民票コード変更 of ``r`` to ``new`` (``old``: the 旧住民票コード, default r's code)."""
    return honnin_kakunin_record(
        juminhyo_code=new, kanji_name=r.name_kanji, kana_name=r.name_kana,
        birth_date=r.birth_date, sex=r.sex, lg_code="172014",
        address=f"{r.address}{fullwidth_digits(serial)}番",
        kojin_bango=r.kojin_bango, change_reason=JUMINHYO_CODE_CHANGE,
        change_date=DAY.strftime("%Y%m%d"), seq=serial,
        old_juminhyo_code=r.juminhyo_code if old == "" else old, **items)


def _person(code: str = X) -> Resident:
    r = new_resident(random.Random(3), 1, "172014")
    r.juminhyo_code, r.kojin_bango = code, NUMBER
    return r


def _rows(records: list[bytes], first: int = 1) -> list[st.HonninKakuninRow]:
    return st.rows_from_records(records, first)


def _owner_of(number: str) -> Callable[[Connection], str | None]:
    k = KojinBango.__table__
    return lambda conn: conn.execute(
        select(k.c.juminhyo_code).where(k.c.kojin_bango == number)).scalar_one_or_none()


def test_change_reasons_are_the_code_tables_own() -> None:
    """The two number changes are the 修正 group's 住民票コード and 個人番号 変更請求 (34, 33)."""
    assert (JUMINHYO_CODE_CHANGE, KOJIN_BANGO_CHANGE) == ("34", "33")


def test_a_code_change_names_its_old_code_or_is_refused_from_the_frame() -> None:
    """code_change_of returns the 旧住民票コード, and refuses (5116) one missing or equal to the
    new code, naming the record's index and no code."""
    r = _person()
    assert code_change_of(0, Y, _change(r, Y, 1)) == X
    assert old_juminhyo_code(encode_change(r, "172014", TENKYO, 1, DAY)) is None
    with pytest.raises(JuminhyoCodeChangeRefused, match="record 4:") as missing:
        code_change_of(4, Y, _change(r, Y, 1, old=None))
    with pytest.raises(JuminhyoCodeChangeRefused) as same:
        code_change_of(0, X, _change(r, X, 1))
    for exc in (missing, same):
        assert exc.value.wire_code == 5116 and X not in exc.value.message


def test_refusals_decided_in_the_store_are_marked_so() -> None:
    """The refusals a node decides while applying in its store are the RefusedInStore ones."""
    for cls in (KojinBangoNotAuthentic, SoufusakiMismatch, JuminhyoCodeChangeRefused):
        assert issubclass(cls, RefusedInStore)


def test_number_owners_follow_code_changes_back_to_the_frames_start() -> None:
    """Each row's number is looked up under the code it was registered under before the frame:
    after X→Y and Y→Z in the frame, rows of Y and Z look under X; rows before a change, or of
    other codes, under their own."""
    r = _person()
    y = replace(r, juminhyo_code=Y)
    records = [encode_change(r, "172014", TENKYO, 1, DAY), _change(r, Y, 2),
               encode_change(y, "172014", TENKYO, 3, DAY), _change(y, Z, 4),
               encode_change(replace(r, juminhyo_code=Z), "172014", TENKYO, 5, DAY)]
    assert st.number_owners(_rows(records)) == [X, X, X, X, X]
    plain = [encode_change(r, "172014", TENKYO, 1, DAY), encode_change(y, "172014", TENKYO, 2, DAY)]
    assert st.number_owners(_rows(plain)) == [X, Y]


def test_a_code_change_retires_the_old_code_and_moves_its_number(store_engine: Engine) -> None:
    """In one frame: 転入 and 転居 of X, X→Y, 転居 of Y. Y is current with the change as its first
    version; X is a 消除者 (not deceased) whose last version is the change record, its history
    kept; the person's 個人番号 is registered under Y; a search by X finds nobody."""
    r = _person()
    y = replace(r, juminhyo_code=Y)
    records = [encode_change(r, "172014", TENNYU, 1, DAY), encode_change(r, "172014", TENKYO, 2, DAY),
               _change(r, Y, 3), encode_change(y, "172014", TENKYO, 4, DAY)]
    with store_engine.begin() as conn:
        register_kojin_bango(conn, NUMBER, X, T0)
        rows = _rows(records)
        st.check_kojin_bango(conn, rows)  # 機構's check: the number is X's before the frame
        st.apply_rows(conn, rows, T0)
        assert st.current_records(conn) == {Y: records[3]}
        assert st.deleted_records(conn) == {X: records[2]}
        dead = conn.exec_driver_sql(
            "SELECT change_reason, deceased FROM deleted_resident").one()
        assert (dead[0], bool(dead[1])) == (JUMINHYO_CODE_CHANGE, False)
        kept = {code: [serial_of(rec) for rec in recs] for code, recs in st.versions(conn).items()}
        assert kept == {X: [1, 2, 3], Y: [3, 4]}
        assert _owner_of(NUMBER)(conn) == Y
        assert get_current(conn, X) is None
        assert list(st.search_rows(conn, juminhyo_code=X)) == []
        assert [row.juminhyo_code for row in st.search_rows(conn, kojin_bango=NUMBER)] == [Y]
        st.check_kojin_bango(conn, _rows([encode_change(y, "172014", TENKYO, 5, DAY)]))
        with pytest.raises(KojinBangoNotAuthentic):
            st.check_kojin_bango(conn, _rows([encode_change(r, "172014", TENKYO, 5, DAY)]))


def test_the_store_refuses_code_changes_its_file_cannot_take(store_engine: Engine) -> None:
    """5116 from the store, nothing applied: an old code that is not current here, a new code
    already current here, and (after a change) a record of the retired code or a change back
    to it."""
    r = _person()
    other = replace(_person(Z), kojin_bango="")
    with store_engine.begin() as conn:
        st.apply_rows(conn, _rows([encode_change(r, "172014", TENNYU, 1, DAY),
                                   encode_change(other, "172014", TENNYU, 2, DAY)]), T0)
    cases = {
        "not current": [_change(replace(r, juminhyo_code=Y), make_juminhyo_code("1720009999"), 3)],
        "already used": [_change(r, Z, 3)],
        "unknown in a later record": [encode_change(r, "172014", TENKYO, 3, DAY),
                                      _change(replace(r, juminhyo_code=Y), Z, 4)],
    }
    for what, records in cases.items():
        with store_engine.connect() as conn:
            trans = conn.begin()  # (a node rolls back the frame's savepoint the same way)
            with pytest.raises(JuminhyoCodeChangeRefused, match="record") as exc:
                st.apply_rows(conn, _rows(records, 3), T0)
            trans.rollback()
            assert X not in exc.value.message and Z not in exc.value.message, what
    with store_engine.begin() as conn:
        assert set(st.current_records(conn)) == {X, Z}  # nothing of the refused frames applied
        st.apply_rows(conn, _rows([_change(r, Y, 3)]), T0)
    for records in ([encode_change(r, "172014", TENKYO, 4, DAY)],
                    [_change(replace(r, juminhyo_code=Y), X, 4)]):
        with store_engine.connect() as conn:
            trans = conn.begin()
            with pytest.raises(JuminhyoCodeChangeRefused, match="record 0:"):
                st.apply_rows(conn, _rows(records, 4), T0)
            trans.rollback()
    with store_engine.begin() as conn:
        assert set(st.current_records(conn)) == {Y, Z}
        assert set(st.deleted_records(conn)) == {X}


def test_a_replaced_number_is_kept_and_no_longer_the_persons(store_engine: Engine) -> None:
    """replace_kojin_bango keeps the old number, replaced on the given day, and makes the new
    one active; 機構's check then takes the new number for the person and refuses the old; a
    store that never held the old number records the new one alone."""
    r = _person()
    new = "983205673214"
    with store_engine.begin() as conn:
        register_kojin_bango(conn, NUMBER, X, T0)
        st.apply_rows(conn, _rows([encode_change(r, "172014", TENNYU, 1, DAY)]), T0)
        replace_kojin_bango(conn, NUMBER, new, X, on=DAY, now=T0)
        assert kojin_bango_row(conn, NUMBER) == (X, "replaced")
        assert kojin_bango_row(conn, new) == (X, "active")
        k = KojinBango.__table__
        assert conn.execute(select(k.c.replaced_on).where(k.c.kojin_bango == NUMBER)).scalar() == DAY
        assert st.kojin_bango_of(conn, X) == new and st.kojin_bango_used(conn, NUMBER)
        with_new = replace(r, kojin_bango=new)
        st.check_kojin_bango(conn, _rows([encode_change(with_new, "172014", KOJIN_BANGO_CHANGE, 2, DAY)]))
        with pytest.raises(KojinBangoNotAuthentic):
            st.check_kojin_bango(conn, _rows([encode_change(r, "172014", TENKYO, 2, DAY)]))
    with store_engine.begin() as conn:  # a CS that did not ask for the old number itself
        other = make_kojin_bango("20000000001")
        replace_kojin_bango(conn, "023456789013", other, Z, on=DAY, now=T0)
        assert kojin_bango_row(conn, other) == (Z, "active")
        assert kojin_bango_row(conn, "023456789013") is None
