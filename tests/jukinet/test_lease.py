"""Link leases and outbox tails in the shared store (both engines), with an injected clock."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from juki_gateway.protocols.jukinet.layouts import HONNIN_KAKUNIN
from juki_gateway.protocols.jukinet.messages import JukinetMessage as M
from juki_gateway.registry_store import jukinet as st

T0 = dt.datetime(2026, 11, 26, 12, 0, 0)
TTL = dt.timedelta(seconds=3)


def test_lease_goes_to_one_holder_until_it_expires(store_engine: Engine) -> None:
    """The first holder keeps the lease while it renews; another gets it only after expiry."""
    with store_engine.begin() as conn:
        assert st.take_lease(conn, "p->k", "p/a", T0, T0 + TTL)
        assert not st.take_lease(conn, "p->k", "p/b", T0 + dt.timedelta(seconds=1), T0 + TTL * 2)
        assert st.take_lease(conn, "p->k", "p/a", T0 + dt.timedelta(seconds=2), T0 + dt.timedelta(seconds=5))
        assert not st.take_lease(conn, "p->k", "p/b", T0 + dt.timedelta(seconds=4), T0 + TTL * 3)
        assert st.take_lease(conn, "p->k", "p/b", T0 + dt.timedelta(seconds=6), T0 + TTL * 3)
        assert not st.take_lease(conn, "p->k", "p/a", T0 + dt.timedelta(seconds=7), T0 + TTL * 4)
        assert st.take_lease(conn, "other", "p/a", T0 + dt.timedelta(seconds=7), T0 + TTL * 4)


def _rec(ch: bytes) -> bytes:
    return ch * HONNIN_KAKUNIN.record_length


def test_outbox_tail_follows_numbers_from_any_writer(store_engine: Engine) -> None:
    """Records queued in separate transactions come back after a given number, in order."""
    a, b, c, x = (_rec(ch) for ch in (b"a", b"b", b"c", b"x"))
    with store_engine.begin() as conn:
        first = st.enqueue(conn, "p->k", M.UPDATE_NOTIFY, [a, b], T0)
    with store_engine.begin() as conn:
        second = st.enqueue(conn, "p->k", M.UPDATE_NOTIFY, [c], T0)
        st.enqueue(conn, "elsewhere", M.UPDATE_NOTIFY, [x], T0)
    assert [r.seq for r in first + second] == [1, 2, 3]
    with store_engine.begin() as conn:
        tail = st.outbox_after(conn, "p->k", 1)
        st.settle(conn, "p->k", 2, T0)
        acked, pending = st.load_outbox(conn, "p->k")
    assert [(r.seq, r.record) for r in tail] == [(2, b), (3, c)]
    assert (acked, [r.seq for r in pending]) == (2, [3])


def test_outbox_rows_hold_runs_and_settle_only_whole_runs(store_engine: Engine) -> None:
    """A run of records is one outbox row; an ack inside a run keeps the run (resent whole
    after a restart), an ack at its end drops it."""
    recs = [_rec(bytes([65 + i])) for i in range(5)]
    with store_engine.begin() as conn:
        st.enqueue(conn, "p->k", M.UPDATE_NOTIFY, recs[:3], T0)
        st.enqueue(conn, "p->k", M.UPDATE_NOTIFY, recs[3:], T0)
        rows = conn.exec_driver_sql("SELECT seq FROM outbox WHERE link='p->k' ORDER BY seq").all()
        assert [r[0] for r in rows] == [1, 4]
        assert st.settle(conn, "p->k", 2, T0) == 0
        acked, pending = st.load_outbox(conn, "p->k")
        assert acked == 0 and [r.record for r in pending] == recs
        assert st.settle(conn, "p->k", 3, T0) == 1
        assert [r.seq for r in st.outbox_after(conn, "p->k", 4)] == [5]
        assert st.settle(conn, "p->k", 5, T0) == 1
        assert st.load_outbox(conn, "p->k") == (5, [])


def test_outbox_runs_are_stored_compressed_and_read_back_byte_for_byte(store_engine: Engine) -> None:
    """A queued run of real records is stored much smaller than the records and comes back
    identical; a run stored uncompressed (older stores) is read as it is."""
    import random

    from juki_gateway.simulators.resident_events import timeline

    recs = list(timeline(random.Random(5), "172014", 40, residents=40))
    with store_engine.begin() as conn:
        st.enqueue(conn, "p->k", M.UPDATE_NOTIFY, recs[:30], T0)
        (stored,) = conn.exec_driver_sql("SELECT frame FROM outbox WHERE link='p->k'").one()
        assert len(stored) * 4 < 30 * HONNIN_KAKUNIN.record_length
        sqlite = conn.dialect.name == "sqlite"
        at = T0.isoformat(" ") if sqlite else T0
        conn.exec_driver_sql(
            "INSERT INTO outbox (link, seq, msg_type, frame, state, attempts, next_try_at, created_at) "
            + ("VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)" if sqlite
               else "VALUES (%s, %s, %s, %s, 'pending', 0, %s, %s)"),
            ("p->k", 31, int(M.UPDATE_NOTIFY), b"".join(recs[30:]), at, at))
        conn.exec_driver_sql("UPDATE seq_counter SET next_seq = 41 WHERE link = 'p->k'")
        acked, pending = st.load_outbox(conn, "p->k")
        assert acked == 0 and [(r.seq, r.record) for r in pending] == list(enumerate(recs, 1))
        assert [r.record for r in st.outbox_after(conn, "p->k", 35)] == recs[35:]
        assert st.settle(conn, "p->k", 39, T0) == 1
        assert st.settle(conn, "p->k", 40, T0) == 1
        assert st.load_outbox(conn, "p->k") == (40, [])
