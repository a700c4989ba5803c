"""The one Twisted adapter of every connection: :class:`ChannelProtocol`.

Every mutual-TLS connection of the daemon, on both sides, is one ``ChannelProtocol`` inside
``TLSMemoryBIOProtocol``, driving the sans-IO application of that connection (a
:class:`~juki_gateway.protocols.channel.ChannelApp`: a frame session, a hosted Juki-net node's
connection, the intermediate server's or the admin port's session):

* **server side** (:class:`EndpointContext`, a peer connected to one of our endpoints): the
  handshake-log line when the handshake completes or fails, the handshake timeout, the idle
  timeout, the per-peer connection cap (ERROR 3003), and write-side backpressure: while the
  peer does not read what is queued for it, the connection stops reading from it (registered
  as a push producer on the socket transport beneath TLS);
* **client side** (:class:`LinkContext`, we dialled a peer's endpoint): the server's role and
  organisation checked against what the configuration says that peer is, a PING at once (under
  TLS 1.3 a server refuses our certificate only after our side completed the handshake, so the
  handshake-log line is written ``ok`` when the first frame comes back, or with the refusal
  reason when the connection is lost first), then a PING every ``ping_interval`` seconds and the
  link's :class:`LinkStatus`. A client does not throttle its reads: its peer may stop reading
  only when the client does not read, so two hops cannot wait on each other.

Bytes go to the application's channel; the channel is driven with the application as its
handler until it runs dry, the application pauses the connection (a node's store catching up)
or the stream breaks; what comes back is written in one ``transport.write`` per read. The
channel's counts go to the endpoint's frame metrics and to the application once per read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import (
    IDelayedCall,
    IHandshakeListener,
    IPushProducer,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from juki_gateway.certs.identity import PeerIdentity
from juki_gateway.codecs.messages import MessageType
from juki_gateway.errors import error_label
from juki_gateway.gateway.flow import ReadGate, close_gracefully, register_backpressure
from juki_gateway.gateway.handshake_log import HandshakeLog, make_record
from juki_gateway.gateway.metrics import GatewayMetrics
from juki_gateway.gateway.tls import (
    HandshakeState,
    MutualTLSClientCreator,
    PeerCertificateCache,
    alert_from_failure,
    handshake_state,
    new_conn_id,
    reason_from_failure,
)
from juki_gateway.protocols.channel import (
    ChannelApp,
    FrameChannel,
    TimestampSource,
    TooManyConnections,
)
from juki_gateway.protocols.session import FrameObserver

log = Logger(namespace="juki_gateway.connection")

#: Builds the application of an authenticated connection from its id and the peer's identity.
AppFactory = Callable[[str, PeerIdentity], ChannelApp]


def format_addr(addr: Any) -> str:
    """``host:port`` (``[host]:port`` for IPv6) of a Twisted address."""
    host = getattr(addr, "host", "?")
    port = getattr(addr, "port", "?")
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


@dataclass
class ConnectionTracker:
    """The live server-side connections of a daemon, so that shutdown can drain them."""

    live: set[ChannelProtocol] = field(default_factory=set)
    _waiters: list[Deferred[None]] = field(default_factory=list)
    #: authenticated connections by (endpoint, peer certificate name)
    by_peer: dict[tuple[str, str], set[ChannelProtocol]] = field(default_factory=dict)

    def add(self, proto: ChannelProtocol) -> None:
        """Register a connection."""
        self.live.add(proto)

    def admit_peer(self, key: tuple[str, str], proto: ChannelProtocol, limit: int) -> bool:
        """Count an authenticated connection of a peer; False when it already has ``limit``."""
        conns = self.by_peer.setdefault(key, set())
        if len(conns) >= limit:
            return False
        conns.add(proto)
        return True

    def remove(self, proto: ChannelProtocol) -> None:
        """Forget a connection; fire drain waiters once none is left."""
        self.live.discard(proto)
        key = proto.peer_key
        if key is not None:
            conns = self.by_peer.get(key)
            if conns is not None:
                conns.discard(proto)
                if not conns:
                    del self.by_peer[key]
        if not self.live:
            waiters, self._waiters = self._waiters, []
            for d in waiters:
                d.callback(None)

    def close_revoked(self, revoked: frozenset[str], now: float) -> int:
        """Close every connection whose peer certificate's serial is in ``revoked``: one
        ``revoked_during_session`` line each in the handshake log and the daemon's log."""
        closed = 0
        for proto in list(self.live):
            record = proto.record
            peer = record.state.peer if record is not None else None
            if record is None or peer is None or peer.serial not in revoked or proto.closed:
                continue
            record.write_event(now, "revoked_during_session")
            log.warn("[{conn_id}] {peer} was revoked during its session: closing", event="peer_revoked_in_session",
                     conn_id=record.state.conn_id, peer=peer.subject)
            proto.abort()
            closed += 1
        return closed

    def drain(self, clock: IReactorTime, timeout: float) -> Deferred[None]:
        """Ask every connection to finish and close; abort those still open after ``timeout``."""
        if not self.live:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._waiters.append(d)
        for proto in list(self.live):
            proto.close()

        def abort() -> None:
            for proto in list(self.live):
                proto.abort()

        call = clock.callLater(timeout, abort)

        def done(result: None) -> None:
            if call.active():
                call.cancel()
            return result

        d.addBoth(done)
        return d


