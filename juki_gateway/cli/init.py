"""``juki-gateway init DIR [--topology NAME|PATH] [--port-base N] [--listen ADDR] [--force]``:
make a working directory."""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
from pathlib import Path
from typing import Any

from juki_gateway.errors import UsageError
from juki_gateway.gateway.config import DEFAULT_PORT_BASE, LOOPBACK
from juki_gateway.gateway.initdir import init_workdir
from juki_gateway.gateway.topology import DEFAULT_TOPOLOGY, builtin_topologies, load_topology
from juki_gateway.workdir import DEFAULT_WORKDIR


def register(sub: Any) -> None:
    """Add the ``init`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "init", help="create a working directory: gateway.toml, dev CA and certificates"
    )
    p.add_argument("dir", nargs="?", type=Path, default=DEFAULT_WORKDIR, metavar="DIR",
                   help=f"the working directory to create or complete (default {DEFAULT_WORKDIR})")
    p.add_argument("--topology", default=None, metavar="NAME|PATH",
                   help=f"which network: a shipped topology ({', '.join(builtin_topologies())}; "
                   f"default {DEFAULT_TOPOLOGY}) or a topology file (docs/topology.md)")
    p.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE, metavar="N",
                   help="endpoints listen on N+1, N+2, … (N+1..N+4 for kanazawa), admin N+10, "
                   "metrics N+20 (default 7100)")
    p.add_argument("--listen", default=LOOPBACK, metavar="ADDR",
                   help="address the endpoints and the metrics listener bind (default "
                        f"{LOOPBACK}; 0.0.0.0 in a container); the admin port stays on loopback")
    p.add_argument("--force", action="store_true", help="replace an existing config, CA and keys")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Create or complete the working directory."""
    topology = load_topology(args.topology if args.topology is not None else DEFAULT_TOPOLOGY)
    top = topology.max_offset()
    if not 0 < args.port_base <= 65535 - top:
        raise UsageError(f"--port-base {args.port_base} leaves no room for ports N+1..N+{top} "
                         f"(topology {topology.name}); use 1..{65535 - top}")
    try:
        ipaddress.ip_address(args.listen)
    except ValueError:
        raise UsageError(f"--listen {args.listen!r} is not an IP address") from None
    report = init_workdir(args.dir, dt.datetime.now(dt.UTC), port_base=args.port_base,
                          force=args.force, listen=args.listen,
                          topology=topology if args.topology is not None else None)
    for path in report.created:
        print(f"created {path}")
    if report.restricted:
        print(f"restricted {len(report.restricted)} file(s) and directories others could read "
              "to this account only (files 0600, directories 0700):")
        for path in report.restricted:
            print(f"  {path}")
    if report.kept:
        print(f"kept {len(report.kept)} existing file(s) (use --force to replace)")
    print(f"working directory ready: {args.dir}/gateway.toml (topology {topology.name}: "
          f"{len(topology.endpoints)} endpoints, {len(topology.links)} links)")
    return 0
