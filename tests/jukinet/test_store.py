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


def test_a_late_tenshutsu_from_the_old_municipality_never_deletes_the_mover(
    store_engine: Engine,
) -> None:
    """Where updates come from several senders (a prefecture, 機構), a record from another
    municipality than the person's current version and older than it (異動年月日, then
    タイムスタンプ) is stale: not applied, not deleting; the index is returned. A newer one
    from the other municipality, and every record of one municipality, apply in order."""
    rng = random.Random(5)
    p = new_resident(rng, 1, "131016")
    moved_out, moved_in = dt.date(2026, 4, 1), dt.date(2026, 4, 3)
    lived = encode_change(p, "131016", TENKYO, 1, dt.date(2026, 3, 1))
    tennyu = encode_change(p, "172014", TENNYU, 2, moved_in)
    tenshutsu = encode_change(p, "131016", TENSHUTSU, 3, moved_out)
    with store_engine.begin() as conn:
        assert st.apply_rows(conn, st.rows_from_records([lived], 1), T0, across_senders=True) == set()
        assert st.apply_rows(conn, st.rows_from_records([tennyu], 2), T0, across_senders=True) == set()
        # the old municipality's 転出, dated before the 転入, arrives last (another sender)
        assert st.apply_rows(conn, st.rows_from_records([tenshutsu], 3), T0,
                             across_senders=True) == {0}
        assert st.current_records(conn) == {p.juminhyo_code: tennyu}
        assert st.deleted_records(conn) == {}
        # without the rule (one sender, a CS), the same record is applied in arrival order
        assert st.apply_rows(conn, st.rows_from_records([tenshutsu], 3), T0) == set()
        assert st.current_records(conn) == {}
        # a newer record from the other municipality is not stale
        later = encode_change(p, "131016", TENNYU, 4, dt.date(2026, 5, 1))
        assert st.apply_rows(conn, st.rows_from_records([later], 4), T0, across_senders=True) == set()
        assert st.current_records(conn) == {p.juminhyo_code: later}


def test_awaiting_fetch_counts_the_records_of_fetched_links_only(store_engine: Engine) -> None:
    """What waits to be fetched: per fetched link (``node>holder``), the records not yet
    acknowledged and the oldest one's time; a pushed link (no ``>``) is not counted, and
    settled records leave the count."""
    from juki_gateway.protocols.jukinet.layouts import HONNIN_KAKUNIN, MOVE_IN_NOTICE

    notice, update = b"n" * MOVE_IN_NOTICE.record_length, b"u" * HONNIN_KAKUNIN.record_length
    t1 = T0 + dt.timedelta(minutes=5)
    with store_engine.begin() as conn:
        st.enqueue(conn, "cs-172014>kizon-juki", 0x0103, [notice] * 3, T0)
        st.enqueue(conn, "cs-172014>kizon-juki", 0x0103, [notice] * 2, t1)
        st.enqueue(conn, "pref-17>cs-172031", 0x0103, [notice], t1)
        st.enqueue(conn, "pref-17", 0x0101, [update] * 4, T0)
        found = st.awaiting_fetch(conn)
        assert {k: v[0] for k, v in found.items()} == {
            "cs-172014>kizon-juki": 5, "pref-17>cs-172031": 1}
        assert found["cs-172014>kizon-juki"][1] == T0
        st.settle(conn, "cs-172014>kizon-juki", 3, t1)  # the first run fetched and acknowledged
        assert st.awaiting_fetch(conn)["cs-172014>kizon-juki"] == (2, t1)
        st.settle(conn, "pref-17>cs-172031", 1, t1)
        assert "pref-17>cs-172031" not in st.awaiting_fetch(conn)
