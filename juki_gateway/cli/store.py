"""``juki-gateway store migrate|backup|restore``: schema upgrades and SQLite backups."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError

from juki_gateway.cli.storeopts import (
    add_operator_option,
    add_store_arguments,
    anchor_paths,
    audit_key_of,
    open_store,
    operator_of,
    store_url_from_args,
    utc_now,
)
from juki_gateway.registry_store.audit import append_audit
from juki_gateway.registry_store.backup import backup_sqlite, restore_sqlite
from juki_gateway.registry_store.engine import StoreUnavailable
from juki_gateway.registry_store.migrate import current_revision, upgrade


def register(subparsers: Any) -> None:
    """Add ``store`` and its sub-commands."""
    store = subparsers.add_parser("store", help="registry store: migrate, backup, restore")
    sub = store.add_subparsers(dest="store_command", metavar="ACTION", required=True)

    migrate = sub.add_parser("migrate", help="create or upgrade the store's schema")
    add_store_arguments(migrate)
    migrate.set_defaults(func=_migrate)

    backup = sub.add_parser("backup", help="write an online, consistent copy of a SQLite store")
    add_store_arguments(backup)
    backup.add_argument("file", type=Path, metavar="FILE", help="where to write the copy")
    backup.set_defaults(func=_backup)

    restore = sub.add_parser("restore", help="replace a SQLite store with a backup (daemon stopped)")
    add_store_arguments(restore)
    restore.add_argument("file", type=Path, metavar="FILE", help="the backup to restore")
    add_operator_option(restore)
    restore.set_defaults(func=_restore)


def _migrate(args: argparse.Namespace) -> int:
    url = store_url_from_args(args)
    try:
        upgrade(url)
    except OperationalError as exc:
        raise StoreUnavailable(f"cannot migrate the store: {exc.orig}") from None
    with open_store(args) as engine:
        print(f"store at schema {current_revision(engine)}")
    return 0


def _backup(args: argparse.Namespace) -> int:
    with open_store(args):
        size = backup_sqlite(store_url_from_args(args), args.file)
    print(f"backup written to {args.file} ({size} bytes)")
    return 0


def _restore(args: argparse.Namespace) -> int:
    restore_sqlite(store_url_from_args(args), args.file)
    print(f"store restored from {args.file}")
    # A restore rolls the audit chain back on purpose: the checkpoints written since would
    # (rightly) report it as cut. They are kept aside, and the restore itself is audited.
    _key, checkpoints = anchor_paths(args)
    if checkpoints.exists():
        aside = checkpoints.with_name(
            f"{checkpoints.name}.before-restore-{utc_now():%Y%m%dT%H%M%S}")
        checkpoints.rename(aside)
        print(f"audit checkpoints of the replaced store kept as {aside}")
    with open_store(args) as engine, engine.begin() as conn:
        append_audit(conn, now=utc_now(), operator_id=operator_of(args), terminal_id="cli",
                     subject="store", action="store.restore", detail={"from": args.file.name},
                     key=audit_key_of(args))
    return 0
