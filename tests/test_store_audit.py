"""The hash-chained audit log: appends, listing, and detection of each kind of tampering."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, delete, insert, select, update

from juki_gateway.registry_store.audit import (
    append_audit,
    list_audit,
    purge_audit_before,
    verify_chain,
)
from juki_gateway.registry_store.models import AuditEntry, table_of

T0 = dt.datetime(2026, 4, 1, 9, 0, 0)
A = table_of(AuditEntry)


def _fill(engine: Engine, n: int = 6) -> list[int]:
    ids = []
    with engine.begin() as conn:
        for i in range(n):
            rec = append_audit(conn, now=T0 + dt.timedelta(minutes=i), operator_id=f"op{i % 2}",
                               terminal_id="t01", subject=f"atena-{i % 3}", action="flag_set",
                               detail={"i": i, "note": "自動応答不可"})
            ids.append(rec.id)
    return ids


def test_untouched_chain_verifies(store_engine: Engine) -> None:
    """A log written only through append_audit verifies, entry by entry."""
    _fill(store_engine)
    with store_engine.begin() as conn:
        result = verify_chain(conn)
    assert result.ok and result.checked == 6


def test_list_filters(store_engine: Engine) -> None:
    """Listing filters by time, operator and subject and keeps chain order."""
    _fill(store_engine)
    with store_engine.begin() as conn:
        assert len(list(list_audit(conn))) == 6
        assert [r.operator_id for r in list_audit(conn, operator_id="op1")] == ["op1"] * 3
        assert {r.subject for r in list_audit(conn, subject="atena-2")} == {"atena-2"}
        assert len(list(list_audit(conn, since=T0 + dt.timedelta(minutes=4)))) == 2


def test_modified_entry_detected(store_engine: Engine) -> None:
    """Changing any field of an entry is reported as 'modified' at that entry."""
    ids = _fill(store_engine)
    with store_engine.begin() as conn:
        conn.execute(update(A).where(A.c.id == ids[3]).values(operator_id="intruder"))
        result = verify_chain(conn)
    assert (result.ok, result.problem, result.entry_id) == (False, "modified", ids[3])


def test_deleted_entry_detected(store_engine: Engine) -> None:
    """Removing an entry in the middle is reported as 'deleted' at its successor."""
    ids = _fill(store_engine)
    with store_engine.begin() as conn:
        conn.execute(delete(A).where(A.c.id == ids[2]))
        result = verify_chain(conn)
    assert (result.ok, result.problem, result.entry_id) == (False, "deleted", ids[3])


def test_deleted_newest_and_oldest_entries_detected(store_engine: Engine) -> None:
    """Removing the newest entry (head mismatch) or the oldest one is reported as 'deleted'."""
    ids = _fill(store_engine)
    with store_engine.begin() as conn:
        conn.execute(delete(A).where(A.c.id == ids[-1]))
        assert verify_chain(conn).problem == "deleted"
    with store_engine.begin() as conn:
        conn.execute(delete(A).where(A.c.id == ids[0]))
        result = verify_chain(conn)
    assert (result.problem, result.entry_id) == ("deleted", ids[1])


def test_inserted_entry_detected(store_engine: Engine) -> None:
    """A forged entry slipped between two entries is reported as 'inserted' at the forgery."""
    ids = _fill(store_engine)
    with store_engine.begin() as conn:
        rows = [r._asdict() for r in conn.execute(select(A).order_by(A.c.id))]
        conn.execute(delete(A))
        # Rewrite the table with a copy of entry 2 (a self-consistent forged row) after entry 2.
        forged = dict(rows[2], detail="forged")
        from juki_gateway.registry_store.audit import AuditRecord, entry_hash_of

        forged["entry_hash"] = entry_hash_of(AuditRecord(**{**forged, "id": 0}))
        new_rows = [*rows[:3], forged, *rows[3:]]
        for new_id, row in enumerate(new_rows, start=1):
            conn.execute(insert(A), {**row, "id": new_id})
        result = verify_chain(conn)
    assert (result.ok, result.problem, result.entry_id) == (False, "inserted", 4)
    assert ids  # the original ids were 1..6


def test_appended_entry_detected(store_engine: Engine) -> None:
    """A correctly chained entry added behind the head's back is reported as 'inserted'."""
    _fill(store_engine)
    with store_engine.begin() as conn:
        last = conn.execute(select(A).order_by(A.c.id.desc()).limit(1)).one()._asdict()
        from juki_gateway.registry_store.audit import AuditRecord, entry_hash_of

        forged = dict(last, id=last["id"] + 1, prev_hash=last["entry_hash"], detail="x")
        forged["entry_hash"] = entry_hash_of(AuditRecord(**forged))
        conn.execute(insert(A), forged)
        result = verify_chain(conn)
    assert (result.ok, result.problem) == (False, "inserted")


def test_reordered_entries_detected(store_engine: Engine) -> None:
    """Swapping two entries' positions is reported as 'reordered'."""
    ids = _fill(store_engine)
    with store_engine.begin() as conn:
        conn.execute(update(A).where(A.c.id == ids[2]).values(id=-1))
        conn.execute(update(A).where(A.c.id == ids[3]).values(id=ids[2]))
        conn.execute(update(A).where(A.c.id == -1).values(id=ids[3]))
        result = verify_chain(conn)
    assert (result.ok, result.problem, result.entry_id) == (False, "reordered", ids[2])


def test_purge_moves_anchor_and_chain_still_verifies(store_engine: Engine) -> None:
    """Purging old entries (retention) keeps the rest verifiable; tampering is still caught."""
    ids = _fill(store_engine)
    with store_engine.begin() as conn:
        assert purge_audit_before(conn, T0 + dt.timedelta(minutes=2)) == 2
        assert verify_chain(conn).ok
        append_audit(conn, now=T0 + dt.timedelta(hours=1), operator_id="op9", terminal_id="t",
                     subject="s", action="a")
        assert verify_chain(conn).checked == 5
        conn.execute(delete(A).where(A.c.id == ids[2]))
        assert verify_chain(conn).problem == "deleted"


def test_concurrent_writers_keep_one_chain(store_engine: Engine) -> None:
    """Several writers appending at once (separate connections) never fork the chain."""
    import threading

    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for i in range(15):
                with store_engine.begin() as conn:
                    append_audit(conn, now=T0 + dt.timedelta(seconds=i), operator_id=name,
                                 terminal_id="t", subject=f"s{i}", action="flag_set")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"op{k}",)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with store_engine.begin() as conn:
        result = verify_chain(conn)
    assert result.ok and result.checked == 45
