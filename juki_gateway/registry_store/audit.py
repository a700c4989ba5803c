"""The tamper-evident audit log (R6): append hash-chained entries, verify the chain, list entries.

Each entry stores ``prev_hash`` (the previous entry's ``entry_hash``) and ``entry_hash`` =
SHA-256 of its canonical form: compact JSON, sorted keys, UTF-8, of every field except the row
id (ids are only storage order; PostgreSQL sequences may skip). The single ``audit_chain_head``
row names the anchor (the ``prev_hash`` of the oldest kept entry; retention moves it forward when
it purges old entries), the newest entry and the count, so truncating the tail is detected too.

Several writers (several daemons on one PostgreSQL) serialize on the head row: an append reads
it ``FOR UPDATE`` (on SQLite the ``BEGIN IMMEDIATE`` write lock does the same), so the chain
never forks. ``append_audit`` runs in the caller's transaction: the action and its audit entry
commit together. Blocking: run it in the store thread pool.

The head row is anchored outside the database (:mod:`.anchor`): every writer given the anchor
key stores ``head_mac``, the key's HMAC of the new head, and :func:`verify_chain` given the key
and the checkpoints reports a head that was rewritten, written without the key, or rolled back
behind a checkpoint.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select, update

from juki_gateway.registry_store.anchor import AuditKey, Checkpoint, HeadState, mac_key_id
from juki_gateway.registry_store.models import AuditChainHead, AuditEntry, table_of
from juki_gateway.registry_store.queues import insert_ignore

GENESIS_HASH = "0" * 64
SYSTEM_OPERATOR = "system"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit entry as read back."""

    id: int
    occurred_at: dt.datetime
    operator_id: str
    terminal_id: str
    subject: str
    action: str
    detail: str
    prev_hash: str
    entry_hash: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of walking the chain: ``ok``, or the first problem and the entry it is at."""

    ok: bool
    checked: int
    problem: str = ""
    entry_id: int | None = None
    message: str = ""


def canonical_form(
    occurred_at: dt.datetime,
    operator_id: str,
    terminal_id: str,
    subject: str,
    action: str,
    detail: str,
    prev_hash: str,
) -> bytes:
    """The bytes an entry's hash covers."""
    return json.dumps(
        {
            "occurred_at": occurred_at.isoformat(timespec="microseconds"),
            "operator_id": operator_id,
            "terminal_id": terminal_id,
            "subject": subject,
            "action": action,
            "detail": detail,
            "prev_hash": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")


def entry_hash_of(rec: AuditRecord) -> str:
    """SHA-256 (hex) of an entry's canonical form, as it should be stored."""
    return hashlib.sha256(
        canonical_form(rec.occurred_at, rec.operator_id, rec.terminal_id, rec.subject,
                       rec.action, rec.detail, rec.prev_hash)
    ).hexdigest()


def append_audit(
    conn: Connection,
    *,
    now: dt.datetime,
    operator_id: str,
    terminal_id: str,
    subject: str,
    action: str,
    detail: Mapping[str, object] | str = "",
    key: AuditKey | None,
) -> AuditRecord:
    """Append one entry at the head of the chain, inside the caller's transaction.

    ``key`` is the anchor key; ``None`` leaves the head unanchored, which ``audit verify``
    reports (every daemon and command of a working directory passes its key).
    """
    text = detail if isinstance(detail, str) else json.dumps(
        dict(detail), sort_keys=True, ensure_ascii=False, default=str
    )
    h = table_of(AuditChainHead)
    stmt = select(h).where(h.c.id == 1)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    head = conn.execute(stmt).first()
    if head is None:
        # Two first writers may race here: the loser's insert is ignored, then it waits on the lock.
        insert_ignore(conn, h, {"id": 1, "anchor_hash": GENESIS_HASH, "last_id": 0,
                                "last_hash": GENESIS_HASH, "entry_count": 0})
        head = conn.execute(stmt).one()
    # Stored times are naive UTC; microseconds are kept so the canonical form round-trips.
    occurred = now.replace(tzinfo=None)
    prev = str(head.last_hash)
    digest = hashlib.sha256(
        canonical_form(occurred, operator_id, terminal_id, subject, action, text, prev)
    ).hexdigest()
    new_id = conn.execute(
        insert(table_of(AuditEntry)).returning(table_of(AuditEntry).c.id),
        {"occurred_at": occurred, "operator_id": operator_id, "terminal_id": terminal_id,
         "subject": subject, "action": action, "detail": text, "prev_hash": prev,
         "entry_hash": digest},
    ).scalar_one()
    state = HeadState(str(head.anchor_hash), int(new_id), digest, int(head.entry_count) + 1)
    conn.execute(
        update(h).where(h.c.id == 1).values(
            last_id=new_id, last_hash=digest, entry_count=state.entry_count,
            head_mac=key.mac(state) if key is not None else None)
    )
    return AuditRecord(new_id, occurred, operator_id, terminal_id, subject, action, text, prev,
                       digest)


def _records(conn: Connection, *clauses: object) -> Iterator[AuditRecord]:
    a = table_of(AuditEntry)
    q = select(a).where(*clauses).order_by(a.c.id)  # type: ignore[arg-type]
    for r in conn.execute(q.execution_options(yield_per=5000)):
        yield AuditRecord(r.id, r.occurred_at, r.operator_id, r.terminal_id, r.subject,
                          r.action, r.detail, r.prev_hash, r.entry_hash)


def list_audit(
    conn: Connection,
    *,
    since: dt.datetime | None = None,
    operator_id: str | None = None,
    subject: str | None = None,
) -> Iterator[AuditRecord]:
    """Entries in chain order, optionally from a time on, by one operator, about one subject."""
    a = table_of(AuditEntry)
    clauses = []
    if since is not None:
        clauses.append(a.c.occurred_at >= since)
    if operator_id is not None:
        clauses.append(a.c.operator_id == operator_id)
    if subject is not None:
        clauses.append(a.c.subject == subject)
    return _records(conn, *clauses)


def verify_chain(
    conn: Connection,
    *,
    keys: Sequence[AuditKey] = (),
    checkpoints: Sequence[Checkpoint] = (),
) -> VerifyResult:
    """Walk the whole chain and report the first modified, deleted, inserted or reordered entry;
    then, given the anchor key (``keys[0]``, retired keys after it), the head's MAC, and every
    checkpoint against the chain (:func:`check_anchor`)."""
    result = _verify_links(conn)
    if not result.ok or not keys:
        return result
    return check_anchor(conn, result, keys, checkpoints)


def check_anchor(
    conn: Connection, walked: VerifyResult, keys: Sequence[AuditKey],
    checkpoints: Sequence[Checkpoint],
) -> VerifyResult:
    """The anchor checks after a clean walk: the head's MAC is the current key's, and no
    checkpoint names an entry the chain no longer has (or has with another hash)."""
    found = head_state(conn)
    if found is None:
        if checkpoints:
            cp = max(checkpoints, key=lambda c: c.head.last_id)
            return VerifyResult(False, 0, "cut", None,
                                f"the chain is empty, but checkpoint line {cp.line} ({cp.at}) "
                                f"saw entry {cp.head.last_id}")
        return walked
    state, mac = found
    key = keys[0]
    if mac is None:
        return VerifyResult(False, walked.checked, "unanchored", state.last_id,
                            "the head was written without the anchor key (or its MAC removed): "
                            "check the entries, then run 'juki-gateway audit anchor'")
    if mac_key_id(mac) != key.key_id:
        return VerifyResult(False, walked.checked, "head_rewritten", state.last_id,
                            f"the head is MACed with key {mac_key_id(mac)}, not with the current "
                            f"anchor key {key.key_id}: the head row was rewritten")
    if not key.check(state, mac):
        return VerifyResult(False, walked.checked, "head_rewritten", state.last_id,
                            "the head's MAC does not verify: the head row was rewritten "
                            "(entries cut, forged or appended without the key)")
    a = table_of(AuditEntry)
    first_kept = conn.execute(select(func.min(a.c.id))).scalar()
    for cp in checkpoints:
        seen = cp.head
        if seen.last_id > state.last_id or (
            seen.last_id == state.last_id and seen.last_hash != state.last_hash
        ):
            return VerifyResult(False, walked.checked, "cut", state.last_id,
                                f"the chain ends at entry {state.last_id}, but checkpoint line "
                                f"{cp.line} ({cp.at}) saw entry {seen.last_id}: newer entries "
                                "were cut and an older head put back")
        if first_kept is None or seen.last_id < first_kept:
            continue  # purged by retention since
        stored = conn.execute(select(a.c.entry_hash).where(a.c.id == seen.last_id)).scalar()
        if stored != seen.last_hash:
            return VerifyResult(False, walked.checked, "cut", seen.last_id,
                                f"entry {seen.last_id}, seen by checkpoint line {cp.line} "
                                f"({cp.at}), is missing or different")
    return walked


def _verify_links(conn: Connection) -> VerifyResult:
    head = conn.execute(select(table_of(AuditChainHead))).first()
    records = list(_records(conn))
    if head is None:
        if records:
            return VerifyResult(False, 0, "head_missing", records[0].id,
                                "entries exist but the chain head row is missing")
        return VerifyResult(True, 0)
    by_hash = {r.entry_hash: i for i, r in enumerate(records)}
    expected = str(head.anchor_hash)
    for i, rec in enumerate(records):
        if entry_hash_of(rec) != rec.entry_hash:
            return VerifyResult(False, i, "modified", rec.id,
                                f"entry {rec.id} was modified: its content does not match its hash")
        if rec.prev_hash != expected:
            nxt = records[i + 1] if i + 1 < len(records) else None
            if rec.prev_hash in by_hash and by_hash[rec.prev_hash] > i:
                problem, msg = "reordered", (
                    f"entry {rec.id} is out of order: it follows entry "
                    f"{records[by_hash[rec.prev_hash]].id}, which is stored after it")
            elif nxt is not None and nxt.prev_hash == expected:
                problem, msg = "inserted", f"entry {rec.id} was inserted into the chain"
            elif rec.prev_hash in by_hash:
                problem, msg = "inserted", f"entries were inserted before entry {rec.id}"
            elif i == 0:
                problem, msg = "deleted", f"the entry before {rec.id} (the oldest kept) was deleted"
            else:
                problem, msg = "deleted", f"an entry before entry {rec.id} was deleted"
            return VerifyResult(False, i, problem, rec.id, msg)
        expected = rec.entry_hash
    if len(records) != head.entry_count or (records and records[-1].id != head.last_id) or \
            expected != head.last_hash:
        last = records[-1].id if records else None
        if len(records) < head.entry_count:
            return VerifyResult(False, len(records), "deleted", last,
                                f"the newest entries were deleted: the head names entry "
                                f"{head.last_id} and {head.entry_count} entries, {len(records)} remain")
        return VerifyResult(False, len(records), "inserted", last,
                            f"entries were appended after the head (entry {head.last_id})")
    return VerifyResult(True, len(records))


def purge_audit_before(conn: Connection, cutoff: dt.datetime, *, key: AuditKey | None) -> int:
    """Delete entries older than ``cutoff`` (retention) and move the chain's anchor past them
    (re-MACed with ``key``)."""
    a = table_of(AuditEntry)
    h = table_of(AuditChainHead)
    stmt = select(h).where(h.c.id == 1)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    head = conn.execute(stmt).first()
    if head is None:
        return 0
    old = conn.execute(
        select(a.c.id, a.c.entry_hash).where(a.c.occurred_at < cutoff).order_by(a.c.id.desc()).limit(1)
    ).first()
    if old is None:
        return 0
    count = int(conn.execute(a.delete().where(a.c.id <= old.id)).rowcount)
    state = HeadState(str(old.entry_hash), int(head.last_id), str(head.last_hash),
                      int(head.entry_count) - count)
    conn.execute(
        update(h).where(h.c.id == 1).values(
            anchor_hash=state.anchor_hash, entry_count=state.entry_count,
            head_mac=key.mac(state) if key is not None else None)
    )
    return count


def head_state(conn: Connection) -> tuple[HeadState, str | None] | None:
    """The chain head and its stored MAC (None before the first entry)."""
    head = conn.execute(select(table_of(AuditChainHead))).first()
    if head is None:
        return None
    return (HeadState(str(head.anchor_hash), int(head.last_id), str(head.last_hash),
                      int(head.entry_count)), head.head_mac)


def anchor_head(conn: Connection, key: AuditKey) -> HeadState | None:
    """MAC the current head with ``key`` (``audit anchor``; the caller verified the chain)."""
    found = head_state(conn)
    if found is None:
        return None
    h = table_of(AuditChainHead)
    conn.execute(update(h).where(h.c.id == 1).values(head_mac=key.mac(found[0])))
    return found[0]