@dataclass
class EndpointContext:
    """What every connection of one endpoint shares (the server side)."""

    name: str
    clock: IReactorTime
    handshake_log: HandshakeLog
    metrics: GatewayMetrics
    app_factory: AppFactory
    handshake_timeout: float
    idle_timeout: float
    tracker: ConnectionTracker
    #: authenticated connections one peer may hold to this endpoint at once
    connections_per_peer: int = 8
    #: per-read frame counts for the endpoint's metrics (None: not counted, the admin port)
    observer: FrameObserver | None = None


@dataclass
class LinkStatus:
    """The state of one outbound link, as /health and the link gauge see it."""

    name: str
    local: str
    peer: str
    established: bool = False
    held: bool = False
    #: whether another instance drives the link (a node on a shared store without the link's
    #: lease: this instance is its standby, taking it over when the lease expires)
    standby: Callable[[], bool] = field(default=lambda: False)

    def link_up(self) -> bool:
        """Whether the link holds a connection on which the peer has answered."""
        return self.established and not self.held


@dataclass
class LinkReporting:
    """Where a daemon's outbound link reports: handshake log, metrics, status, liveness PINGs."""

    handshake_log: HandshakeLog
    metrics: GatewayMetrics
    cache: PeerCertificateCache
    handshake_timeout: float
    ping_interval: float = 0.0
    status: LinkStatus | None = None


@dataclass
class LinkContext:
    """What every connection of one outbound link shares (the client side)."""

    #: the link's name in logs and metrics (``LOCAL->PEER``)
    label: str
    #: the peer's node name (the TLS client creator checked it against the certificate)
    peer: str
    clock: IReactorTime
    app_factory: AppFactory
    #: the peer's role and organisation as configured (None: not checked)
    peer_role: str | None = None
    peer_org: str | None = None
    #: the hosting daemon's reporting (None: a node run without a daemon reports nothing)
    reporting: LinkReporting | None = None
    handshake_timeout: float = 10.0


