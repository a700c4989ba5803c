"""A mutual-TLS frame client for the simulators, the conformance suite and replay.

:func:`open_connection` connects to a gateway endpoint with a certificate of its own (via the
daemon's :class:`MutualTLSClientCreator`, which also checks the server's juki identity), probes
it with a PING and returns a :class:`FrameConnection` once the PONG arrives. A peer that refuses
the handshake (in TLS 1.3 the client learns it on the first read) raises :class:`PeerRefused`
with the TLS alert text. On an open connection, :meth:`FrameConnection.request` writes frames
and waits for the next ``n`` answers: a gateway session answers every frame it reads, in order,
so answers are matched first in, first out.

The reactor is passed in; nothing here imports the global reactor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet import ssl
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from juki_gateway.codecs.frame import Frame
from juki_gateway.codecs.messages import MessageType
from juki_gateway.errors import JukiError
from juki_gateway.gateway.tls import MutualTLSClientCreator, alert_from_failure
from juki_gateway.protocols.channel import (
    Broken,
    Catalogue,
    FrameChannel,
    Refused,
    TimestampSource,
    default_catalogue,
)

#: How far a connection got before it failed: no TCP connection at all; TCP, but the TLS
#: handshake did not complete; or the handshake completed (the endpoint speaks TLS).
STAGE_CONNECT, STAGE_HANDSHAKE, STAGE_SESSION = "connect", "handshake", "session"


class PeerRefused(JukiError):
    """The endpoint refused the connection (handshake failed or closed before answering)."""

    code = "peer_refused"

    def __init__(self, message: str, alert: str | None = None, stage: str = STAGE_SESSION) -> None:
        super().__init__(message)
        self.alert = alert
        self.stage = stage


class ExchangeTimeout(JukiError):
    """The endpoint did not answer within the time allowed."""

    code = "exchange_timeout"

    def __init__(self, message: str, stage: str = STAGE_SESSION) -> None:
        super().__init__(message)
        self.stage = stage


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a client is: its certificate and key, and the CA it trusts for the server."""

    name: str
    cert: Path | None
    key: Path | None
    ca: Path

    @classmethod
    def from_pki(cls, pki: Path, name: str, ca: Path | None = None) -> Identity:
        """``<pki>/<name>.pem`` and ``.key`` with ``<pki>/ca.pem``."""
        return cls(name, pki / f"{name}.pem", pki / f"{name}.key", ca or pki / "ca.pem")


class _NoCertificateCreator(MutualTLSClientCreator):
    """A client that presents no certificate at all (for refusal cases)."""

    def __init__(self, *, server_name: str, ca: Path) -> None:
        super().__init__(server_name=server_name, cert=ca, key=ca, ca=ca)
        self._ca = ca

    def _context(self) -> Any:
        if self._ctx is None:
            from juki_gateway.gateway.tls import AEAD_CIPHERS, trust_root

            options = ssl.CertificateOptions(
                trustRoot=trust_root(self._ca), raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
                acceptableCiphers=ssl.AcceptableCiphers.fromOpenSSLCipherString(AEAD_CIPHERS),
            )
            ctx = options.getContext()
            from OpenSSL import SSL

            ctx.set_verify(SSL.VERIFY_PEER, self._verify)
            self._ctx = ctx
        return self._ctx


#: When set (``juki-gateway capture``), every simulator connection reports to this recorder
#: (a :class:`juki_gateway.simulators.capture.Recorder`); None otherwise.
RECORDER: Any = None


def set_recorder(recorder: Any) -> None:
    """Attach (or, with None, detach) the capture recorder for connections opened from now on."""
    global RECORDER
    RECORDER = recorder


