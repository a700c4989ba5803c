"""``juki-gateway audit verify|list``: check the hash chain (R6) and print audit entries."""

from __future__ import annotations

import argparse
from typing import Any

from juki_gateway.cli.storeopts import add_store_arguments, open_store, parse_datetime
from juki_gateway.registry_store.audit import list_audit, verify_chain


def register(subparsers: Any) -> None:
    """Add ``audit`` and its sub-commands."""
    audit = subparsers.add_parser("audit", help="tamper-evident audit log")
    sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    verify = sub.add_parser("verify", help="walk the hash chain; exit 1 at the first bad entry")
    add_store_arguments(verify)
    verify.set_defaults(func=_verify)

    lst = sub.add_parser("list", help="print entries (tab-separated, chain order)")
    add_store_arguments(lst)
    lst.add_argument("--since", type=parse_datetime, metavar="DATE[THH:MM]",
                     help="entries at or after this time (UTC)")
    lst.add_argument("--operator", metavar="ID", help="only this operator's entries")
    lst.add_argument("--subject", metavar="ID", help="only entries about this subject")
    lst.set_defaults(func=_list)


def _verify(args: argparse.Namespace) -> int:
    with open_store(args) as engine, engine.begin() as conn:
        result = verify_chain(conn)
    if result.ok:
        print(f"audit chain ok: {result.checked} entries verified")
        return 0
    print(f"audit chain BROKEN ({result.problem}) at entry {result.entry_id}: {result.message}")
    print(f"{result.checked} entries before it verified")
    return 1


def _list(args: argparse.Namespace) -> int:
    with open_store(args) as engine, engine.begin() as conn:
        for rec in list_audit(conn, since=args.since, operator_id=args.operator,
                              subject=args.subject):
            print("\t".join([str(rec.id), rec.occurred_at.isoformat(timespec="seconds") + "Z",
                             rec.operator_id, rec.terminal_id, rec.subject, rec.action,
                             rec.detail]))
    return 0
