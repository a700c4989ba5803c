"""The hash-chained audit log: appends, listing, and detection of each kind of tampering."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from juki_gateway.registry_store.anchor import (
    AnchorKeyError,
    AuditKey,
    CheckpointError,
    append_checkpoint,
    ensure_key,
    load_key,
    read_checkpoints,
    retired_keys,
    rotate_key,
)
from juki_gateway.registry_store.audit import (
    append_audit,
    head_state,
    list_audit,
    purge_audit_before,
    verify_chain,
)
from juki_gateway.registry_store.models import AuditChainHead, AuditEntry, table_of

T0 = dt.datetime(2026, 4, 1, 9, 0, 0)
A = table_of(AuditEntry)
KEY = AuditKey(bytes(range(32)))


def _fill(engine: Engine, n: int = 6) -> list[int]:
    ids = []
    with engine.begin() as conn:
        for i in range(n):
            rec = append_audit(conn, now=T0 + dt.timedelta(minutes=i), operator_id=f"op{i % 2}",
                               terminal_id="t01", subject=f"atena-{i % 3}", action="flag_set",
                               detail={"i": i, "note": "自動応答不可"}, key=KEY)
            ids.append(rec.id)
    return ids


def test_untouched_chain_verifies(store_engine: Engine) -> None:
    """A log written only through append_audit verifies, entry by entry."""
    _fill(store_engine)
    with store_engine.begin() as conn:
        result = verify_chain(conn, keys=[KEY])
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
        assert purge_audit_before(conn, T0 + dt.timedelta(minutes=2), key=KEY) == 2
        assert verify_chain(conn, keys=[KEY]).ok
        append_audit(conn, now=T0 + dt.timedelta(hours=1), operator_id="op9", terminal_id="t",
                     subject="s", action="a", key=KEY)
        assert verify_chain(conn, keys=[KEY]).checked == 5
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
                                 terminal_id="t", subject=f"s{i}", action="flag_set", key=KEY)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"op{k}",)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with store_engine.begin() as conn:
        result = verify_chain(conn, keys=[KEY])
    assert result.ok and result.checked == 45


# -- the anchor outside the database -------------------------------------------------------------

H = table_of(AuditChainHead)


def _rewrite_head_to(conn: Connection, last_id: int) -> None:
    """What an insider with the database does: cut the chain after ``last_id`` and make the head
    row consistent with what is left (the hash chain alone then verifies)."""
    conn.execute(delete(A).where(A.c.id > last_id))
    last_hash = conn.execute(select(A.c.entry_hash).where(A.c.id == last_id)).scalar_one()
    count = conn.execute(select(func.count()).select_from(A)).scalar_one()
    conn.execute(update(H).values(last_id=last_id, last_hash=last_hash, entry_count=count))


def test_cut_tail_with_a_consistent_head_is_caught_by_the_anchor(store_engine: Engine) -> None:
    """Cutting the newest entries and rewriting the head passes the bare hash chain, but not the
    head's MAC."""
    ids = _fill(store_engine)
    with store_engine.begin() as conn:
        _rewrite_head_to(conn, ids[3])
        assert verify_chain(conn).ok  # the weakness the anchor closes
        result = verify_chain(conn, keys=[KEY])
    assert (result.ok, result.problem) == (False, "head_rewritten")


def test_forged_append_with_a_moved_head_is_caught(store_engine: Engine) -> None:
    """An entry appended with a correct hash link and the head moved past it: the MAC, computed
    without the key, cannot be right."""
    _fill(store_engine)
    with store_engine.begin() as conn:
        append_audit(conn, now=T0 + dt.timedelta(hours=2), operator_id="intruder",
                     terminal_id="t", subject="x", action="flag_clear", key=AuditKey(b"\x07" * 32))
        assert verify_chain(conn).ok
        result = verify_chain(conn, keys=[KEY])
    assert (result.ok, result.problem) == (False, "head_rewritten")
    assert "not with the current anchor key" in result.message


