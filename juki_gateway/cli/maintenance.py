"""``juki-gateway maintenance on|off|status``: take the node out of service for a load balancer.

While on, ``/health`` answers 503 whatever its checks say. The switch is recorded in the audit
trail (R6: every operator action) when the store is migrated; the flag itself is a file in the
working directory, so the command works while the daemon runs or is stopped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
from typing import Any

from juki_gateway.gateway.health import read_maintenance, set_maintenance
from juki_gateway.registry_store.cliutil import add_store_arguments
from juki_gateway.workdir import config_path_from


def register(sub: Any) -> None:
    """Add the ``maintenance`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "maintenance", help="switch maintenance mode (/health answers 503) on or off"
    )
    p.add_argument("state", choices=("on", "off", "status"))
    p.add_argument("--reason", default="", help="why (shown in /health and the audit trail)")
    p.add_argument("--operator", default=None, metavar="ID",
                   help="operator id for the audit trail (default: the login name)")
    add_store_arguments(p)
    p.set_defaults(func=run)


def _audit(args: argparse.Namespace, operator: str, now: dt.datetime) -> bool:
    from juki_gateway.registry_store.audit import append_audit
    from juki_gateway.registry_store.cliutil import open_store
    from juki_gateway.registry_store.engine import StoreError

    try:
        with open_store(args) as engine, engine.begin() as conn:
            append_audit(conn, now=now.replace(tzinfo=None), operator_id=operator,
                         terminal_id="cli", subject="gateway", action=f"maintenance_{args.state}",
                         detail={"reason": args.reason})
    except StoreError:
        return False
    return True


def run(args: argparse.Namespace) -> int:
    """Switch or show maintenance mode of the working directory of ``--config``."""
    workdir = config_path_from(args).resolve().parent
    if not workdir.is_dir():
        from juki_gateway.errors import UsageError

        raise UsageError(f"no working directory at {workdir}: run 'juki-gateway init' first")
    if args.state == "status":
        m = read_maintenance(workdir)
        print("maintenance: off" if m is None else
              f"maintenance: on since {m.since} by {m.operator or '?'}: {m.reason or '-'}")
        return 0
    now = dt.datetime.now(dt.UTC)
    operator = args.operator or getpass.getuser()
    set_maintenance(workdir, args.state == "on", now=now, reason=args.reason, operator=operator)
    audited = _audit(args, operator, now)
    print(f"maintenance: {args.state}" + ("" if audited else " (store not migrated: not audited)"))
    return 0