class HandshakeRecord:
    """The handshake-log line and metric of one connection (either side)."""

    __slots__ = ("_local", "_peer", "_tls", "handshake_log", "label", "logged", "metrics", "state")

    def __init__(self, label: str, state: HandshakeState, handshake_log: HandshakeLog | None,
                 metrics: GatewayMetrics | None) -> None:
        self.label = label
        self.state = state
        self.handshake_log = handshake_log
        self.metrics = metrics
        self.logged = False
        self._local = self._peer = "?"
        self._tls: dict[str, str | None] = {}

    def connected(self, transport: Any) -> None:
        """TCP is up: note both addresses."""
        self._local = format_addr(transport.getHost())
        self._peer = format_addr(transport.getPeer())

    def completed(self, handle: Any, server_name: str | None) -> None:
        """Our side of the handshake is done: note the TLS details."""
        self._tls = {"version": handle.get_protocol_version_name(),
                     "cipher": handle.get_cipher_name(), "group": handle.get_group_name(),
                     "server_name": server_name}

    @property
    def peer_addr(self) -> str:
        """The peer's address (``host:port``)."""
        return self._peer

    def _line(self, now: float, established: bool, status: str) -> None:
        if self.handshake_log is not None:
            self.handshake_log.write(make_record(
                now=now, state=self.state, endpoint=self.label, local_addr=self._local,
                peer_addr=self._peer, established=established, status=status, **self._tls))

    def write_event(self, now: float, status: str) -> None:
        """One more line for an established connection that ended for ``status`` (no metric:
        its handshake was counted when it happened)."""
        self._line(now, False, status)

    def write(self, now: float, established: bool, status: str, alert: str | None = None) -> None:
        """Write the one line of this connection and count the handshake."""
        self.logged = True
        if alert is not None:
            self.state.alert = alert
        self._line(now, established, status)
        if self.metrics is not None:
            self.metrics.record_handshake(self.label, status, now - self.state.started)


