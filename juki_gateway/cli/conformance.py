"""``juki-gateway conformance --role ROLE --target HOST:PORT --ca … --cert … --key …``.

Runs the conformance cases of ROLE (rules R1–R12 that apply to it) against any implementation
and prints a text report; ``--junit FILE`` also writes JUnit XML. The identity given must be a
conformance identity (docs/conformance.md says how to get one). Exit status 0 when no case
failed, 1 when one failed or the target could not be tested (unreachable, not TLS, refusing
the identity).
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
    p.add_argument("--role", required=True, choices=sorted(ROLE_DEFAULTS),
                   help="the role of the implementation under test")
    p.add_argument("--target", required=True, metavar="HOST:PORT",
                   help="where the implementation listens (mutual TLS)")
    p.add_argument("--ca", required=True, type=Path, help="CA certificate the target's chains to")
    p.add_argument("--cert", required=True, type=Path,
                   help="certificate of a conformance identity the target accepts (CN "
                        "conf-…; docs/conformance.md), never one of its real peers")
    p.add_argument("--key", required=True, type=Path, help="its private key")
    p.add_argument("--server-name", help="the target's node name (default by role, e.g. cs-172014)")
    p.add_argument("--municipality", metavar="CODE",
                   help="市町村コード of the synthetic records the R4 cases send (default: the "
                        "identity's own; required for a prefecture identity)")
    p.add_argument("--pki", type=Path, metavar="DIR",
                   help="directory with the CA's ca.key, to issue throwaway refusal-case certificates")
    p.add_argument("--flagged-fugo", metavar="FUGO",
                   help="intermediate: the 符号 of a person flagged on the target")
    p.add_argument("--timeout", type=float, default=8.0, metavar="SECONDS",
                   help="wait this long for a connection, a handshake or an answer (default 8)")
    p.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the suite and report."""
    import juki_gateway.simulators.conformance_ims  # noqa: F401  (registers the ims cases)
    from juki_gateway.cli.simulate import run_on_reactor
    from juki_gateway.codecs.layouts import FRAME_HEADER
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
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    if args.municipality is not None and not (len(args.municipality) == 6
                                              and args.municipality.isdigit()):
        raise UsageError(f"--municipality must be a 6-digit 市町村コード, got {args.municipality!r}")
    name = identity_name(args.cert)
    width = next(f.width for f in FRAME_HEADER.fields if f.name == "sender")
    if len(name) > width:
        raise UsageError(f"the identity's name {name!r} is longer than {width} characters, the "
                         "width of a frame's sender: issue it under a shorter name")
    target = Target(
        role=args.role, host=host, port=port,
        server_name=args.server_name or ROLE_DEFAULTS[args.role][0],
        peer=Identity(name, args.cert, args.key, args.ca), pki=args.pki,
        flagged_fugo=args.flagged_fugo, municipality=args.municipality, timeout=args.timeout,
    )

    async def work(reactor: Any) -> Any:
        return await Suite(reactor, target).run(CASES)

    results = run_on_reactor(work)
    print(render_text(target, results))
    if args.junit is not None:
        args.junit.parent.mkdir(parents=True, exist_ok=True)
        args.junit.write_bytes(junit_xml(target, results))
        print(f"JUnit XML written to {args.junit}")
    return 1 if any(r.status in ("fail", "error") for r in results) else 0


def identity_name(cert: Path) -> str:
    """The name a certificate speaks as (its CN), the file name when it carries none."""
    from juki_gateway.certs.identity import IdentityError, identity_from_certificate
    from juki_gateway.certs.pki import load_certificate

    try:
        return identity_from_certificate(load_certificate(cert)).name or cert.stem
    except IdentityError:
        return cert.stem