@implementer(IHandshakeListener)
class FrameConnection(Protocol):
    """One client connection: frames out, answers matched in order."""

    recorder: Any = None
    conn_id: str = ""
    #: the TLS handshake completed (told by the TLS layer)
    handshake_done: bool = False

    def handshakeCompleted(self) -> None:
        """IHandshakeListener: the endpoint completed the TLS handshake with us."""
        self.handshake_done = True

    @property
    def stage(self) -> str:
        """How far this connection got (STAGE_HANDSHAKE or STAGE_SESSION)."""
        return STAGE_SESSION if self.handshake_done else STAGE_HANDSHAKE

    def __init__(self, reactor: Any, catalogue: Catalogue | None,
                 trailer_length: int = 0, *, local: str, peer: str) -> None:
        self.reactor = reactor
        # we are ``local`` (our certificate's name); the endpoint we connected to is ``peer``
        self.channel = FrameChannel(
            local=local, peer=peer, timestamp=TimestampSource(reactor.seconds),
            catalogue=catalogue if catalogue is not None else default_catalogue())
        self._waiters: list[tuple[int, Deferred[list[Frame]], list[Frame]]] = []
        self.unsolicited: list[Frame] = []
        self.rejected: list[Refused] = []
        self.closed: Deferred[None] = Deferred()
        self.is_closed = False
        self.close_reason: Failure | None = None
        self.received = 0

    # -- twisted ------------------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        channel = self.channel
        channel.receive_data(data)
        # not drive(): a simulator hands every frame, PING included, to whoever awaits it
        while (event := channel.next_event()) is not None:
            if isinstance(event, Broken):
                self._fail_waiters(PeerRefused(f"undecodable answer: {event.error.message}",
                                               stage=self.stage))
                if self.transport is not None:
                    self.transport.loseConnection()
                return
            if isinstance(event, Refused):
                self.rejected.append(event)
                continue
            self.received += 1
            self._deliver(event.frame)

    def _deliver(self, frame: Frame) -> None:
        if self.recorder is not None:
            self.recorder.received(self.conn_id, frame, b"")
        for i, (n, d, got) in enumerate(self._waiters):
            got.append(frame)
            if len(got) >= n:
                del self._waiters[i]
                d.callback(got)
            return
        self.unsolicited.append(frame)

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:  # noqa: B008
        self.is_closed = True
        self.close_reason = reason
        alert = alert_from_failure(reason.value) if reason.value is not None else None
        detail = f": {alert}" if alert else ""
        if not alert and not self.handshake_done and not isinstance(reason.value, ConnectionDone):
            detail = f": {reason.value}"  # e.g. an SSL error without an alert: not TLS at all
        self._fail_waiters(PeerRefused(f"connection closed{detail}", alert=alert, stage=self.stage))
        if not self.closed.called:
            self.closed.callback(None)

    def _fail_waiters(self, exc: JukiError) -> None:
        waiters, self._waiters = self._waiters, []
        for _n, d, _got in waiters:
            d.errback(exc)

    # -- API ------------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        """Write raw bytes (one or more encoded frames, or deliberate garbage)."""
        assert self.transport is not None
        if self.recorder is not None:
            self.recorder.sent(self.conn_id, data)
        self.transport.write(data)

    def expect(self, n: int = 1, timeout: float = 10.0) -> Deferred[list[Frame]]:
        """The next ``n`` answers (errback PeerRefused if the connection closes first)."""
        d: Deferred[list[Frame]] = Deferred()
        if self.is_closed:
            d.errback(PeerRefused("connection already closed", stage=self.stage))
            return d
        got = self.unsolicited[:n]
        del self.unsolicited[:n]
        if len(got) >= n:
            d.callback(got)
            return d
        self._waiters.append((n, d, got))
        timer = self.reactor.callLater(timeout, self._expire, d)
        d.addBoth(lambda r: (timer.cancel() if timer.active() else None, r)[1])
        return d

    def _expire(self, d: Deferred[list[Frame]]) -> None:
        for i, (_n, dd, _got) in enumerate(self._waiters):
            if dd is d:
                del self._waiters[i]
                d.errback(ExchangeTimeout(
                    "no answer in time" if self.handshake_done else "no TLS handshake in time",
                    stage=self.stage))
                return

    async def request(self, data: bytes, n: int = 1, timeout: float = 10.0) -> list[Frame]:
        """Write ``data`` and wait for the next ``n`` answers."""
        d = self.expect(n, timeout)
        self.send(data)
        return await d

    def close(self) -> Deferred[None]:
        """Close the connection; fires when it is gone."""
        if not self.is_closed and self.transport is not None:
            self.transport.loseConnection()
        d: Deferred[None] = Deferred()

        def relay(result: object) -> object:
            d.callback(None)
            return result

        self.closed.addBoth(relay)
        return d


async def open_connection(
    reactor: Any, host: str, port: int, identity: Identity, server_name: str, *,
    catalogue: Catalogue | None = None, timeout: float = 10.0, probe: bool = True,
    probe_frame: bytes | None = None,
) -> FrameConnection:
    """Connect as ``identity`` to ``server_name`` at host:port; PING-probe unless told not to."""
    if identity.cert is None or identity.key is None:
        creator: MutualTLSClientCreator = _NoCertificateCreator(server_name=server_name,
                                                                ca=identity.ca)
    else:
        creator = MutualTLSClientCreator(server_name=server_name, cert=identity.cert,
                                         key=identity.key, ca=identity.ca)
    endpoint = wrapClientTLS(creator, TCP4ClientEndpoint(reactor, host, port, timeout=timeout))
    conn = FrameConnection(reactor, catalogue, local=identity.name, peer=server_name)
    try:
        await connectProtocol(endpoint, conn)
    except Exception as exc:
        if RECORDER is not None:
            RECORDER.refused(identity, server_name, str(exc))
        raise PeerRefused(f"cannot connect to {host}:{port}: {exc}",
                          alert=alert_from_failure(exc), stage=STAGE_CONNECT) from None
    if RECORDER is not None:
        conn.recorder = RECORDER
        conn.conn_id = RECORDER.opened(identity, server_name, host, port)
    if probe:
        ping = probe_frame or conn.channel.send(MessageType.PING)
        try:
            answers = await conn.request(ping, 1, timeout)
        except (PeerRefused, ExchangeTimeout) as exc:
            conn.close()
            if RECORDER is not None:
                RECORDER.refused(identity, server_name, exc.message)
            raise
        if answers[0].header.msg_type != MessageType.PONG:
            conn.unsolicited.insert(0, answers[0])
    return conn


def timestamp(reactor: Any) -> str:
    """The reactor clock as a frame timestamp (UTC)."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(reactor.seconds()))
