"""The development certificate authority: create it, issue, revoke, publish the CRL.

Everything lives in one directory (``DIR/pki`` of a working directory): ``ca.pem``/``ca.key``,
``NAME.pem``/``NAME.key`` per identity, ``index.json`` (every certificate issued, with its
revocation state) and ``crl.pem``, which the endpoints load and reload when it changes.
Keys are ECDSA P-256 (fast handshakes); leaf lifetimes are short (30 days by default).
The current time is always passed in by the caller.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from juki_gateway.certs.identity import PeerIdentity, validate_identity
from juki_gateway.errors import JukiError

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
CRL_FILE = "crl.pem"
INDEX_FILE = "index.json"
DEFAULT_LEAF_DAYS = 30
DEFAULT_CA_DAYS = 365
CRL_DAYS = 30


class PkiError(JukiError):
    """The PKI directory is missing, incomplete, or asked to do something it cannot."""

    code = "pki"
    wire_code = 9102


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """One entry of the CA's index."""

    name: str
    serial: int
    role: str
    org: str
    not_before: str
    not_after: str
    revoked_at: str | None
    reason: str | None


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_name(identity: PeerIdentity) -> None:
    validate_identity(identity)
    if not identity.name or "/" in identity.name or identity.name.startswith("."):
        raise PkiError(f"bad certificate name {identity.name!r}")


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """The certificate's SHA-256 fingerprint as lower-case hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


class CertificateAuthority:
    """A CA kept in a directory; construct with :meth:`load` or :meth:`create`."""

    def __init__(self, directory: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey):
        self.directory = directory
        self.cert = cert
        self.key = key

    # -- creation and loading -------------------------------------------------------------
    @classmethod
    def create(
        cls,
        directory: Path,
        now: dt.datetime,
        *,
        common_name: str = "juki-gateway dev CA",
        days: int = DEFAULT_CA_DAYS,
        overwrite: bool = False,
    ) -> CertificateAuthority:
        """Make a new self-signed CA in ``directory`` (refuses to replace one unless asked)."""
        directory.mkdir(parents=True, exist_ok=True)
        if (directory / CA_KEY).exists() and not overwrite:
            raise PkiError(f"{directory / CA_KEY} exists; pass --force to replace the CA")
        key = _new_key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        _write_private(directory / CA_KEY, _key_pem(key))
        _write_atomic(directory / CA_CERT, cert.public_bytes(serialization.Encoding.PEM))
        ca = cls(directory, cert, key)
        ca._save_index({})
        ca.write_crl(now)
        return ca

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        """Load the CA kept in ``directory``."""
        try:
            cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
            key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), None)
        except FileNotFoundError as exc:
            raise PkiError(f"no CA in {directory}: {exc.filename} is missing") from None
        except ValueError as exc:
            raise PkiError(f"CA files in {directory} are unreadable: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PkiError(f"{directory / CA_KEY} is not an EC key")
        return cls(directory, cert, key)

    # -- index ----------------------------------------------------------------------------
    def _load_index(self) -> dict[str, dict[str, Any]]:
        path = self.directory / INDEX_FILE
        if not path.exists():
            return {}
        data: dict[str, dict[str, Any]] = json.loads(path.read_text())
        return data

    def _save_index(self, index: dict[str, dict[str, Any]]) -> None:
        _write_atomic(
            self.directory / INDEX_FILE, (json.dumps(index, indent=1, sort_keys=True) + "\n").encode()
        )

    def issued(self) -> list[IssuedCertificate]:
        """Every certificate this CA issued, oldest first."""
        out = [
            IssuedCertificate(
                name=e["name"], serial=int(serial, 16), role=e["role"], org=e["org"],
                not_before=e["not_before"], not_after=e["not_after"],
                revoked_at=e.get("revoked_at"), reason=e.get("reason"),
            )
            for serial, e in self._load_index().items()
        ]
        return sorted(out, key=lambda c: (c.not_before, c.name))

    # -- issuing --------------------------------------------------------------------------
    def issue(
        self,
        identity: PeerIdentity,
        now: dt.datetime,
        *,
        days: int = DEFAULT_LEAF_DAYS,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        dns_names: tuple[str, ...] = (),
        write: bool = True,
        overwrite: bool = True,
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """Issue a certificate for ``identity``; with ``write`` store ``NAME.pem``/``NAME.key``.

        The SAN carries the role URI, ``DNS:NAME`` (so clients can check the server's node
        name), any extra ``dns_names`` and ``IP:127.0.0.1``/``::1`` for loopback servers.
        """
        _check_name(identity)
        if write and not overwrite and (self.directory / f"{identity.name}.key").exists():
            raise PkiError(f"{identity.name}.key exists; pass --force to replace it")
        key = _new_key()
        cert = self._certificate(identity, key.public_key(), now, days=days,
                                 not_before=not_before, not_after=not_after, dns_names=dns_names)
        if write:
            _write_private(self.directory / f"{identity.name}.key", _key_pem(key))
            self._record(identity, cert)
        return cert, key

    def sign_csr(
        self, csr_pem: bytes, identity: PeerIdentity, now: dt.datetime, *,
        days: int = DEFAULT_LEAF_DAYS, dns_names: tuple[str, ...] = (), overwrite: bool = False,
    ) -> x509.Certificate:
        """Certify the key of a certificate signing request (a third party keeps its own key).

        The CSR contributes only its public key, and only once its self-signature verifies:
        subject and SAN are this CA's (the identity named here), whatever the request asked.
        The certificate is stored as ``NAME.pem`` and indexed (so ``certs list``/``revoke``
        know it); no key is written.
        """
        _check_name(identity)
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError as exc:
            raise PkiError(f"not a PEM certificate signing request: {exc}") from None
        if not csr.is_signature_valid:
            raise PkiError("the CSR's signature does not verify: it was not made with its key")
        public_key = csr.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise PkiError(f"the CSR's key is a {type(public_key).__name__}; an EC or RSA key "
                           "is needed")
        if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < 2048:
            raise PkiError(f"the CSR's RSA key has {public_key.key_size} bits; 2048 at least")
        pem = self.directory / f"{identity.name}.pem"
        if not overwrite and pem.exists():
            raise PkiError(f"{pem} exists; pass --force to replace it")
        cert = self._certificate(identity, public_key, now, days=days, dns_names=dns_names)
        self._record(identity, cert)
        return cert

    def _certificate(
        self, identity: PeerIdentity, public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
        now: dt.datetime, *, days: int, not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None, dns_names: tuple[str, ...] = (),
    ) -> x509.Certificate:
        start = not_before if not_before is not None else now - dt.timedelta(minutes=5)
        end = not_after if not_after is not None else now + dt.timedelta(days=days)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, identity.name),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, identity.role),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, identity.org),
            ]
        )
        san: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in identity.role_uris()]
        san.extend(x509.DNSName(n) for n in (identity.name, *dns_names))
        san.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        san.append(x509.IPAddress(ipaddress.ip_address("::1")))
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False,
                    key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                    data_encipherment=False, key_agreement=False, key_cert_sign=False,
                    crl_sign=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )

    def _record(self, identity: PeerIdentity, cert: x509.Certificate) -> None:
        """Store ``NAME.pem`` and add the certificate to the index."""
        _write_atomic(
            self.directory / f"{identity.name}.pem", cert.public_bytes(serialization.Encoding.PEM)
        )
        index = self._load_index()
        index[format(cert.serial_number, "x")] = {
            "name": identity.name, "role": identity.role, "org": identity.org,
            "not_before": _iso(cert.not_valid_before_utc), "not_after": _iso(cert.not_valid_after_utc),
            "revoked_at": None, "reason": None,
        }
        self._save_index(index)

    # -- revocation -----------------------------------------------------------------------
    def revoke(self, name_or_serial: str, now: dt.datetime, reason: str = "unspecified") -> list[int]:
        """Revoke the named identity's current certificate (or a serial in hex); rewrite the CRL."""
        index = self._load_index()
        targets: list[str] = []
        pem = self.directory / f"{name_or_serial}.pem"
        if pem.exists():
            cert = x509.load_pem_x509_certificate(pem.read_bytes())
            targets.append(format(cert.serial_number, "x"))
        elif name_or_serial.lower() in index:
            targets.append(name_or_serial.lower())
        else:
            raise PkiError(f"no certificate named or with serial {name_or_serial!r} in {self.directory}")
        for serial in targets:
            entry = index.setdefault(serial, {"name": name_or_serial, "role": "?", "org": "?",
                                              "not_before": "", "not_after": ""})
            if entry.get("revoked_at") is None:
                entry["revoked_at"] = _iso(now)
                entry["reason"] = reason
        self._save_index(index)
        self.write_crl(now)
        return [int(s, 16) for s in targets]

    def write_crl(self, now: dt.datetime, days: int = CRL_DAYS) -> Path:
        """Write ``crl.pem`` listing every revoked serial, valid for ``days``."""
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(now - dt.timedelta(minutes=5))
            .next_update(now + dt.timedelta(days=days))
        )
        for serial, entry in self._load_index().items():
            if entry.get("revoked_at"):
                revoked_at = dt.datetime.strptime(entry["revoked_at"], "%Y-%m-%dT%H:%M:%SZ").replace(
                    tzinfo=dt.UTC
                )
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder()
                    .serial_number(int(serial, 16))
                    .revocation_date(revoked_at)
                    .build()
                )
        crl = builder.sign(self.key, hashes.SHA256())
        path = self.directory / CRL_FILE
        _write_atomic(path, crl.public_bytes(serialization.Encoding.PEM))
        return path


def load_certificate(path: Path) -> x509.Certificate:
    """Read one PEM certificate, with a clear error if it is missing or malformed."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise PkiError(f"no certificate at {path}") from None
    except ValueError as exc:
        raise PkiError(f"{path} is not a PEM certificate: {exc}") from None


def write_pair(directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    """Store a certificate and key as ``NAME.pem``/``NAME.key`` (used for test identities)."""
    _write_private(directory / f"{name}.key", _key_pem(key))
    _write_atomic(directory / f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM))
