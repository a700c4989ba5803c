"""``juki-gateway link hold|release|status``: cut and restore the daemon's Juki-net links.

``hold NAME`` drops the link's connection and keeps it down (the sending node queues in its
outbox); ``release NAME`` lets it reconnect, and the node resends from the first unacknowledged
更新順番号. The switch is a file in the working directory (see
:mod:`juki_gateway.gateway.linkcontrol`), read by a running daemon within a fraction of a
second and kept across restarts. Each switch is recorded in the audit trail (R6) when the store
is migrated.
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
from juki_gateway.errors import UsageError
from juki_gateway.gateway.linkcontrol import read_held, set_held
from juki_gateway.workdir import config_path_from


def register(sub: Any) -> None:
    """Add the ``link`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "link", help="hold (cut) or release (restore) one of the daemon's Juki-net links")
    p.add_argument("action", choices=("hold", "release", "status"),
                   help="hold: cut the link and keep it down; release: let it reconnect; "
                        "status: every link's state")
    p.add_argument("name", nargs="?", help="link name as in gateway.toml, e.g. cs-172014->pref-17")
    add_operator_arguments(p)
    add_store_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Switch or show the held links of the working directory of ``--config``."""
    from juki_gateway.gateway.config import load_config

    path = config_path_from(args)
    config = load_config(path)
    if args.action == "status":
        held = read_held(config.workdir)
        if not config.links:
            print("none")
        for link in config.links:
            h = held.get(link.name)
            print(f"{link.name}: " + ("in service" if h is None else
                                      f"held since {h.since} by {h.operator or '?'}: {h.reason or '-'}"))
        return 0
    names = [link.name for link in config.links]
    if args.name is None:
        raise UsageError(f"link {args.action} needs the NAME of a link (links: "
                         f"{', '.join(names) or 'none'})")
    if args.name not in names:
        raise UsageError(f"no link named {args.name!r} in {path} (links: {', '.join(names) or 'none'})")
    now = dt.datetime.now(dt.UTC)
    operator = operator_of(args)
    set_held(config.workdir, args.name, args.action == "hold", now=now, reason=args.reason,
             operator=operator)
    audited = audit_switch(args, operator=operator, now=now, subject=args.name,
                           action=f"link_{args.action}")
    print(f"link {args.name}: {'held' if args.action == 'hold' else 'released'}"
          + ("" if audited else " (store not migrated: not audited)"))
    return 0
