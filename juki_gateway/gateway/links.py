"""Outbound links: a node connects to a peer endpoint with its own certificate and keeps the link up.

Each :class:`LinkService` is a ``ClientService`` (reconnect with exponential backoff, all timing
from the injected reactor clock) around :class:`LinkProtocol`. The link's TLS side is
:class:`~juki_gateway.gateway.tls.MutualTLSClientCreator` (our certificate, the dev CA, the
peer's node name checked against its certificate).

The client side writes its own handshake-log line (``endpoint`` = ``LOCAL->PEER``). Under TLS 1.3
a server that refuses our certificate does so *after* our side thinks the handshake is done, so
the link sends a PING at once and logs the handshake only when the first frame arrives (``ok``)
or the connection is lost first (refused: the reason comes from the server's alert).

Later link handlers send on a link with ``service.whenConnected()`` → ``LinkProtocol.send``
(``GatewayService.links[name]`` is the ``ClientService``); frames arriving on the link go to the
handlers registered for ``link:<local role>`` in :mod:`juki_gateway.protocols.session`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import IDelayedCall, IHandshakeListener, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from juki_gateway.certs.identity import PeerIdentity
from juki_gateway.gateway.config import EndpointConfig, GatewayConfig, LinkConfig
from juki_gateway.gateway.endpoint import format_addr
from juki_gateway.gateway.handshake_log import HandshakeLog, make_record
from juki_gateway.gateway.metrics import GatewayMetrics
from juki_gateway.gateway.tls import (
    HandshakeState,
    MutualTLSClientCreator,
    PeerCertificateCache,
    alert_from_failure,
    new_conn_id,
    reason_from_failure,
)

log = Logger(namespace="juki_gateway.links")


@dataclass
class LinkContext:
    """What every connection of one outbound link shares."""

    link: LinkConfig
    local: EndpointConfig
    clock: IReactorTime
    handshake_log: HandshakeLog
    metrics: GatewayMetrics
    handshake_timeout: float
    cache: PeerCertificateCache

    @property
    def label(self) -> str:
        """The link's name in logs and metrics (``LOCAL->PEER``)."""
        return f"{self.link.local}->{self.link.peer}"


class LinkHandshake:
    """The client side's handshake record of one link connection, shared by every link protocol.

    Captures the addresses and starts the handshake timer on connect, reads the peer and the TLS
    details when the handshake completes, writes the one handshake-log line (``ok`` when the
    first frame arrives, else the refusal reason when the connection is lost first) and records
    the handshake metric.
    """

    def __init__(self, *, clock: IReactorTime, handshake_log: HandshakeLog, metrics: GatewayMetrics,
                 cache: PeerCertificateCache, label: str, timeout: float) -> None:
        self.clock = clock
        self.handshake_log = handshake_log
        self.metrics = metrics
        self.cache = cache
        self.label = label
        self.timeout = timeout
        self.state = HandshakeState(new_conn_id(), clock.seconds())
        self.logged = False
        self.timed_out = False
        self._local = self._peer = "?"
        self._tls: dict[str, str | None] = {}
        self._timer: IDelayedCall | None = None

    @property
    def peer_role(self) -> str:
        """The peer's role from its certificate, ``?`` before the handshake."""
        ident = self.state.peer.identity if self.state.peer is not None else None
        return ident.role if ident is not None else "?"

    def connected(self, transport: Any) -> None:
        """TCP is up: note the addresses and abort the connection if the handshake is too slow."""
        self._local = format_addr(transport.getHost())
        self._peer = format_addr(transport.getPeer())

        def expire() -> None:
            self.timed_out = True
            transport.abortConnection()

        self._timer = self.clock.callLater(self.timeout, expire)

    def completed(self, transport: Any, server_name: str) -> None:
        """Our side of the TLS handshake is done: read the peer certificate and the TLS details."""
        handle = transport.getHandle()
        cert = handle.get_peer_certificate()
        if cert is not None:
            self.state.peer = self.cache.get(cert)
        self._tls = {"version": handle.get_protocol_version_name(),
                     "cipher": handle.get_cipher_name(), "group": handle.get_group_name(),
                     "server_name": server_name}

    def established(self) -> None:
        """The peer's first frame arrived: the handshake is logged ``ok``."""
        self._cancel_timer()
        self._write(True, "ok")

    def lost(self, reason: Failure) -> bool:
        """The connection ended; logs the refusal if it never got established. True if refused."""
        self._cancel_timer()
        if self.logged:
            return False
        self.state.alert = alert_from_failure(reason.value)
        status = "timeout" if self.timed_out else reason_from_failure(reason.value)
        self._write(False, status)
        log.warn("[{conn_id}] link {link} refused: {status} ({alert})", conn_id=self.state.conn_id,
                 link=self.label, status=status, alert=self.state.alert)
        return True

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()

    def _write(self, established: bool, status: str) -> None:
        self.logged = True
        now = self.clock.seconds()
        self.handshake_log.write(make_record(
            now=now, state=self.state, endpoint=self.label, local_addr=self._local,
            peer_addr=self._peer, established=established, status=status, **self._tls))
        self.metrics.record_handshake(self.label, status, now - self.state.started)


