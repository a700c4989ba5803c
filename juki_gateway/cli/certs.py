"""``juki-gateway certs list|show|issue|revoke|crl``: the working directory's dev CA."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from cryptography import x509

from juki_gateway.certs.identity import IdentityError, PeerIdentity, identity_from_certificate
from juki_gateway.certs.pki import (
    CertificateAuthority,
    PkiError,
    fingerprint_sha256,
    load_certificate,
)
from juki_gateway.gateway.config import load_config
from juki_gateway.workdir import add_config_argument, config_path_from


def register(sub: Any) -> None:
    """Add the ``certs`` sub-commands."""
    p: argparse.ArgumentParser = sub.add_parser("certs", help="manage the development CA")
    csub = p.add_subparsers(dest="certs_command", metavar="ACTION", required=True)
    ls = csub.add_parser("list", help="every certificate issued, with its state")
    add_config_argument(ls)
    ls.set_defaults(func=cmd_list)
    show = csub.add_parser("show", help="one certificate's subject, SAN, validity, fingerprint")
    show.add_argument("name")
    add_config_argument(show)
    show.set_defaults(func=cmd_show)
    issue = csub.add_parser("issue", help="issue a certificate for an identity")
    issue.add_argument("name")
    issue.add_argument("--role", required=True)
    issue.add_argument("--org", required=True)
    issue.add_argument("--operator-role", action="append", default=[], dest="operator_roles")
    issue.add_argument("--days", type=int, default=30)
    issue.add_argument("--force", action="store_true", help="replace an existing key")
    add_config_argument(issue)
    issue.set_defaults(func=cmd_issue)
    revoke = csub.add_parser("revoke", help="revoke a certificate (by name or hex serial)")
    revoke.add_argument("name")
    revoke.add_argument("--reason", default="unspecified")
    add_config_argument(revoke)
    revoke.set_defaults(func=cmd_revoke)
    crl = csub.add_parser("crl", help="rewrite the CRL (endpoints reload it)")
    add_config_argument(crl)
    crl.set_defaults(func=cmd_crl)


def _ca(args: argparse.Namespace) -> CertificateAuthority:
    return CertificateAuthority.load(load_config(config_path_from(args)).pki_dir)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def cmd_list(args: argparse.Namespace) -> int:
    """Print the CA index as a table."""
    now = _now().strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = [("NAME", "ROLE", "ORG", "SERIAL", "NOT_AFTER", "STATE")]
    for c in _ca(args).issued():
        state = "revoked" if c.revoked_at else ("expired" if c.not_after < now else "valid")
        rows.append((c.name, c.role, c.org, format(c.serial, "x"), c.not_after, state))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Print one certificate's details."""
    ca = _ca(args)
    cert = load_certificate(ca.directory / f"{args.name}.pem")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    try:
        ident = identity_from_certificate(cert)
        who = f"{ident.role} {ident.org} {' '.join(ident.operator_roles)}".rstrip()
    except IdentityError as exc:
        who = f"(no identity: {exc.message})"
    print(f"name:       {args.name}")
    print(f"subject:    {cert.subject.rfc4514_string()}")
    print(f"issuer:     {cert.issuer.rfc4514_string()}")
    print(f"serial:     {cert.serial_number:x}")
    print(f"not_before: {cert.not_valid_before_utc.isoformat()}")
    print(f"not_after:  {cert.not_valid_after_utc.isoformat()}")
    print(f"identity:   {who}")
    print(f"san:        {', '.join(str(g.value) for g in san)}")
    print(f"sha256:     {fingerprint_sha256(cert)}")
    return 0


def cmd_issue(args: argparse.Namespace) -> int:
    """Issue a certificate and key for a new identity."""
    ca = _ca(args)
    try:
        ident = PeerIdentity(args.name, args.role, args.org, tuple(args.operator_roles))
        cert, _ = ca.issue(ident, _now(), days=args.days, dns_names=("localhost",),
                           overwrite=args.force)
    except IdentityError as exc:
        raise PkiError(exc.message) from None
    print(f"issued {args.name} serial {cert.serial_number:x} -> {ca.directory / args.name}.pem")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    """Revoke a certificate and rewrite the CRL."""
    ca = _ca(args)
    serials = ca.revoke(args.name, _now(), args.reason)
    print(f"revoked {', '.join(format(s, 'x') for s in serials)}; CRL rewritten")
    return 0


def cmd_crl(args: argparse.Namespace) -> int:
    """Rewrite (refresh) the CRL."""
    path = _ca(args).write_crl(_now())
    print(f"wrote {path}")
    return 0
