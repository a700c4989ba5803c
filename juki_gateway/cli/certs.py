"""``juki-gateway certs list|show|issue|sign|revoke|crl``: the working directory's dev CA.

``sign CSR`` certifies a key its holder keeps (a third party's, for the conformance suite):
the CSR contributes only its public key; role, organisation and name are the ones given here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
from pathlib import Path
from typing import Any

from cryptography import x509

from juki_gateway.certs.identity import (
    ROLES,
    IdentityError,
    PeerIdentity,
    identity_from_certificate,
)
from juki_gateway.certs.pki import (
    CertificateAuthority,
    PkiError,
    fingerprint_sha256,
    load_certificate,
)
from juki_gateway.errors import UsageError
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
    show.add_argument("name", help="the certificate's name (pki/NAME.pem)")
    add_config_argument(show)
    show.set_defaults(func=cmd_show)
    issue = csub.add_parser("issue", help="issue a certificate and a new key for an identity")
    issue.add_argument("name", help="the identity's name (certificate CN; pki/NAME.pem and .key)")
    _identity_arguments(issue)
    issue.add_argument("--operator-role", action="append", default=[], dest="operator_roles",
                       metavar="SUB_ROLE",
                       help="operators only: flag-operator, reviewer or auditor; repeatable")
    issue.add_argument("--force", action="store_true", help="replace an existing key")
    add_config_argument(issue)
    issue.set_defaults(func=cmd_issue)
    sign = csub.add_parser(
        "sign", help="certify a third party's own key: sign its CSR for a named role and identity")
    sign.add_argument("csr", type=Path, help="the certificate signing request (PEM)")
    sign.add_argument("--name", metavar="NAME",
                      help="the identity's name (certificate CN; default: the CSR's CN)")
    _identity_arguments(sign)
    sign.add_argument("--out", type=Path, metavar="FILE",
                      help="also write the certificate here (it is always kept as pki/NAME.pem)")
    sign.add_argument("--force", action="store_true", help="replace an existing pki/NAME.pem")
    add_config_argument(sign)
    sign.set_defaults(func=cmd_sign)
    revoke = csub.add_parser("revoke", help="revoke a certificate (by name or hex serial)")
    revoke.add_argument("name", help="the certificate's name, or its serial in hex")
    revoke.add_argument("--reason", default="unspecified",
                        help="revocation reason recorded in the index (default: unspecified)")
    add_config_argument(revoke)
    revoke.set_defaults(func=cmd_revoke)
    crl = csub.add_parser("crl", help="rewrite the CRL (endpoints reload it)")
    add_config_argument(crl)
    crl.set_defaults(func=cmd_crl)


def _identity_arguments(p: argparse.ArgumentParser) -> None:
    """--role, --org and --days: what a certificate says and for how long."""
    p.add_argument("--role", required=True, choices=sorted(ROLES),
                   help="the role the certificate speaks for (SAN urn:juki:role:ROLE:ORG)")
    p.add_argument("--org", required=True,
                   help="its organisation: a 市町村コード (172014), a prefecture code (17), "
                        "or a name (kiko, ipnw)")
    p.add_argument("--days", type=int, default=30, help="validity in days (default 30)")


def _ca(args: argparse.Namespace) -> CertificateAuthority:
    return CertificateAuthority.load(load_config(config_path_from(args)).pki_dir)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def cmd_list(args: argparse.Namespace) -> int:
    """Print the CA index as a table."""
    now = _now().strftime("%Y-%m-%dT%H:%M:%SZ")
    issued = _ca(args).issued()
    if not issued:
        print("none")
        return 0
    rows = [("NAME", "ROLE", "ORG", "SERIAL", "NOT_AFTER", "STATE")]
    for c in issued:
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


def cmd_sign(args: argparse.Namespace) -> int:
    """Sign a CSR: the third party keeps its key, the CA vouches for the identity named here."""
    from cryptography.x509.oid import NameOID

    try:
        csr_pem = args.csr.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.csr}: {exc.strerror}") from None
    name = args.name
    if name is None:
        try:
            cns = x509.load_pem_x509_csr(csr_pem).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        except ValueError as exc:
            raise PkiError(f"{args.csr} is not a PEM certificate signing request: {exc}") from None
        if not cns:
            raise UsageError(f"{args.csr} names no CN: give --name")
        name = str(cns[0].value)
    ca = _ca(args)
    try:
        cert = ca.sign_csr(csr_pem, PeerIdentity(name, args.role, args.org), _now(),
                           days=args.days, dns_names=("localhost",), overwrite=args.force)
    except IdentityError as exc:
        raise PkiError(exc.message) from None
    where = ca.directory / f"{name}.pem"
    if args.out is not None:
        shutil.copyfile(where, args.out)
        where = args.out
    print(f"signed {name} ({args.role} {args.org}) serial {cert.serial_number:x} -> {where}; "
          f"the CA to trust: {ca.directory / 'ca.pem'}")
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
