"""Durable per-link queues (R4): the outbox of frames to send and the exactly-once inbox.

Outbox: ``enqueue`` numbers a frame with the link's next 更新順番号 (a counter row, locked by the
enclosing transaction) in the same transaction as the change it announces, so a change and its
notification commit together. Senders ``claim_due`` a batch: on PostgreSQL the rows are taken
with ``FOR UPDATE SKIP LOCKED`` and leased to one worker (``claimed_by``, ``next_try_at`` moved
past the lease), so several daemons on one database never send the same row twice; on SQLite
the write lock taken by ``BEGIN IMMEDIATE`` serializes claimers. ``mark_sent`` settles a row
once the peer acknowledged it; ``retry_later`` re-arms it after a failure.

Inbox: ``inbox_apply`` inserts (receiver, sender, 更新順番号) with ``ON CONFLICT DO NOTHING`` in the
transaction that applies the message, and returns False for a duplicate: the unique key makes
a message apply exactly once, whichever daemon instance received it.

All functions are blocking and take the caller's transaction: run them in the store thread pool.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Table, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from juki_gateway.registry_store.models import InboxEntry, OutboxMessage, SeqCounter, table_of


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A claimed outbox row: what to send, and the numbers to settle it with."""

    id: int
    link: str
    seq: int
    msg_type: int
    frame: bytes
    attempts: int


def allocate_seq(conn: Connection, link: str) -> int:
    """The next 更新順番号 of ``link`` (1, 2, 3 …), reserved inside the caller's transaction."""
    c = table_of(SeqCounter)
    stmt = select(c.c.next_seq).where(c.c.link == link)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    current = conn.execute(stmt).scalar_one_or_none()
    if current is None:
        insert_ignore(conn, c, {"link": link, "next_seq": 1})
        current = conn.execute(stmt).scalar_one()
    conn.execute(update(c).where(c.c.link == link).values(next_seq=current + 1))
    return int(current)


def pending_outbox_row(link: str, seq: int, msg_type: int, frame: bytes,
                       now: dt.datetime) -> dict[str, object]:
    """A new outbox row: pending, never tried, due at once."""
    return {"link": link, "seq": seq, "msg_type": msg_type, "frame": frame, "state": "pending",
            "attempts": 0, "next_try_at": now, "claimed_by": None, "created_at": now,
            "sent_at": None}


def enqueue(
    conn: Connection,
    link: str,
    msg_type: int,
    frame: bytes | Callable[[int], bytes],
    now: dt.datetime,
) -> int:
    """Queue a frame on ``link``; ``frame`` may be a function of the allocated 更新順番号. Returns it."""
    seq = allocate_seq(conn, link)
    body = frame(seq) if callable(frame) else frame
    conn.execute(insert(table_of(OutboxMessage)), [pending_outbox_row(link, seq, msg_type, body, now)])
    return seq


def claim_due(
    conn: Connection,
    link: str,
    worker: str,
    now: dt.datetime,
    *,
    limit: int = 100,
    lease: dt.timedelta = dt.timedelta(seconds=30),
) -> list[OutboxItem]:
    """Lease up to ``limit`` due rows of ``link`` to ``worker``, lowest 更新順番号 first."""
    o = table_of(OutboxMessage)
    stmt = (
        select(o.c.id, o.c.link, o.c.seq, o.c.msg_type, o.c.frame, o.c.attempts)
        .where(o.c.link == link, o.c.state == "pending", o.c.next_try_at <= now)
        .order_by(o.c.seq)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = conn.execute(stmt).all()
    if not rows:
        return []
    conn.execute(
        update(o)
        .where(o.c.id.in_([r.id for r in rows]))
        .values(claimed_by=worker, attempts=o.c.attempts + 1, next_try_at=now + lease)
    )
    return [OutboxItem(r.id, r.link, r.seq, r.msg_type, r.frame, r.attempts + 1) for r in rows]


def mark_sent(conn: Connection, ids: Sequence[int], now: dt.datetime) -> None:
    """Settle rows the peer acknowledged."""
    o = table_of(OutboxMessage)
    conn.execute(update(o).where(o.c.id.in_(list(ids))).values(state="sent", sent_at=now))


def mark_sent_up_to(conn: Connection, link: str, seq: int, now: dt.datetime) -> int:
    """Settle every pending row of ``link`` up to an acknowledged 更新順番号 that was delivered
    (claimed at least once); returns the count. A number never delivered settles nothing: a
    peer's ACK cannot mark an answer sent that it never got."""
    o = table_of(OutboxMessage)
    res = conn.execute(
        update(o)
        .where(o.c.link == link, o.c.seq <= seq, o.c.state == "pending", o.c.attempts > 0)
        .values(state="sent", sent_at=now)
    )
    return int(res.rowcount)


def retry_later(conn: Connection, ids: Sequence[int], next_try_at: dt.datetime) -> None:
    """Release leased rows so that they are sent again from ``next_try_at`` (link outage)."""
    o = table_of(OutboxMessage)
    conn.execute(
        update(o).where(o.c.id.in_(list(ids))).values(next_try_at=next_try_at, claimed_by=None)
    )


def pending_count(conn: Connection, link: str) -> int:
    """How many rows of ``link`` still wait for an acknowledgement."""
    o = table_of(OutboxMessage)
    return int(
        conn.execute(
            select(func.count()).select_from(o).where(o.c.link == link, o.c.state == "pending")
        ).scalar_one()
    )


def pending_by_link(conn: Connection) -> dict[str, tuple[int, dt.datetime | None]]:
    """Per link: how many messages are pending, and when the oldest of them was queued."""
    rows = conn.execute(
        select(OutboxMessage.link, func.count(), func.min(OutboxMessage.created_at))
        .where(OutboxMessage.state == "pending").group_by(OutboxMessage.link))
    return {str(link): (int(count), oldest) for link, count, oldest in rows}


def inbox_apply(
    conn: Connection, receiver: str, sender: str, seq: int, msg_type: int, now: dt.datetime
) -> bool:
    """Record that ``receiver`` applied (sender, 更新順番号); False if it was applied before."""
    i = table_of(InboxEntry)
    return insert_ignore(
        conn, i, {"receiver": receiver, "sender": sender, "seq": seq, "msg_type": msg_type,
                  "applied_at": now}
    ) == 1


def inbox_last_seq(conn: Connection, receiver: str, sender: str) -> int:
    """The highest 更新順番号 ``receiver`` applied from ``sender`` (0 if none)."""
    i = table_of(InboxEntry)
    value = conn.execute(
        select(func.max(i.c.seq)).where(i.c.receiver == receiver, i.c.sender == sender)
    ).scalar_one()
    return int(value or 0)


def insert_ignore(conn: Connection, table: Table, row: dict[str, object]) -> int:
    """INSERT … ON CONFLICT DO NOTHING; 1 if the row went in, 0 if the key existed."""
    ins = postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
    # RETURNING tells reliably whether a row was inserted (rowcount varies by driver).
    pk = next(iter(table.primary_key.columns))
    stmt = ins.on_conflict_do_nothing().returning(pk)
    return len(conn.execute(stmt, row).all())
