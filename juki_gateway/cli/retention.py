"""``juki-gateway retention run [--as-of DATE] [--dry-run]``: purge what is past its period."""

from __future__ import annotations

import argparse
import socket
from typing import Any

from juki_gateway.cli.storeopts import (
    add_store_arguments,
    audit_key_of,
    open_store,
    parse_date,
    utc_now,
)
from juki_gateway.registry_store.retention import run_retention


def register(subparsers: Any) -> None:
    """Add ``retention run``."""
    retention = subparsers.add_parser("retention", help="purge data past its retention period")
    sub = retention.add_subparsers(dest="retention_command", metavar="ACTION", required=True)
    run = sub.add_parser("run", help="purge (or with --dry-run count) what is due")
    add_store_arguments(run)
    run.add_argument("--as-of", type=parse_date, metavar="DATE",
                     help="purge as if today were DATE (default: today, UTC)")
    run.add_argument("--dry-run", action="store_true", help="print what would be purged")
    run.add_argument("--operator", default="cli", metavar="ID",
                     help="operator id recorded in the audit log (default: cli)")
    run.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    now = utc_now()
    as_of = args.as_of or now.date()
    with open_store(args) as engine, engine.begin() as conn:
        report = run_retention(conn, as_of, dry_run=args.dry_run, now=now,
                               operator_id=args.operator, terminal_id=socket.gethostname()[:32],
                               key=audit_key_of(args))
    print(f"retention as of {as_of.isoformat()}{' (dry run)' if args.dry_run else ''}:")
    for line in report.lines():
        print(f"  {line}")
    return 0