@implementer(IHandshakeListener)
class LinkProtocol(Protocol):
    """The client side of one outbound link connection."""

    def __init__(self, ctx: LinkContext) -> None:
        self.ctx = ctx
        self.handshake = LinkHandshake(
            clock=ctx.clock, handshake_log=ctx.handshake_log, metrics=ctx.metrics, cache=ctx.cache,
            label=ctx.label, timeout=ctx.handshake_timeout)
        self.state = self.handshake.state
        self.session: Any = None
        self.established = False
        self._ping: IDelayedCall | None = None
        self.first_frame: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self.handshake.connected(self.transport)

    def handshakeCompleted(self) -> None:
        from juki_gateway.codecs.messages import MessageType
        from juki_gateway.protocols.session import FrameSession, registry_for

        assert self.transport is not None
        self.handshake.completed(self.transport, self.ctx.link.peer)
        ident = self.state.peer.identity if self.state.peer is not None else None
        peer = ident or PeerIdentity(self.ctx.link.peer, "unknown", "unknown")
        self.session = FrameSession(
            node=self.ctx.local.name, conn_id=self.state.conn_id, peer=peer,
            registry=registry_for(f"link:{self.ctx.local.role}"), seconds=self.ctx.clock.seconds,
        )
        self.transport.write(self.session.frame(MessageType.PING))

    def dataReceived(self, data: bytes) -> None:
        if self.session is None:
            return
        if not self.handshake.logged:
            self.handshake.established()
            self.established = True
            self.ctx.metrics.active.labels(self.ctx.label, self.handshake.peer_role).inc()
            self._schedule_ping()
            self.first_frame.callback(None)
        out = self.session.receive_data(data)
        assert self.transport is not None
        if out:
            self.transport.write(out)
        if self.session.closing:
            self.transport.loseConnection()

    def send(self, data: bytes) -> None:
        """Send encoded frames on this link (build them with ``self.session.frame``)."""
        assert self.transport is not None
        self.transport.write(data)

    def _schedule_ping(self) -> None:
        if self.ctx.link.ping_interval > 0:
            self._ping = self.ctx.clock.callLater(self.ctx.link.ping_interval, self._send_ping)

    def _send_ping(self) -> None:
        from juki_gateway.codecs.messages import MessageType

        if self.transport is not None and self.session is not None:
            self.transport.write(self.session.frame(MessageType.PING))
        self._schedule_ping()

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        if self._ping is not None and self._ping.active():
            self._ping.cancel()
        if self.handshake.lost(reason):
            if not self.first_frame.called:
                self.first_frame.errback(reason)
        elif self.established:
            self.ctx.metrics.active.labels(self.ctx.label, self.handshake.peer_role).dec()


class LinkFactory(Factory):
    """Builds :class:`LinkProtocol` instances for one link."""

    noisy = False

    def __init__(self, ctx: LinkContext) -> None:
        self.ctx = ctx

    def buildProtocol(self, addr: Any) -> LinkProtocol:
        return LinkProtocol(self.ctx)


def make_link_service(
    config: GatewayConfig,
    link: LinkConfig,
    reactor: Any,
    handshake_log: HandshakeLog,
    metrics: GatewayMetrics,
    cache: PeerCertificateCache,
) -> ClientService:
    """A reconnecting client service for ``link`` (backoff and timing from ``reactor``)."""
    local = config.endpoint(link.local)
    ctx = LinkContext(
        link=link, local=local, clock=reactor, handshake_log=handshake_log, metrics=metrics,
        handshake_timeout=config.timeouts.handshake, cache=cache,
    )
    options = MutualTLSClientCreator(
        server_name=link.peer, cert=local.cert, key=local.key, ca=config.ca, cache=cache
    )
    endpoint = wrapClientTLS(options, TCP4ClientEndpoint(reactor, link.host, link.port))
    service = ClientService(
        endpoint, LinkFactory(ctx),
        retryPolicy=backoffPolicy(initialDelay=link.backoff_initial, maxDelay=link.backoff_max),
        clock=reactor,
    )
    service.setName(f"link:{link.name}")
    return service