@implementer(IHandshakeListener, IPushProducer)
class ChannelProtocol(Protocol):
    """One mutual-TLS connection, server or client side (see the module docstring)."""

    def __init__(self, ctx: EndpointContext | LinkContext) -> None:
        self.ctx = ctx
        self.server = isinstance(ctx, EndpointContext)
        self.clock: IReactorTime = ctx.clock
        self.app: ChannelApp | None = None
        self.channel: FrameChannel | None = None
        self.peer: PeerIdentity | None = None
        self.peer_key: tuple[str, str] | None = None
        self.gate: ReadGate | None = None
        self.record: HandshakeRecord | None = None
        self.established = False  # client: the peer has answered
        self._closed = False
        self._timer: IDelayedCall | None = None
        self._ping: IDelayedCall | None = None
        self._timed_out = False
        self._refusal: str | None = None  # client: why we dropped the server
        self._last_activity = 0.0
        self._active: Any = None
        self._observer: FrameObserver | None = ctx.observer if isinstance(ctx, EndpointContext) else None

    # -- what the application sees (juki_gateway.protocols.channel.Connection) --------------
    @property
    def conn_id(self) -> str:
        """This connection's id (as in the handshake log)."""
        return self.record.state.conn_id if self.record is not None else "?"

    @property
    def closed(self) -> bool:
        """Whether the connection is closing or gone."""
        return self._closed

    @property
    def peer_certificate(self) -> x509.Certificate | None:
        """The certificate the peer presented and the handshake verified (read when asked:
        only the intermediate server's sessions need it, not every connection)."""
        if self.transport is None:
            return None
        cert = self.transport.getHandle().get_peer_certificate()  # type: ignore[attr-defined]
        return cert.to_cryptography() if cert is not None else None

    def write(self, data: bytes) -> None:
        """Queue encoded frames for the peer (dropped once closing)."""
        if self._closed or self.transport is None:
            return
        self.transport.write(data)
        self._report()

    def pause(self, reason: str) -> None:
        """Stop reading from the peer (TCP pushes back on it); frames already received wait."""
        if not self._closed and self.gate is not None:
            self.gate.hold(reason)

    def resume(self, reason: str) -> None:
        """Drop ``reason``; with none left, handle the frames that waited, then read again."""
        gate = self.gate
        if self._closed or gate is None or reason not in gate.reasons:
            return
        gate.drop(reason)
        self._drain()
        if not self._closed:
            gate.reopen()

    def abort(self) -> None:
        """Drop the connection at once."""
        self._closed = True
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    def close(self) -> None:
        """Send what is queued, then close (the daemon draining, a stream that broke)."""
        self._closed = True
        if self.transport is not None:
            close_gracefully(self.transport)

    # -- connection lifecycle -------------------------------------------------------------
    def connectionMade(self) -> None:
        assert self.transport is not None
        ctx = self.ctx
        if isinstance(ctx, EndpointContext):
            state = handshake_state(self.transport)
            assert state is not None, "an endpoint's protocol runs inside its MutualTLSServerCreator"
            self.record = HandshakeRecord(ctx.name, state, ctx.handshake_log, ctx.metrics)
            ctx.tracker.add(self)
            timeout = ctx.handshake_timeout
        else:
            rep = ctx.reporting
            self.record = HandshakeRecord(
                ctx.label, HandshakeState(new_conn_id(), self.clock.seconds()),
                rep.handshake_log if rep is not None else None,
                rep.metrics if rep is not None else None)
            timeout = rep.handshake_timeout if rep is not None else ctx.handshake_timeout
        self.record.connected(self.transport)
        self._timer = self.clock.callLater(timeout, self._handshake_timeout)

    def handshakeCompleted(self) -> None:
        self._cancel_timer()
        if self.server:
            self._server_authenticated()
        else:
            self._client_authenticated()

    def _server_authenticated(self) -> None:
        ctx, record = self.ctx, self.record
        assert isinstance(ctx, EndpointContext) and record is not None and self.transport is not None
        peer = record.state.peer
        identity = peer.identity if peer is not None else None
        handle = self.transport.getHandle()  # type: ignore[attr-defined]
        if identity is None:  # cannot happen: the verify callback refuses
            record.write(self.clock.seconds(), False, record.state.reason or "protocol_error")
            self.abort()
            return
        record.completed(handle, _decode(handle.get_servername()))
        record.write(self.clock.seconds(), True, "ok")
        key = (ctx.name, identity.name)
        if not ctx.tracker.admit_peer(key, self, ctx.connections_per_peer):
            self._refuse_over_cap(identity)
            return
        self.peer_key = key
        self._active = ctx.metrics.active_gauge(ctx.name, identity.role)
        self._active.inc()
        # write-side backpressure: while the peer does not read what we queued for it, we stop
        # reading from it (the transport pauses us as a producer above its high-water mark)
        register_backpressure(self.transport, self)
        self.start(identity)
        self._last_activity = self.clock.seconds()
        if ctx.idle_timeout > 0:
            self._timer = self.clock.callLater(ctx.idle_timeout, self._idle_check)

    def _client_authenticated(self) -> None:
        ctx, record = self.ctx, self.record
        assert isinstance(ctx, LinkContext) and record is not None and self.transport is not None
        handle = self.transport.getHandle()  # type: ignore[attr-defined]
        record.completed(handle, ctx.peer)
        cert = handle.get_peer_certificate()
        rep = ctx.reporting
        if cert is not None:
            record.state.peer = (rep.cache.get(cert) if rep is not None
                                 else PeerCertificateCache().get(cert))
        identity = record.state.peer.identity if record.state.peer is not None else None
        # the TLS client creator checked the chain and the server's name; its role and
        # organisation are checked here, against what the configuration says that peer is
        want = (ctx.peer, ctx.peer_role or (identity.role if identity else ""),
                ctx.peer_org or (identity.org if identity else ""))
        if identity is None or (identity.name, identity.role, identity.org) != want:
            found = (f"{identity.name} ({identity.role}, {identity.org})" if identity is not None
                     else "unreadable")
            self._refusal = "wrong_peer_identity"
            log.warn("[{conn_id}] link {link} refused: server is {found}, expected {want}", event="link_wrong_server",
                     conn_id=self.conn_id, link=ctx.label, found=found,
                     want=f"{want[0]} ({want[1]}, {want[2]})")
            self.abort()
            return
        self.start(identity)
        assert self.channel is not None
        self.write(self.channel.send(MessageType.PING))  # the probe whose answer establishes

    def start(self, identity: PeerIdentity) -> None:
        """Authenticated: build the application, hand it this connection, read what waited."""
        self.peer = identity
        assert self.transport is not None and self.record is not None
        self.gate = ReadGate(self.transport)
        self.app = app = self.ctx.app_factory(self.record.state.conn_id, identity)
        self.channel = app.channel
        app.started(self)

    def _refuse_over_cap(self, identity: PeerIdentity) -> None:
        ctx = self.ctx
        assert isinstance(ctx, EndpointContext) and self.transport is not None
        err = TooManyConnections(
            f"{identity.name} already holds {ctx.connections_per_peer} connections to {ctx.name}")
        log.info("[{conn_id}] {peer} refused: {code} ({wire}): already holds {limit} connections",
                 event="too_many_connections", conn_id=self.conn_id, peer=identity.name,
                 code=err.code, wire=err.wire_code, limit=ctx.connections_per_peer)
        ctx.metrics.frame_errors.labels(ctx.name, err.code).inc()
        channel = FrameChannel(local=ctx.name, peer=identity.name,
                               timestamp=TimestampSource(self.clock.seconds))
        self.transport.write(channel.error_frame(err))
        self.close()

    # -- reading ----------------------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        channel = self.channel
        if channel is None:  # never read application data before authorization
            return
        if not self.established and not self.server:
            self._peer_answered()
        self._last_activity = self.clock.seconds()
        channel.receive_data(data)
        self._drain()

    def _drain(self) -> None:
        """Handle the complete frames received so far, until paused, closed or broken."""
        channel, app = self.channel, self.app
        if self._closed or channel is None or app is None:
            return
        out = channel.drive(app, self._stopped)
        if out and self.transport is not None:
            self.transport.write(b"".join(out))
        self._report()
        if channel.closing and not self._closed:
            self.close()

    def _stopped(self) -> bool:
        gate = self.gate
        return self._closed or (gate is not None and bool(gate.reasons))

    def _report(self) -> None:
        channel = self.channel
        if channel is not None and channel.counts:
            counts = channel.take_counts()
            if self._observer is not None:
                self._observer.frames(counts.received, counts.sent, counts.errors)
            if self.app is not None:
                self.app.counted(counts)

    # -- IPushProducer: the socket's send buffer is full, or has drained ------------------
    def pauseProducing(self) -> None:
        self.pause("write")

    def resumeProducing(self) -> None:
        self.resume("write")

    def stopProducing(self) -> None:
        pass  # the connection is going away; connectionLost follows

    # -- client side: the peer answered, liveness PINGs -----------------------------------
    def _peer_answered(self) -> None:
        ctx, record = self.ctx, self.record
        assert isinstance(ctx, LinkContext) and record is not None
        self.established = True
        record.write(self.clock.seconds(), True, "ok")
        rep = ctx.reporting
        if rep is None:
            return
        if rep.status is not None:
            rep.status.established = True
        role = self.peer.role if self.peer is not None else "?"
        self._active = rep.metrics.active_gauge(ctx.label, role)
        self._active.inc()
        self._schedule_ping()

    def _schedule_ping(self) -> None:
        ctx = self.ctx
        assert isinstance(ctx, LinkContext)
        if ctx.reporting is not None and ctx.reporting.ping_interval > 0:
            self._ping = self.clock.callLater(ctx.reporting.ping_interval, self._send_ping)

    def _send_ping(self) -> None:
        if self.channel is not None:
            self.write(self.channel.send(MessageType.PING))
        self._schedule_ping()

    # -- timers -----------------------------------------------------------------------------
    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()

    def _handshake_timeout(self) -> None:
        self._timed_out = True
        self.abort()

    def _idle_check(self) -> None:
        ctx = self.ctx
        assert isinstance(ctx, EndpointContext)
        idle_for = self.clock.seconds() - self._last_activity
        if idle_for >= ctx.idle_timeout:
            log.info("[{conn_id}] idle for {s:.0f}s, closing", event="idle_closed", conn_id=self.conn_id, s=idle_for)
            self.close()
        else:
            self._timer = self.clock.callLater(ctx.idle_timeout - idle_for, self._idle_check)

    # -- the end ----------------------------------------------------------------------------
    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        self._cancel_timer()
        if self._ping is not None and self._ping.active():
            self._ping.cancel()
        record = self.record
        if record is not None and not record.logged:
            self._log_refused(record, reason)
        channel, app = self.channel, self.app
        if channel is not None and not self._closed:
            channel.receive_closed()
        self._closed = True
        self._report()
        if app is not None:
            app.lost()
        if self._active is not None:
            self._active.dec()
            self._active = None
        ctx = self.ctx
        if isinstance(ctx, EndpointContext):
            ctx.tracker.remove(self)
        elif ctx.reporting is not None and ctx.reporting.status is not None:
            ctx.reporting.status.established = False

    def _log_refused(self, record: HandshakeRecord, reason: Failure) -> None:
        """The connection ended before it was established: one line saying why."""
        error = reason.value if reason.value is not None else ConnectionError()
        alert = record.state.alert or alert_from_failure(error)
        if self._timed_out:
            status = "timeout"
        else:
            status = self._refusal or record.state.reason or reason_from_failure(error)
        record.write(self.clock.seconds(), False, status, alert)
        if self.server:
            # a warning, so a peer refused again and again (every port it dials from) is
            # written once per window with a count; the handshake log keeps every attempt
            log.warn("[{conn_id}] handshake refused: {status} from {peer_addr}",
                     event="handshake_refused", conn_id=record.state.conn_id, status=status,
                     peer_addr=record.peer_addr, peer_host=record.peer_addr.rsplit(":", 1)[0],
                     endpoint=record.label)
        else:
            log.warn("[{conn_id}] link {link} refused: {status} ({alert})", event="link_handshake_refused",
                     conn_id=record.state.conn_id, link=record.label, status=status, alert=alert)


