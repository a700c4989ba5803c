"""The store, audit and retention sub-commands end to end on a real store (both engines)."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update

from juki_gateway.cli import main
from juki_gateway.registry_store.audit import append_audit
from juki_gateway.registry_store.engine import create_store_engine
from juki_gateway.registry_store.models import AuditEntry, HonninKakunin, table_of
from juki_gateway.registry_store.residents import load_residents
from juki_gateway.registry_store.synthetic import make_resident

T0 = dt.datetime(2026, 4, 1, 9, 0, 0)


def _entries(engine: Engine, n: int = 4) -> None:
    with engine.begin() as conn:
        for i in range(n):
            append_audit(conn, now=T0 + dt.timedelta(hours=i), operator_id=f"op{i % 2}",
                         terminal_id="t01", subject=f"A{i}", action="hold_release")


def test_migrate_then_verify_and_list(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """store migrate creates the schema; audit verify passes and audit list filters."""
    assert main(["store", "migrate", "--db", store_url]) == 0
    engine = create_store_engine(store_url)
    _entries(engine)
    capsys.readouterr()
    assert main(["audit", "verify", "--db", store_url]) == 0
    assert "4 entries verified" in capsys.readouterr().out
    assert main(["audit", "list", "--db", store_url, "--operator", "op1",
                 "--since", "2026-04-01T10:30"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[4] for line in lines] == ["A3"]
    with engine.begin() as conn:
        a = table_of(AuditEntry)
        conn.execute(update(a).where(a.c.subject == "A2").values(action="hold_refuse"))
    assert main(["audit", "verify", "--db", store_url]) == 1
    out = capsys.readouterr().out
    assert "BROKEN (modified) at entry 3" in out
    engine.dispose()


def test_retention_cli_dry_run_and_run(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """retention run --dry-run prints counts and changes nothing; without it, it purges."""
    assert main(["store", "migrate", "--db", store_url]) == 0
    engine = create_store_engine(store_url)
    with engine.begin() as conn:
        append_audit(conn, now=dt.datetime(2010, 1, 1), operator_id="op", terminal_id="t",
                     subject="s", action="a")
    capsys.readouterr()
    assert main(["retention", "run", "--db", store_url, "--as-of", "2026-04-01", "--dry-run"]) == 0
    assert "audit_log: would purge 1" in capsys.readouterr().out
    assert main(["retention", "run", "--db", store_url, "--as-of", "2026-04-01"]) == 0
    assert "audit_log: purged 1" in capsys.readouterr().out
    assert main(["audit", "verify", "--db", store_url]) == 0
    engine.dispose()


def test_unmigrated_store_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Commands on a missing or empty store exit 3 with one line telling to run store migrate."""
    cfg = tmp_path / "gateway.toml"
    assert main(["audit", "verify", "--config", str(cfg)]) == 3
    err = capsys.readouterr().err
    assert "store migrate" in err and "Traceback" not in err
    create_store_engine(f"sqlite:///{tmp_path / 'registry.sqlite3'}").connect().close()
    assert main(["audit", "list", "--config", str(cfg)]) == 3
    assert "schema (empty)" in capsys.readouterr().err


def test_backup_online_and_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A backup taken while a writer commits is consistent; restore brings that state back."""
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    assert main(["store", "migrate", "--db", url]) == 0
    engine = create_store_engine(url)
    stop, first = threading.Event(), threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            with engine.begin() as conn:
                load_residents(conn, [make_resident(n * 100 + k) for k in range(100)], T0)
                append_audit(conn, now=T0, operator_id="w", terminal_id="t", subject=str(n),
                             action="load")
            first.set()
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert first.wait(timeout=30)
        backup = tmp_path / "backup.sqlite3"
        assert main(["store", "backup", "--db", url, str(backup)]) == 0
        assert backup.stat().st_mode & 0o777 == 0o600  # residents: this account only
    finally:
        stop.set()
        thread.join(timeout=30)
    copy = create_store_engine(f"sqlite:///{backup}")
    with copy.begin() as conn:
        residents = conn.execute(select(func.count()).select_from(table_of(HonninKakunin))).scalar()
        audits = conn.execute(select(func.count()).select_from(table_of(AuditEntry))).scalar()
    copy.dispose()
    assert audits and residents == 100 * audits  # every batch whole: 100 residents per audit entry
    assert main(["store", "restore", "--db", url, str(backup)]) == 0
    with engine.begin() as conn:
        assert conn.execute(select(func.count()).select_from(table_of(HonninKakunin))).scalar() == residents
    assert main(["audit", "verify", "--db", url]) == 0
    engine.dispose()


def test_backup_refuses_postgres(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """store backup on a PostgreSQL URL points to pg_dump instead of failing obscurely."""
    assert main(["store", "restore", "--db", "postgresql+psycopg://u@127.0.0.1:1/x",
                 str(tmp_path / "b")]) == 1
    assert "pg_dump" in capsys.readouterr().err
