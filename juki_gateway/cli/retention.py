"""``juki-gateway retention run [--as-of DATE] [--dry-run] [--db URL]``: purge what is past its
period, in every store of the working directory.

Without ``--db`` the command covers each store ``gateway.toml`` names: the registry store
(``[store] url``) and every hosted Juki-net node's (``[jukinet.<endpoint>] store_url``), one
after the other, printing a block per store; a node store that does not exist yet (its node
never ran) is said so and skipped. ``--db URL`` runs on that one store. The periods are the
configuration's ``[retention]`` (the rules' own without one); the day is today in JST.
"""

from __future__ import annotations

import argparse
import socket
import sys
from typing import Any

from juki_gateway.cli.storeopts import (
    add_operator_option,
    add_store_arguments,
    audit_key_of,
    open_store,
    operator_of,
    parse_date,
    utc_now,
)
from juki_gateway.errors import JukiError, UsageError, exit_code_for
from juki_gateway.registry_store.engine import sqlite_path
from juki_gateway.registry_store.retention import (
    DEFAULT_POLICY,
    RetentionPolicy,
    RetentionReport,
    jst_date,
    run_retention,
)
from juki_gateway.workdir import config_path_from


def register(subparsers: Any) -> None:
    """Add ``retention run``."""
    retention = subparsers.add_parser("retention", help="purge data past its retention period")
    sub = retention.add_subparsers(dest="retention_command", metavar="ACTION", required=True)
    run = sub.add_parser(
        "run", help="purge (or with --dry-run count) what is due, in every store of the "
        "configuration (registry and Juki-net nodes) or in the one --db names")
    add_store_arguments(run)
    run.add_argument("--as-of", type=parse_date, metavar="DATE",
                     help="purge as if today were DATE (default: today, JST)")
    run.add_argument("--dry-run", action="store_true", help="print what would be purged")
    add_operator_option(run)
    run.set_defaults(func=_run)


def _stores(args: argparse.Namespace) -> tuple[dict[str, str], RetentionPolicy]:
    """The stores of the configuration by name (empty: the one store ``--db`` names, or the
    default one when there is no configuration) and the configuration's periods."""
    path = config_path_from(args)
    config = None
    if path.exists():
        from juki_gateway.gateway.config import load_config

        config = load_config(path)
    policy = config.retention.policy if config is not None else DEFAULT_POLICY
    if getattr(args, "db", None) or config is None:
        return {}, policy
    stores = config.stores()
    if args.store is not None:
        if args.store not in stores:
            raise UsageError(f"no store {args.store!r} in {path}: one of {', '.join(stores)}")
        return {args.store: stores[args.store]}, policy
    return stores, policy


def _purge(args: argparse.Namespace, policy: RetentionPolicy) -> RetentionReport:
    now = utc_now()
    as_of = args.as_of or jst_date(now)
    with open_store(args) as engine, engine.begin() as conn:
        return run_retention(conn, as_of, policy=policy, dry_run=args.dry_run, now=now,
                             operator_id=operator_of(args), terminal_id=socket.gethostname()[:32],
                             key=audit_key_of(args))


def _print(report: RetentionReport, dry_run: bool, indent: str = "") -> None:
    print(f"{indent}retention as of {report.as_of.isoformat()}{' (dry run)' if dry_run else ''}:")
    for line in report.lines():
        print(f"{indent}  {line}")


def _run(args: argparse.Namespace) -> int:
    stores, policy = _stores(args)
    if not stores:  # --db, or no configuration: the one store as before
        _print(_purge(args, policy), args.dry_run)
        return 0
    status = 0
    for name, url in stores.items():
        path = sqlite_path(url)
        if name != "registry" and path is not None and not path.exists():
            print(f"{name}: no store at {path} (its node has not run): nothing to purge")
            continue
        print(f"{name}:")
        try:
            report = _purge(argparse.Namespace(**{**vars(args), "db": None, "store": name}),
                            policy)
        except JukiError as exc:  # this store fails; the others are still purged
            print(f"juki-gateway: error [{exc.code}]: {name}: {exc.message}", file=sys.stderr)
            status = max(status, exit_code_for(exc))
            continue
        _print(report, args.dry_run, indent="  ")
    return status
