"""Link leases and outbox tails in the shared store (both engines), with an injected clock."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from juki_gateway.gateway.jukinet import store as st
from juki_gateway.protocols.jukinet.messages import JukinetMessage as M

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


def test_outbox_tail_follows_numbers_from_any_writer(store_engine: Engine) -> None:
    """Records queued in separate transactions come back after a given number, in order."""
    with store_engine.begin() as conn:
        first = st.enqueue(conn, "p->k", M.UPDATE_NOTIFY, [b"a", b"b"], T0)
    with store_engine.begin() as conn:
        second = st.enqueue(conn, "p->k", M.UPDATE_NOTIFY, [b"c"], T0)
        st.enqueue(conn, "elsewhere", M.UPDATE_NOTIFY, [b"x"], T0)
    assert [r.seq for r in first + second] == [1, 2, 3]
    with store_engine.begin() as conn:
        tail = st.outbox_after(conn, "p->k", 1)
        st.settle(conn, "p->k", 2, T0)
        acked, pending = st.load_outbox(conn, "p->k")
    assert [(r.seq, r.record) for r in tail] == [(2, b"b"), (3, b"c")]
    assert (acked, [r.seq for r in pending]) == (2, [3])
