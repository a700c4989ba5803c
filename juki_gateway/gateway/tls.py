"""Mutual TLS for the endpoints: contexts, CRL checking, and authorization by role in the handshake.

:class:`MutualTLSServerCreator` builds the server context with Twisted's ``CertificateOptions``
(TLS 1.2 minimum, 1.3 preferred, AEAD suites only, a client certificate required and verified
against the dev CA and its CRL) and then replaces the verify callback with one that records *why*
a certificate was refused and, for an otherwise valid leaf, checks the peer's role and
organisation against the endpoint's allow-list. A refused peer therefore fails the TLS handshake
itself: no application byte is ever read from or written to it.

Every TLS connection's ``TLSMemoryBIOProtocol`` carries a :class:`HandshakeState`; the Twisted
adapter reads it when the handshake completes or the connection is lost, and writes the
handshake-log line from it. :func:`wrap_server_factory` wraps any factory in
``TLSMemoryBIOFactory`` and :class:`MutualTLSClientCreator` is the outbound links' side.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from OpenSSL import SSL, crypto
from twisted.internet import ssl
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
    IProtocolFactory,
)
from twisted.protocols.policies import ProtocolWrapper
from twisted.protocols.tls import BufferingTLSTransport, TLSMemoryBIOFactory
from zope.interface import implementer

from juki_gateway.certs.identity import IdentityError, PeerIdentity, identity_from_certificate
from juki_gateway.errors import JukiError
from juki_gateway.gateway.config import AllowRule

#: TLS 1.2 suites allowed: ECDHE key exchange with AEAD (GCM, ChaCha20-Poly1305) only.
#: Every TLS 1.3 suite is AEAD.
AEAD_CIPHERS = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305"

#: Key-exchange groups, in order of preference, on both sides of every link: the NIST curves
#: of the CRYPTREC e-Government list, matching the P-256 keys of the PKI (no X25519, which
#: that list does not carry). ``make bench-tls`` gives ``openssl s_server`` the same list.
GATEWAY_GROUPS = "P-256:P-384"

# X509_V_ERR_* numbers (openssl/x509_vfy.h) mapped to the handshake log's validation_status.
_VERIFY_REASONS: dict[int, str] = {
    2: "unknown_ca",  # unable to get issuer certificate
    7: "unknown_ca",  # certificate signature failure
    9: "not_yet_valid",
    10: "expired",
    18: "unknown_ca",  # depth zero self-signed
    19: "unknown_ca",  # self-signed certificate in chain
    20: "unknown_ca",  # unable to get local issuer certificate
    21: "unknown_ca",  # unable to verify the first certificate
    23: "revoked",
    30: "unknown_ca",  # authority and subject key identifier mismatch
}

VALIDATION_STATUSES: tuple[str, ...] = (
    "ok", "no_certificate", "unknown_ca", "expired", "not_yet_valid", "revoked",
    "role_not_allowed", "org_not_allowed", "protocol_error", "timeout",
)


class TLSConfigError(JukiError):
    """A certificate, key or CRL the endpoint needs cannot be loaded."""

    code = "tls_config"
    wire_code = 9103


def reason_for_verify_error(errno: int) -> str:
    """The validation_status for an OpenSSL certificate verification error number."""
    return _VERIFY_REASONS.get(errno, "protocol_error")


@dataclass(frozen=True, slots=True)
class PeerCertificate:
    """What the handshake log records of a peer certificate, parsed once per distinct cert."""

    subject: str
    issuer: str
    serial: str
    sha256: str
    not_before: str
    not_after: str
    identity: PeerIdentity | None
    identity_error: str | None


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def describe_certificate(cert: x509.Certificate) -> PeerCertificate:
    """Parse the logged fields and the juki identity out of a certificate."""
    try:
        identity: PeerIdentity | None = identity_from_certificate(cert)
        error = None
    except IdentityError as exc:
        identity, error = None, exc.message
    return PeerCertificate(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=format(cert.serial_number, "x"),
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        not_before=_iso(cert.not_valid_before_utc),
        not_after=_iso(cert.not_valid_after_utc),
        identity=identity,
        identity_error=error,
    )


class PeerCertificateCache:
    """Parses each distinct peer certificate once (keyed by its DER bytes), bounded in size."""

    def __init__(self, limit: int = 1024) -> None:
        self._limit = limit
        self._entries: dict[bytes, PeerCertificate] = {}

    def get(self, cert: crypto.X509) -> PeerCertificate:
        """The parsed form of ``cert``."""
        der = crypto.dump_certificate(crypto.FILETYPE_ASN1, cert)
        found = self._entries.get(der)
        if found is None:
            if len(self._entries) >= self._limit:
                self._entries.clear()
            found = describe_certificate(x509.load_der_x509_certificate(der))
            self._entries[der] = found
        return found


class Authorizer:
    """Decides from an endpoint's allow-list whether a peer identity may connect (brief R2)."""

    def __init__(self, rules: tuple[AllowRule, ...]) -> None:
        self._by_role: dict[str, list[AllowRule]] = {}
        for rule in rules:
            self._by_role.setdefault(rule.role, []).append(rule)

    def check(self, identity: PeerIdentity) -> str | None:
        """``None`` if allowed, else ``role_not_allowed`` or ``org_not_allowed``."""
        rules = self._by_role.get(identity.role)
        if not rules:
            return "role_not_allowed"
        if any(rule.org_matches(identity.org) for rule in rules):
            return None
        return "org_not_allowed"


