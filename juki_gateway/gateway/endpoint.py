"""The Twisted adapter of one endpoint: handshake bookkeeping, timeouts, and a sans-IO session.

:class:`EndpointProtocol` sits inside ``TLSMemoryBIOProtocol``. It owns no protocol logic: it
writes the handshake-log line and moves the metrics when the handshake completes or fails,
applies the handshake and idle timeouts with the injected clock, and hands received bytes to a
session object (see :mod:`juki_gateway.protocols.session`), writing whatever the session
answers in a single ``transport.write`` per read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from typing import Protocol as TypingProtocol

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import (
    IDelayedCall,
    IHandshakeListener,
    IPushProducer,
    IReactorTime,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from juki_gateway.certs.identity import PeerIdentity
from juki_gateway.gateway.flow import ReadGate, close_gracefully, register_backpressure
from juki_gateway.gateway.handshake_log import HandshakeLog, make_record
from juki_gateway.gateway.metrics import GatewayMetrics
from juki_gateway.gateway.tls import (
    HandshakeState,
    alert_from_failure,
    handshake_state,
    reason_from_failure,
)
from juki_gateway.protocols.channel import FrameChannel, TimestampSource, TooManyConnections

log = Logger(namespace="juki_gateway.endpoint")


class Session(TypingProtocol):
    """The sans-IO application layer of one established connection."""

    @property
    def closing(self) -> bool:
        """True once the connection must be closed after the pending output is sent."""
        ...

    def receive_data(self, data: bytes) -> bytes:
        """Feed received bytes; return the bytes to send (possibly empty)."""
        ...


SessionFactory = Callable[[str, PeerIdentity], Session]


def format_addr(addr: Any) -> str:
    """``host:port`` (``[host]:port`` for IPv6) of a Twisted address."""
    host = getattr(addr, "host", "?")
    port = getattr(addr, "port", "?")
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


@dataclass
class ConnectionTracker:
    """The live connections of a daemon, so that shutdown can drain them."""

    live: set[EndpointProtocol] = field(default_factory=set)
    _waiters: list[Deferred[None]] = field(default_factory=list)
    #: authenticated connections by (endpoint, peer certificate name)
    by_peer: dict[tuple[str, str], set[EndpointProtocol]] = field(default_factory=dict)

    def add(self, proto: EndpointProtocol) -> None:
        """Register a connection."""
        self.live.add(proto)

    def admit_peer(self, key: tuple[str, str], proto: EndpointProtocol, limit: int) -> bool:
        """Count an authenticated connection of a peer; False when it already has ``limit``."""
        conns = self.by_peer.setdefault(key, set())
        if len(conns) >= limit:
            return False
        conns.add(proto)
        return True

    def remove(self, proto: EndpointProtocol) -> None:
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

    def drain(self, clock: IReactorTime, timeout: float) -> Deferred[None]:
        """Ask every connection to finish and close; abort those still open after ``timeout``."""
        if not self.live:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._waiters.append(d)
        for proto in list(self.live):
            proto.close_gracefully()

        def abort() -> None:
            for proto in list(self.live):
                proto.abort()

        call = clock.callLater(timeout, abort)
        d.addBoth(lambda r: (call.cancel() if call.active() else None, r)[1])
        return d


@dataclass
class EndpointContext:
    """What every connection of one endpoint shares."""

    name: str
    clock: IReactorTime
    handshake_log: HandshakeLog
    metrics: GatewayMetrics
    session_factory: SessionFactory
    handshake_timeout: float
    idle_timeout: float
    tracker: ConnectionTracker
    #: authenticated connections one peer may hold to this endpoint at once
    connections_per_peer: int = 8


@implementer(IHandshakeListener, IPushProducer)
class EndpointProtocol(Protocol):
    """The server side of one mutual-TLS connection of an endpoint."""

    def __init__(self, ctx: EndpointContext) -> None:
        self.ctx = ctx
        self.state: HandshakeState | None = None
        self.session: Session | None = None
        self.peer_role = ""
        self._timer: IDelayedCall | None = None
        self._last_activity = 0.0
        self._timed_out = False
        self._logged = False
        self._local = self._peer = "?"
        self._active: Any = None
        self.peer_key: tuple[str, str] | None = None
        self.gate: ReadGate | None = None

    # -- connection lifecycle -------------------------------------------------------------
    def connectionMade(self) -> None:
        assert self.transport is not None
        handle = self.transport.getHandle()  # type: ignore[attr-defined]
        self.state = handshake_state(self.transport)
        self._local = format_addr(self.transport.getHost())
        self._peer = format_addr(self.transport.getPeer())
        self._handle = handle
        self.ctx.tracker.add(self)
        self._timer = self.ctx.clock.callLater(self.ctx.handshake_timeout, self._handshake_timeout)

    def handshakeCompleted(self) -> None:
        state = self.state
        assert state is not None
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        peer = state.peer
        if peer is None or peer.identity is None:  # cannot happen: the verify callback refuses
            self._log(False, state.reason or "protocol_error")
            self.abort()
            return
        handle = self._handle
        self._log(
            True, "ok",
            version=handle.get_protocol_version_name(),
            cipher=handle.get_cipher_name(),
            group=handle.get_group_name(),
            server_name=_decode(handle.get_servername()),
        )
        self.peer_role = peer.identity.role
        key = (self.ctx.name, peer.identity.name)
        if not self.ctx.tracker.admit_peer(key, self, self.ctx.connections_per_peer):
            self._refuse_over_cap(peer.identity)
            return
        self.peer_key = key
        self._active = self.ctx.metrics.active_gauge(self.ctx.name, self.peer_role)
        self._active.inc()
        self.session = self.ctx.session_factory(state.conn_id, peer.identity)
        # write-side backpressure: while the peer does not read what we queued for it, we stop
        # reading from it (the transport pauses us as a producer above its high-water mark)
        assert self.transport is not None
        self.gate = ReadGate(self.transport)
        register_backpressure(self.transport, self)
        attach = getattr(self.session, "attach", None)
        if attach is not None:  # a session that writes on its own (a hosted Juki-net node)
            attach(self.transport, self.gate)
        self._last_activity = self.ctx.clock.seconds()
        if self.ctx.idle_timeout > 0:
            self._timer = self.ctx.clock.callLater(self.ctx.idle_timeout, self._idle_check)

    def _refuse_over_cap(self, identity: PeerIdentity) -> None:
        err = TooManyConnections(
            f"{identity.name} already holds {self.ctx.connections_per_peer} connections to "
            f"{self.ctx.name}")
        log.info("[{conn_id}] {peer} refused: {code} ({wire}): {msg}", conn_id=self.conn_id,
                 peer=identity.name, code=err.code, wire=err.wire_code, msg=err.message)
        self.ctx.metrics.frame_errors.labels(self.ctx.name, err.code).inc()
        channel = FrameChannel(local=self.ctx.name, peer=identity.name,
                               timestamp=TimestampSource(self.ctx.clock.seconds))
        assert self.transport is not None
        self.transport.write(channel.error_frame(err))
        close_gracefully(self.transport)

    # -- IPushProducer --------------------------------------------------------------------
    def pauseProducing(self) -> None:
        if self.gate is not None:
            self.gate.hold("write")

    def resumeProducing(self) -> None:
        resume = getattr(self.session, "resume_reading", None)
        if resume is not None:  # a hosted node handles the frames buffered meanwhile first
            resume()
        elif self.gate is not None:
            self.gate.drop("write")
            self.gate.reopen()

    def stopProducing(self) -> None:
        pass  # the connection is going away; connectionLost follows

    def dataReceived(self, data: bytes) -> None:
        session = self.session
        if session is None:  # never read application data before authorization
            return
        self._last_activity = self.ctx.clock.seconds()
        out = session.receive_data(data)
        assert self.transport is not None
        if out:
            self.transport.write(out)
        if session.closing:
            close_gracefully(self.transport)

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        state = self.state
        if state is not None and self.session is None and not self._logged:
            state.alert = state.alert or alert_from_failure(reason.value)
            if self._timed_out:
                status = "timeout"
            else:
                status = state.reason or reason_from_failure(reason.value)
            self._log(False, status)
        if self.session is not None:
            closed = getattr(self.session, "connection_closed", None)
            if closed is not None:
                closed()
            self._active.dec()
        self.ctx.tracker.remove(self)

    # -- timers and shutdown --------------------------------------------------------------
    def _handshake_timeout(self) -> None:
        self._timed_out = True
        self.abort()

    def _idle_check(self) -> None:
        idle_for = self.ctx.clock.seconds() - self._last_activity
        if idle_for >= self.ctx.idle_timeout:
            log.info("[{conn_id}] idle for {s:.0f}s, closing", conn_id=self.conn_id, s=idle_for)
            assert self.transport is not None
            close_gracefully(self.transport)
        else:
            self._timer = self.ctx.clock.callLater(self.ctx.idle_timeout - idle_for, self._idle_check)

    def close_gracefully(self) -> None:
        """Send what is pending and close (used when the daemon drains)."""
        if self.transport is not None:
            close_gracefully(self.transport)

    def abort(self) -> None:
        """Drop the connection at once."""
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    @property
    def conn_id(self) -> str:
        """This connection's id (as in the handshake log)."""
        return self.state.conn_id if self.state is not None else "?"

    # -- logging --------------------------------------------------------------------------
    def _log(self, established: bool, status: str, **tls: str | None) -> None:
        state = self.state
        assert state is not None
        self._logged = True
        now = self.ctx.clock.seconds()
        record = make_record(
            now=now, state=state, endpoint=self.ctx.name, local_addr=self._local,
            peer_addr=self._peer, established=established, status=status, **tls,
        )
        self.ctx.handshake_log.write(record)
        self.ctx.metrics.record_handshake(self.ctx.name, status, now - state.started)
        if not established:
            log.info("[{conn_id}] handshake refused: {status} from {peer}",
                     conn_id=state.conn_id, status=status, peer=self._peer)


def _decode(value: bytes | None) -> str | None:
    return value.decode("ascii", "replace") if value is not None else None


class EndpointFactory(Factory):
    """Builds :class:`EndpointProtocol` instances for one endpoint."""

    noisy = False

    def __init__(self, ctx: EndpointContext) -> None:
        self.ctx = ctx

    def buildProtocol(self, addr: Any) -> EndpointProtocol:
        return EndpointProtocol(self.ctx)
