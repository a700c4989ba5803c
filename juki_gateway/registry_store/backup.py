"""Online backup and restore of the SQLite store, with the sqlite3 backup API.

``backup_sqlite`` copies a consistent snapshot while the daemon keeps running (the backup API
reads under a shared lock page by page and restarts if a writer changes a page it already
copied); the copy is written to a temporary file beside the target and renamed into place, so a
crash never leaves a half-written backup under the target name. ``restore_sqlite`` checks that
the file is an intact registry store (``PRAGMA integrity_check``, the Alembic version table) and
copies it over the live database through the same API, under the database's write lock.
PostgreSQL stores are backed up with ``pg_dump`` (see docs/store.md). Blocking: CLI only.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from juki_gateway.registry_store.engine import SQLITE_BUSY_TIMEOUT_MS, StoreError, sqlite_path


class BackupError(StoreError):
    """A backup or restore cannot be made (the message says why)."""

    code = "backup_failed"
    wire_code = 9120


def _db_file(url: str) -> Path:
    path = sqlite_path(url)
    if path is None:
        raise BackupError(
            "store backup/restore works on a SQLite store; for PostgreSQL use pg_dump/pg_restore "
            "(see docs/store.md)"
        )
    return path


def backup_sqlite(url: str, target: Path) -> int:
    """Write a consistent copy of the store to ``target``; returns its size in bytes."""
    source = _db_file(url)
    if not source.exists():
        raise BackupError(f"no store at {source}")
    if not target.parent.exists():
        raise BackupError(f"directory {target.parent} does not exist")
    tmp = target.with_name(f".{target.name}.partial")
    tmp.unlink(missing_ok=True)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # residents: 0600
    os.chmod(tmp, 0o600)
    src = sqlite3.connect(source, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    except sqlite3.Error as exc:
        tmp.unlink(missing_ok=True)
        raise BackupError(f"backup of {source} failed: {exc}") from None
    finally:
        src.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    return target.stat().st_size


def check_backup(path: Path) -> None:
    """Raise :class:`BackupError` unless ``path`` is an intact registry-store database."""
    if not path.is_file():
        raise BackupError(f"no backup file at {path}")
    with path.open("rb") as fh:
        if fh.read(16) != b"SQLite format 3\x00":
            raise BackupError(f"{path} is not a SQLite database")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        status = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if status != "ok":
            raise BackupError(f"{path} is damaged: {status}")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error as exc:
        raise BackupError(f"{path} cannot be read: {exc}") from None
    finally:
        conn.close()
    if not {"alembic_version", "audit_log", "honnin_kakunin"} <= tables:
        raise BackupError(f"{path} is not a registry-store backup (tables missing)")


def restore_sqlite(url: str, source: Path) -> None:
    """Replace the store's content with the backup at ``source`` (stop the daemon first)."""
    target = _db_file(url)
    check_backup(source)
    if not target.parent.exists():
        raise BackupError(f"directory {target.parent} does not exist")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            src.backup(dst)
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError(f"restore into {target} failed: {exc}") from None
    finally:
        src.close()