_conn_prefix = secrets.token_hex(3)
_conn_counter = itertools.count(1)


def new_conn_id() -> str:
    """A connection id unique within this process and unlikely to repeat across restarts."""
    return f"C{_conn_prefix}{next(_conn_counter):06x}"


class HandshakeState:
    """What is known about one connection's handshake; attached to its ``SSL.Connection``."""

    __slots__ = ("alert", "conn_id", "peer", "reason", "started")

    def __init__(self, conn_id: str, started: float) -> None:
        self.conn_id = conn_id
        self.started = started
        self.reason: str | None = None
        self.peer: PeerCertificate | None = None
        self.alert: str | None = None


def handshake_state(tls_protocol: Any) -> HandshakeState | None:
    """The :class:`HandshakeState` attached to a ``TLSMemoryBIOProtocol`` (Twisted keeps the
    protocol as the ``SSL.Connection``'s app data)."""
    state = getattr(tls_protocol, "__dict__", {}).get("juki_handshake")
    return state if isinstance(state, HandshakeState) else None


def _load_pem_pair(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, Any]:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    except FileNotFoundError as exc:
        raise TLSConfigError(f"missing {exc.filename}: run 'juki-gateway init'") from None
    except ValueError as exc:
        raise TLSConfigError(f"cannot load {cert_path} / {key_path}: {exc}") from None
    return cert, key


def _restrict_groups(ctx: SSL.Context) -> None:
    """Offer/accept only :data:`GATEWAY_GROUPS` for (EC)DHE (pyOpenSSL has no wrapper)."""
    from OpenSSL._util import lib

    if lib.SSL_CTX_set1_curves_list(ctx._context, GATEWAY_GROUPS.encode("ascii")) != 1:
        raise TLSConfigError(f"this OpenSSL does not support the groups {GATEWAY_GROUPS}")


def trust_root(ca_path: Path) -> Any:
    try:
        return ssl.trustRootFromCertificates([ssl.Certificate.loadPEM(ca_path.read_bytes())])
    except FileNotFoundError:
        raise TLSConfigError(f"missing CA certificate {ca_path}") from None


def revoked_serials(crl_path: Path) -> frozenset[str]:
    """The serial numbers (hex, as the handshake log writes them) the CRL file revokes."""
    return frozenset(format(r.serial_number, "x") for r in _load_crl(crl_path))


def _load_crl(crl_path: Path) -> x509.CertificateRevocationList:
    try:
        return x509.load_pem_x509_crl(crl_path.read_bytes())
    except FileNotFoundError:
        raise TLSConfigError(f"missing CRL {crl_path}: run 'juki-gateway certs crl'") from None
    except ValueError as exc:
        raise TLSConfigError(f"{crl_path} is not a PEM CRL: {exc}") from None


