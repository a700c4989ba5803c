"""``juki-gateway conformance --role ROLE --target HOST:PORT --ca … --cert … --key …``.

Runs the conformance cases of ROLE (rules R1–R12 that apply to it) against any implementation
and prints a text report; ``--junit FILE`` also writes JUnit XML. Exit status 0 when no case
failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add the ``conformance`` sub-command."""
    from juki_gateway.simulators.conformance import ROLE_DEFAULTS

    p: argparse.ArgumentParser = sub.add_parser(
        "conformance", help="run the conformance suite of a role against an implementation")
    p.add_argument("--role", required=True, choices=sorted(ROLE_DEFAULTS))
    p.add_argument("--target", required=True, metavar="HOST:PORT")
    p.add_argument("--ca", required=True, type=Path, help="CA certificate the target's chains to")
    p.add_argument("--cert", required=True, type=Path, help="certificate of a peer the target accepts")
    p.add_argument("--key", required=True, type=Path, help="its private key")
    p.add_argument("--server-name", help="the target's node name (default by role, e.g. cs-172014)")
    p.add_argument("--pki", type=Path, metavar="DIR",
                   help="directory with the CA's ca.key, to issue throwaway refusal-case certificates")
    p.add_argument("--flagged-fugo", metavar="FUGO",
                   help="intermediate: the 符号 of a person flagged on the target")
    p.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the suite and report."""
    import juki_gateway.simulators.conformance_ims  # noqa: F401  (registers the ims cases)
    from juki_gateway.cli.simulate import run_on_reactor
    from juki_gateway.errors import UsageError
    from juki_gateway.extras import require
    from juki_gateway.simulators.client import Identity
    from juki_gateway.simulators.conformance import (
        CASES,
        ROLE_DEFAULTS,
        Suite,
        Target,
        junit_xml,
        parse_target,
        render_text,
    )

    require("faker")  # the suite's peers draw residents: a missing 'sim' extra is one line
    for path in (args.ca, args.cert, args.key):
        if not path.is_file():
            raise UsageError(f"no such file: {path}")
    host, port = parse_target(args.target)
    peer_name = args.cert.stem
    target = Target(
        role=args.role, host=host, port=port,
        server_name=args.server_name or ROLE_DEFAULTS[args.role][0],
        peer=Identity(peer_name, args.cert, args.key, args.ca), pki=args.pki,
        flagged_fugo=args.flagged_fugo,
    )

    async def work(reactor: Any) -> Any:
        return await Suite(reactor, target).run(CASES)

    results = run_on_reactor(work)
    print(render_text(target, results))
    if args.junit is not None:
        args.junit.parent.mkdir(parents=True, exist_ok=True)
        args.junit.write_bytes(junit_xml(target, results))
        print(f"JUnit XML written to {args.junit}")
    return 1 if any(r.status == "fail" for r in results) else 0
