"""``juki-gateway maintenance on|off|status``: take the node out of service for a load balancer.

While on, ``/health`` answers 503 whatever its checks say. The switch is recorded in the audit
trail (R6: every operator action) when the store is migrated; the flag itself is a file in the
working directory, so the command works while the daemon runs or is stopped.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from juki_gateway.cli.storeopts import (
    add_operator_arguments,
    add_store_arguments,
    audit_switch,
    operator_of,
)
from juki_gateway.gateway.health import read_maintenance, set_maintenance
from juki_gateway.workdir import config_path_from


def register(sub: Any) -> None:
    """Add the ``maintenance`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "maintenance", help="switch maintenance mode (/health answers 503) on or off"
    )
    p.add_argument("state", choices=("on", "off", "status"),
                   help="on: /health answers 503; off: back in service; status: show it")
    add_operator_arguments(p)
    add_store_arguments(p)
    p.set_defaults(func=run)


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
    operator = operator_of(args)
    set_maintenance(workdir, args.state == "on", now=now, reason=args.reason, operator=operator)
    audited = audit_switch(args, operator=operator, now=now, subject="gateway",
                           action=f"maintenance_{args.state}")
    print(f"maintenance: {args.state}" + ("" if audited else " (store not migrated: not audited)"))
    return 0