@implementer(IOpenSSLServerConnectionCreator)
class MutualTLSServerCreator:
    """Creates the server side of every TLS connection of one endpoint.

    ``clock`` is an ``IReactorTime``-like callable returning seconds, used to stamp the start
    of each handshake. The constructor does no I/O: :meth:`load` (called by the service at
    start, or by the first connection) reads the files. :meth:`reload_crl` swaps in a fresh
    context with the current CRL; live connections keep the context they started with.
    """

    def __init__(
        self,
        *,
        cert: Path,
        key: Path,
        ca: Path,
        crl: Path,
        authorizer: Authorizer,
        seconds: Callable[[], float],
        cache: PeerCertificateCache | None = None,
    ) -> None:
        self._cert_path, self._key_path, self._ca_path, self._crl_path = cert, key, ca, crl
        self._authorizer = authorizer
        self._seconds = seconds
        self._cache = cache if cache is not None else PeerCertificateCache()
        self._context: SSL.Context | None = None

    def load(self) -> None:
        """Read the certificate, key, CA and CRL and build the context (raises TLSConfigError)."""
        self._context = self._make_context()

    def _make_context(self) -> SSL.Context:
        cert, key = _load_pem_pair(self._cert_path, self._key_path)
        options = ssl.CertificateOptions(
            privateKey=key,
            # pyOpenSSL wants cryptography certificates now (X509 objects are deprecated);
            # Twisted's annotation still names X509
            certificate=cert,  # type: ignore[arg-type]
            trustRoot=trust_root(self._ca_path),
            raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
            acceptableCiphers=ssl.AcceptableCiphers.fromOpenSSLCipherString(AEAD_CIPHERS),
        )
        ctx: SSL.Context = options.getContext()
        # the peer's identity is fixed by the first handshake: no TLS 1.2 renegotiation
        ctx.set_options(SSL.OP_NO_RENEGOTIATION)
        # every connection is a full handshake, so the CRL and the allow-list are checked each
        # time: no session cache (CertificateOptions' default) and no tickets
        ctx.set_options(SSL.OP_NO_TICKET)
        ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        _restrict_groups(ctx)
        store = ctx.get_cert_store()
        assert store is not None
        store.add_crl(_load_crl(self._crl_path))
        store.set_flags(crypto.X509StoreFlags.CRL_CHECK)
        ctx.set_verify(
            SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT | SSL.VERIFY_CLIENT_ONCE,
            self._verify,
        )
        return ctx

    def reload_crl(self) -> None:
        """Build a new context that checks against the CRL file as it is now."""
        self._context = self._make_context()

    def _verify(
        self, conn: SSL.Connection, cert: crypto.X509, errno: int, depth: int, ok: int
    ) -> bool:
        state = handshake_state(conn.get_app_data())
        if depth == 0 and state is not None and state.peer is None:
            state.peer = self._cache.get(cert)
        if not ok:
            if state is not None and state.reason is None:
                state.reason = reason_for_verify_error(errno)
            return False
        if depth == 0:
            peer = state.peer if state is not None else self._cache.get(cert)
            assert peer is not None
            refusal = (
                "role_not_allowed" if peer.identity is None else self._authorizer.check(peer.identity)
            )
            if refusal is not None:
                if state is not None:
                    state.reason = refusal
                return False
        return True

    def serverConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        """A new ``SSL.Connection``; its TLS protocol gets a fresh :class:`HandshakeState`."""
        if self._context is None:
            self.load()
        tlsProtocol.juki_handshake = HandshakeState(new_conn_id(), self._seconds())
        assert self._context is not None
        return SSL.Connection(self._context, None)


class ServerTLSTransport(BufferingTLSTransport):
    """Twisted's TLS transport with a cheaper connection set-up.

    ``TLSMemoryBIOProtocol.makeConnection`` calls ``directlyProvides`` once per interface of
    the TCP transport, each call replacing the previous one, and then
    ``ProtocolWrapper.makeConnection`` declares them all at once anyway; zope.interface
    rebuilds its specification every time, a tenth of the Python work of a handshake. This
    does the same steps once each, in the same order, and skips the server's first
    ``do_handshake`` (which can only answer "want read" before the peer has sent anything).
    """

    def makeConnection(self, transport: Any) -> None:
        if not self._connectWrapped:
            super().makeConnection(transport)
            return
        self._tlsConnection = self.factory._creatorCallable(self)
        self._appSendBuffer = []
        # declares the transport's interfaces, connects this wrapper and the wrapped protocol
        ProtocolWrapper.makeConnection(self, transport)
        # no _checkHandshakeStatus() here: a server has nothing to say before the ClientHello,
        # and dataReceived drives the handshake from the first byte on


