"""The background WAL checkpointer of SQLite stores: bounded WAL, intact data, clean stop."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from pathlib import Path

from sqlalchemy import text

from juki_gateway.registry_store.checkpoint import pending_frames
from juki_gateway.registry_store.engine import create_store_engine, wal_checkpointer
from juki_gateway.registry_store.migrate import upgrade
from juki_gateway.registry_store.residents import apply_honnin_kakunin, get_current
from juki_gateway.registry_store.synthetic import make_resident

NOW = dt.datetime(2026, 4, 1, 9, 0, 0)


def test_wal_stays_bounded_and_data_survives_the_checkpoints(tmp_path: Path) -> None:
    """Under a write loop the WAL is restarted near its bound, and every change is in the file."""
    db = tmp_path / "registry.sqlite3"
    url = f"sqlite:///{db}"
    upgrade(url)
    bound = 512 * 1024
    engine = create_store_engine(url, wal_restart_bytes=bound, wal_passive_frames=16)
    checkpointer = wal_checkpointer(engine)
    assert checkpointer is not None
    biggest = 0
    for k in range(1, 151):  # ~40 KB of WAL per transaction: several restarts
        rows = [dataclasses.replace(make_resident(n), seq=k, address=f"石川県金沢市本町{k}")
                for n in range(1, 9)]
        with engine.begin() as conn:
            apply_honnin_kakunin(conn, rows, NOW)
        biggest = max(biggest, checkpointer.wal_size())
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    assert checkpointer.running and checkpointer.errors == 0
    assert checkpointer.passive_runs > 0 and checkpointer.restart_runs > 0
    assert biggest < 4 * bound
    engine.dispose()  # stops the thread after a final TRUNCATE checkpoint
    assert not checkpointer.running
    assert checkpointer.wal_size() == 0
    raw = sqlite3.connect(db)
    try:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert raw.execute("SELECT count(*) FROM honnin_kakunin_history").fetchone() == (149 * 8,)
        assert raw.execute("SELECT min(seq), max(seq) FROM honnin_kakunin").fetchone() == (150, 150)
    finally:
        raw.close()


def test_small_commits_wait_for_enough_frames(tmp_path: Path) -> None:
    """A few one-row commits stay in the WAL (no checkpoint each); the shm header counts them."""
    db = tmp_path / "registry.sqlite3"
    url = f"sqlite:///{db}"
    upgrade(url)
    engine = create_store_engine(url)
    checkpointer = wal_checkpointer(engine)
    assert checkpointer is not None
    for k in range(1, 6):
        with engine.begin() as conn:
            apply_honnin_kakunin(conn, [dataclasses.replace(make_resident(1), seq=k)], NOW)
    pending = pending_frames(Path(f"{db}-shm"))
    assert pending is not None and 5 <= pending < checkpointer.passive_frames
    assert checkpointer.passive_runs == 0
    engine.dispose()
    assert checkpointer.wal_size() == 0


def test_engine_restarts_its_checkpointer_after_dispose(tmp_path: Path) -> None:
    """An engine used again after dispose() checkpoints again, and stops again cleanly."""
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    upgrade(url)
    engine = create_store_engine(url)
    checkpointer = wal_checkpointer(engine)
    assert checkpointer is not None
    with engine.begin() as conn:
        apply_honnin_kakunin(conn, [make_resident(1)], NOW)
    engine.dispose()
    assert not checkpointer.running
    with engine.begin() as conn:
        apply_honnin_kakunin(conn, [dataclasses.replace(make_resident(1), seq=2)], NOW)
    assert checkpointer.running
    engine.dispose()
    assert not checkpointer.running
    with engine.begin() as conn:
        current = get_current(conn, make_resident(1).juminhyo_code)
        assert current is not None and current.seq == 2
    engine.dispose()


def test_autocheckpoint_mode_keeps_sqlites_checkpoint(tmp_path: Path) -> None:
    """checkpoint="autocheckpoint" has no checkpointer thread and SQLite's default in-commit one."""
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    engine = create_store_engine(url, checkpoint="autocheckpoint")
    try:
        assert wal_checkpointer(engine) is None
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 1000
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    finally:
        engine.dispose()