def _decode(value: bytes | None) -> str | None:
    return value.decode("ascii", "replace") if value is not None else None


class ChannelFactory(Factory):
    """Builds :class:`ChannelProtocol` instances for one endpoint or one outbound link."""

    noisy = False

    def __init__(self, ctx: EndpointContext | LinkContext) -> None:
        self.ctx = ctx

    def buildProtocol(self, addr: Any) -> ChannelProtocol:
        return ChannelProtocol(self.ctx)


@implementer(IStreamClientEndpoint)
class _ReportingEndpoint:
    """A link's client endpoint that logs each failed connection attempt as a warning
    (``link_connect_failed``): the daemon's log writes it once per repeat window with a count
    (:class:`~juki_gateway.gateway.jsonlog.RepeatLimiter`), so an operator sees a link down
    without one line per retry."""

    def __init__(self, endpoint: Any, label: str, host: str, port: int) -> None:
        self._endpoint = endpoint
        self._label = label
        self._where = f"{host}:{port}"

    def connect(self, factory: Any) -> Deferred[Any]:
        d: Deferred[Any] = self._endpoint.connect(factory)

        def failed(reason: Failure) -> Failure:
            log.warn("link {link} cannot connect to {where}: {error}; retrying",
                     event="link_connect_failed", link=self._label, where=self._where,
                     error=error_label(reason.value or Exception()))
            return reason

        d.addErrback(failed)
        return d


def link_service(ctx: LinkContext, *, reactor: Any, host: str, port: int, cert: Any, key: Any,
                 ca: Any, backoff_initial: float, backoff_max: float,
                 cache: PeerCertificateCache | None = None, crl: Any = None) -> ClientService:
    """A reconnecting client of one outbound link (backoff and timing from ``reactor``); the
    server's certificate is checked against ``crl`` as well when given."""
    options = MutualTLSClientCreator(server_name=ctx.peer, cert=cert, key=key, ca=ca, cache=cache,
                                     crl=crl)
    endpoint = _ReportingEndpoint(
        wrapClientTLS(options, TCP4ClientEndpoint(reactor, host, port, timeout=5)),
        ctx.label, host, port)
    service = ClientService(
        endpoint, ChannelFactory(ctx),
        retryPolicy=backoffPolicy(initialDelay=backoff_initial, maxDelay=backoff_max),
        clock=reactor,
    )
    service.setName(f"link:{ctx.label}")
    return service