def wrap_server_factory(
    creator: MutualTLSServerCreator, factory: IProtocolFactory, clock: Any
) -> TLSMemoryBIOFactory:
    """Wrap a plain factory so that every connection is mutual TLS first.

    ``clock`` drives Twisted's write aggregation (small writes become one TLS record per
    reactor iteration).
    """
    wrapped = TLSMemoryBIOFactory(creator, False, factory, clock=clock)
    wrapped.protocol = ServerTLSTransport
    wrapped.noisy = False
    return wrapped


@implementer(IOpenSSLClientConnectionCreator)
class MutualTLSClientCreator:
    """The client side of an outbound link: our certificate, the dev CA, and the peer's name.

    Not ``optionsForClientTLS``: its hostname check (service_identity) cannot parse the
    ``urn:juki:role:…`` SAN URIs and, on that parse error, silently accepts any server the CA
    signed. This creator checks the server's certificate chain against the CA and then that the
    leaf's juki identity is the expected node (CN and DNS SAN ``server_name``).
    """

    def __init__(self, *, server_name: str, cert: Path, key: Path, ca: Path,
                 cache: PeerCertificateCache | None = None, crl: Path | None = None) -> None:
        self._paths = (cert, key, ca)
        self._ctx: SSL.Context | None = None
        self._server_name = server_name
        self._cache = cache if cache is not None else PeerCertificateCache()
        #: the server's certificate is checked against this CRL too (re-read when it changes)
        self._crl = crl
        self._crl_stamp: tuple[int, int] | None = None

    def _crl_changed(self) -> bool:
        if self._crl is None:
            return False
        try:
            st = self._crl.stat()
        except FileNotFoundError:
            return False
        stamp = (st.st_mtime_ns, st.st_size)
        changed, self._crl_stamp = stamp != self._crl_stamp, stamp
        return changed

    def _context(self) -> SSL.Context:
        if self._crl_changed():
            self._ctx = None  # a new CRL: the next connection checks against it
        if self._ctx is None:
            cert, key, ca = self._paths
            own, pkey = _load_pem_pair(cert, key)
            options = ssl.CertificateOptions(
                privateKey=pkey,
                certificate=own,  # type: ignore[arg-type]  # (as above)
                trustRoot=trust_root(ca),
                raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
                acceptableCiphers=ssl.AcceptableCiphers.fromOpenSSLCipherString(AEAD_CIPHERS),
            )
            ctx: SSL.Context = options.getContext()
            ctx.set_verify(SSL.VERIFY_PEER, self._verify)
            _restrict_groups(ctx)
            if self._crl is not None:
                store = ctx.get_cert_store()
                assert store is not None
                store.add_crl(_load_crl(self._crl))
                store.set_flags(crypto.X509StoreFlags.CRL_CHECK)
            self._ctx = ctx
        return self._ctx

    def _verify(self, conn: SSL.Connection, cert: crypto.X509, errno: int, depth: int, ok: int) -> bool:
        if not ok:
            return False
        if depth == 0:
            peer = self._cache.get(cert)
            return peer.identity is not None and peer.identity.name == self._server_name
        return True

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        """A client ``SSL.Connection`` sending ``server_name`` as SNI."""
        conn = SSL.Connection(self._context(), None)
        conn.set_app_data(tlsProtocol)
        conn.set_tlsext_host_name(self._server_name.encode("ascii"))
        conn.set_connect_state()
        return conn


def alert_from_failure(value: BaseException) -> str | None:
    """The TLS alert or OpenSSL reason string carried by an ``SSL.Error``, if any."""
    if isinstance(value, SSL.Error) and value.args and isinstance(value.args[0], list):
        for item in value.args[0]:
            if isinstance(item, tuple) and len(item) == 3:
                return str(item[2])
    return None


def reason_from_failure(value: BaseException) -> str:
    """A validation_status for a handshake that failed without a verify-callback reason."""
    alert = alert_from_failure(value) or ""
    if "peer did not return a certificate" in alert or "certificate required" in alert:
        return "no_certificate"
    if "unknown ca" in alert:
        return "unknown_ca"
    if "certificate expired" in alert:
        return "expired"
    if "certificate revoked" in alert:
        return "revoked"
    return "protocol_error"
