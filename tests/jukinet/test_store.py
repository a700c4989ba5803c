"""Juki-net store functions on both engines: 消除者 leave the current file and can come back."""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import Engine

from juki_gateway.protocols.jukinet.records import SHIBOU, TENKYO, TENNYU, TENSHUTSU
from juki_gateway.registry_store import jukinet as st
from juki_gateway.registry_store.residents import kojin_bango_status, register_kojin_bango
from juki_gateway.simulators.resident_events import encode_change, new_resident, serial_of

T0 = dt.datetime(2026, 11, 26, 12, 0, 0)


def test_removed_residents_move_to_the_deleted_table_and_may_return(store_engine: Engine) -> None:
    """死亡 and 転出 move a resident to 消除者 (a dead resident's 個人番号 marked deceased); a later
    record brings them back as their next version, every version kept once, in order."""
    rng = random.Random(3)
    a, b = new_resident(rng, 1, "172014"), new_resident(rng, 2, "172014")
    a.kojin_bango = "123456789018"
    day = T0.date()
    changes = [encode_change(a, "172014", TENNYU, 1, day), encode_change(b, "172014", TENNYU, 2, day),
               encode_change(a, "172014", TENKYO, 3, day), encode_change(a, "172014", SHIBOU, 4, day),
               encode_change(b, "172014", TENSHUTSU, 5, day)]
    with store_engine.begin() as conn:
        register_kojin_bango(conn, a.kojin_bango, a.juminhyo_code, T0)
        st.apply_rows(conn, st.rows_from_records(changes[:3], 1), T0)
        st.apply_rows(conn, st.rows_from_records(changes[3:], 4), T0)
        assert st.current_records(conn) == {}
        assert st.deleted_records(conn) == {a.juminhyo_code: changes[3], b.juminhyo_code: changes[4]}
        assert kojin_bango_status(conn, a.kojin_bango) == "deceased"
        marks = conn.exec_driver_sql("SELECT juminhyo_code, deleted_on, deceased FROM deleted_resident").all()
        assert {(c, str(on), bool(dead)) for c, on, dead in marks} == {
            (a.juminhyo_code, str(day), True), (b.juminhyo_code, str(day), False)}
        back = [encode_change(b, "172014", TENNYU, 6, day), encode_change(b, "172014", TENKYO, 7, day)]
        st.apply_rows(conn, st.rows_from_records(back[:1], 6), T0)
        st.apply_rows(conn, st.rows_from_records(back[1:], 7), T0)
        assert st.current_records(conn) == {b.juminhyo_code: back[1]}
        assert set(st.deleted_records(conn)) == {a.juminhyo_code}
        kept = {code: [serial_of(r) for r in recs] for code, recs in st.versions(conn).items()}
        assert kept == {a.juminhyo_code: [1, 3, 4], b.juminhyo_code: [2, 5, 6, 7]}
        assert st.count_versions(conn) == 7
