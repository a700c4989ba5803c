"""Outbox numbering, claiming and settling; exactly-once inbox; on both engines."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from juki_gateway.registry_store.queues import (
    claim_due,
    enqueue,
    inbox_apply,
    inbox_last_seq,
    mark_sent,
    mark_sent_up_to,
    pending_count,
    retry_later,
)

NOW = dt.datetime(2026, 4, 1, 9, 0, 0)


def test_enqueue_numbers_each_link_from_one(store_engine: Engine) -> None:
    """Each link has its own 更新順番号 sequence, and the frame can embed its number."""
    with store_engine.begin() as conn:
        assert [enqueue(conn, "a", 1, lambda s: b"F%d" % s, NOW) for _ in range(3)] == [1, 2, 3]
        assert enqueue(conn, "b", 1, b"x", NOW) == 1
    with store_engine.begin() as conn:
        items = claim_due(conn, "a", "w1", NOW)
    assert [(i.seq, i.frame, i.attempts) for i in items] == [(1, b"F1", 1), (2, b"F2", 1),
                                                             (3, b"F3", 1)]


def test_claimed_rows_are_leased_then_retried(store_engine: Engine) -> None:
    """A claimed row is not claimed again within its lease; after retry_later it comes back."""
    with store_engine.begin() as conn:
        enqueue(conn, "a", 1, b"x", NOW)
        first = claim_due(conn, "a", "w1", NOW)
        assert claim_due(conn, "a", "w2", NOW + dt.timedelta(seconds=5)) == []
        retry_later(conn, [first[0].id], NOW + dt.timedelta(seconds=10))
        assert claim_due(conn, "a", "w2", NOW + dt.timedelta(seconds=9)) == []
        again = claim_due(conn, "a", "w2", NOW + dt.timedelta(seconds=10))
        assert [i.attempts for i in again] == [2]
        mark_sent(conn, [again[0].id], NOW)
        assert pending_count(conn, "a") == 0
        assert claim_due(conn, "a", "w3", NOW + dt.timedelta(days=1)) == []


def test_ack_settles_everything_up_to_its_number(store_engine: Engine) -> None:
    """An ACK for 更新順番号 n settles the delivered rows 1..n and leaves later rows pending."""
    with store_engine.begin() as conn:
        for _ in range(5):
            enqueue(conn, "a", 1, b"x", NOW)
        claim_due(conn, "a", "w", NOW, limit=5)
        assert mark_sent_up_to(conn, "a", 3, NOW) == 3
        assert pending_count(conn, "a") == 2


def test_an_ack_settles_only_what_was_delivered(store_engine: Engine) -> None:
    """An ACK naming a number never delivered (a peer that lies or is confused) settles only the
    rows actually delivered: an undelivered answer stays pending, to be sent."""
    with store_engine.begin() as conn:
        for _ in range(5):
            enqueue(conn, "a", 1, b"x", NOW)
        claim_due(conn, "a", "w", NOW, limit=2)  # 1 and 2 delivered
        assert mark_sent_up_to(conn, "a", 5, NOW) == 2
        assert pending_count(conn, "a") == 3


def test_inbox_rejects_duplicates(store_engine: Engine) -> None:
    """The same (sender, 更新順番号) is applied once; other senders and receivers are separate."""
    with store_engine.begin() as conn:
        assert inbox_apply(conn, "pf-17", "cs-172014", 1, 1, NOW)
        assert not inbox_apply(conn, "pf-17", "cs-172014", 1, 1, NOW)
        assert inbox_apply(conn, "pf-17", "cs-172022", 1, 1, NOW)
        assert inbox_apply(conn, "kiko", "cs-172014", 1, 1, NOW)
        assert inbox_apply(conn, "pf-17", "cs-172014", 2, 1, NOW)
    with store_engine.begin() as conn:
        assert not inbox_apply(conn, "pf-17", "cs-172014", 2, 1, NOW)
        assert inbox_last_seq(conn, "pf-17", "cs-172014") == 2
        assert inbox_last_seq(conn, "pf-17", "nobody") == 0