def test_head_written_without_the_key_is_reported_unanchored(store_engine: Engine) -> None:
    """A writer without the key (or a MAC set to NULL) leaves the head unanchored."""
    _fill(store_engine)
    with store_engine.begin() as conn:
        conn.execute(update(H).values(head_mac=None))
        result = verify_chain(conn, keys=[KEY])
    assert (result.ok, result.problem) == (False, "unanchored")


def test_rollback_to_a_genuine_old_head_is_caught_by_a_checkpoint(store_engine: Engine,
                                                                   tmp_path: Path) -> None:
    """An old head row with its genuine MAC, put back after deleting newer entries, passes the
    MAC check; a checkpoint written since catches it. Checkpoints are MAC-checked too."""
    ids = _fill(store_engine, 4)
    with store_engine.begin() as conn:
        old_head = conn.execute(select(H)).one()._asdict()
    cp_file = tmp_path / "audit-checkpoints.jsonl"
    with store_engine.begin() as conn:
        for i in range(2):
            append_audit(conn, now=T0 + dt.timedelta(hours=1, minutes=i), operator_id="op",
                         terminal_id="t", subject="s", action="flag_set", key=KEY)
        state, mac = head_state(conn) or (None, None)
        assert state is not None and mac is not None
    append_checkpoint(cp_file, state, mac, T0)
    checkpoints = read_checkpoints(cp_file, [KEY])
    with store_engine.begin() as conn:
        assert verify_chain(conn, keys=[KEY], checkpoints=checkpoints).ok
        conn.execute(delete(A).where(A.c.id > ids[-1]))
        conn.execute(update(H).values(**old_head))
        assert verify_chain(conn, keys=[KEY]).ok  # the replayed head's MAC is genuine
        result = verify_chain(conn, keys=[KEY], checkpoints=checkpoints)
    assert (result.ok, result.problem) == (False, "cut")
    assert f"saw entry {state.last_id}" in result.message
    forged = cp_file.read_text().replace(f'"last_id": {state.last_id}', '"last_id": 2')
    cp_file.write_text(forged)
    with pytest.raises(CheckpointError, match="line 1 has a MAC that does not verify"):
        read_checkpoints(cp_file, [KEY])


def test_purge_keeps_checkpoints_valid(store_engine: Engine, tmp_path: Path) -> None:
    """A checkpoint naming an entry that retention purged since is no alarm."""
    _fill(store_engine)
    cp_file = tmp_path / "cp.jsonl"
    with store_engine.begin() as conn:
        found = head_state(conn)
        assert found is not None and found[1] is not None
        append_checkpoint(cp_file, found[0], found[1], T0)
        append_audit(conn, now=T0 + dt.timedelta(days=1), operator_id="op", terminal_id="t",
                     subject="s", action="a", key=KEY)
        assert purge_audit_before(conn, T0 + dt.timedelta(hours=1), key=KEY) == 6
        result = verify_chain(conn, keys=[KEY], checkpoints=read_checkpoints(cp_file, [KEY]))
    assert result.ok and result.checked == 1


def test_key_file_rules(tmp_path: Path) -> None:
    """The key is 64 hex digits in a file only this account can read; a missing key says how to
    make one; ensure_key never overwrites; rotation keeps the old key as retired."""
    path = tmp_path / "audit-anchor.key"
    with pytest.raises(AnchorKeyError, match="audit anchor --new-key"):
        load_key(path)
    assert ensure_key(path) and not ensure_key(path)
    key = load_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o640)
    with pytest.raises(AnchorKeyError, match="readable by others"):
        load_key(path)
    path.chmod(0o600)
    old, new = rotate_key(path)
    assert old == key and load_key(path) == new and retired_keys(path) == [key]
    path.write_text("not a key\n")
    with pytest.raises(AnchorKeyError, match="64 hexadecimal"):
        load_key(path)
