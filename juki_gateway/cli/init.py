"""``juki-gateway init DIR [--port-base N] [--force]``: make a working directory."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from juki_gateway.gateway.config import DEFAULT_PORT_BASE
from juki_gateway.gateway.initdir import init_workdir
from juki_gateway.workdir import DEFAULT_WORKDIR


def register(sub: Any) -> None:
    """Add the ``init`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "init", help="create a working directory: gateway.toml, dev CA and certificates"
    )
    p.add_argument("dir", nargs="?", type=Path, default=DEFAULT_WORKDIR, metavar="DIR",
                   help=f"the working directory to create or complete (default {DEFAULT_WORKDIR})")
    p.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE, metavar="N",
                   help="endpoints listen on N+1..N+4, admin N+10, metrics N+20 (default 7100)")
    p.add_argument("--force", action="store_true", help="replace an existing config, CA and keys")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Create or complete the working directory."""
    if not 0 < args.port_base < 65535 - 20:
        from juki_gateway.errors import UsageError

        raise UsageError(f"--port-base {args.port_base} leaves no room for ports N+1..N+20")
    report = init_workdir(args.dir, dt.datetime.now(dt.UTC), port_base=args.port_base,
                          force=args.force)
    for path in report.created:
        print(f"created {path}")
    if report.restricted:
        print(f"restricted {len(report.restricted)} file(s) and directories others could read "
              "to this account only (files 0600, directories 0700):")
        for path in report.restricted:
            print(f"  {path}")
    if report.kept:
        print(f"kept {len(report.kept)} existing file(s) (use --force to replace)")
    print(f"working directory ready: {args.dir}/gateway.toml")
    return 0
