"""``juki-gateway init DIR [--topology NAME|PATH] [--port-base N] [--listen ADDR] [--force]
[--daemon NAME=PATTERNS …] [--host NAME=ADDR …] [--store-url NODE=URL …]``: make a working
directory, for one daemon or split over several (``--daemon``; docs/topology.md)."""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
from pathlib import Path
from typing import Any

from juki_gateway.errors import UsageError
from juki_gateway.gateway.config import DEFAULT_PORT_BASE, LOOPBACK
from juki_gateway.gateway.initdir import InitReport, init_split, init_workdir
from juki_gateway.gateway.topology import DEFAULT_TOPOLOGY, builtin_topologies, load_topology
from juki_gateway.workdir import CONFIG_NAME, DEFAULT_WORKDIR


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
    p.add_argument("--daemon", action="append", default=[], metavar="NAME=PATTERNS",
                   help="split the topology: daemon NAME (its directory DIR/NAME) hosts the "
                   "endpoints matching PATTERNS, comma-separated names or globs "
                   "('pref-17,cs-17*'); repeat for each daemon")
    p.add_argument("--host", action="append", default=[], metavar="NAME=ADDR",
                   help="the address daemon NAME's endpoints listen on and the other daemons "
                   "reach them at (default 127.0.0.1)")
    p.add_argument("--store-url", action="append", default=[], metavar="NODE=URL",
                   help="the store of Juki-net node NODE (an SQLAlchemy URL, e.g. "
                   "postgresql+psycopg://gw@db/kiko) instead of its SQLite file")
    p.set_defaults(func=run)


def _pairs(values: list[str], option: str) -> list[tuple[str, str]]:
    """``NAME=VALUE`` options as pairs (one UsageError naming a malformed one)."""
    out = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name.strip() or not rest.strip():
            raise UsageError(f"{option} {value!r}: expected NAME=VALUE")
        out.append((name.strip(), rest.strip()))
    return out


def run(args: argparse.Namespace) -> int:
    """Create or complete the working directory."""
    topology = load_topology(args.topology if args.topology is not None else DEFAULT_TOPOLOGY)
    daemons = _pairs(args.daemon, "--daemon")
    hosts = dict(_pairs(args.host, "--host"))
    store_urls = dict(_pairs(args.store_url, "--store-url"))
    if hosts and not daemons:
        raise UsageError("--host names a daemon of a split: give the --daemon options too")
    if daemons and args.listen != LOOPBACK:
        raise UsageError("--listen is for one daemon; in a split, give each daemon's address "
                         "with --host NAME=ADDR")
    split = topology.split(daemons, hosts) if daemons else None
    top = split.max_offset() if split is not None else topology.max_offset()
    if not 0 < args.port_base <= 65535 - top:
        raise UsageError(f"--port-base {args.port_base} leaves no room for ports N+1..N+{top} "
                         f"(topology {topology.name}); use 1..{65535 - top}")
    try:
        ipaddress.ip_address(args.listen)
    except ValueError:
        raise UsageError(f"--listen {args.listen!r} is not an IP address") from None
    now = dt.datetime.now(dt.UTC)
    if split is None:
        report = init_workdir(args.dir, now, port_base=args.port_base, force=args.force,
                              listen=args.listen, store_urls=store_urls,
                              topology=topology if args.topology is not None else None)
    else:
        report = init_split(args.dir, now, port_base=args.port_base, topology=topology,
                            split=split, force=args.force, store_urls=store_urls)
    _print_report(report)
    if split is None:
        print(f"working directory ready: {args.dir}/{CONFIG_NAME} (topology {topology.name}: "
              f"{len(topology.endpoints)} endpoints, {len(topology.links)} links)")
        return 0
    print(f"working directory ready: {args.dir} (topology {topology.name} over "
          f"{len(split.daemons)} daemons sharing {args.dir}/pki):")
    for plan in split.daemons:
        admin, metrics = (args.port_base + off for off in split.offsets(plan))
        links = sum(1 for local, _peer in topology.links if split.owner.get(local) == plan.name)
        print(f"  {plan.name}: {len(plan.nodes)} endpoint(s) on {plan.host}, {links} link(s), "
              f"admin {admin}, metrics {metrics}: juki-gateway serve --config "
              f"{args.dir / plan.name / CONFIG_NAME}")
    unhosted = [e.name for e in topology.endpoints if e.name not in split.owner]
    if unhosted:
        print(f"  hosted by no daemon: {', '.join(unhosted)}")
    return 0


def _print_report(report: InitReport) -> None:
    for path in report.created:
        print(f"created {path}")
    if report.restricted:
        print(f"restricted {len(report.restricted)} file(s) and directories others could read "
              "to this account only (files 0600, directories 0700):")
        for path in report.restricted:
            print(f"  {path}")
    if report.kept:
        print(f"kept {len(report.kept)} existing file(s) (use --force to replace)")
