"""The thin Twisted adapter of a Juki-net connection: bytes → frames → the node, and back.

One class serves both directions: a connection a peer opened to our endpoint (``outbound_peer``
is None; the peer's identity comes from its verified certificate) and a connection we opened
to a peer's endpoint (``outbound_peer`` names it; the server certificate was checked against
that name). Frames are read through the connection's sans-IO
:class:`~juki_gateway.protocols.channel.FrameChannel` (the error policy of docs/sequencing.md);
all logic is in the node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IHandshakeListener, IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from juki_gateway.certs.identity import identity_from_certificate
from juki_gateway.codecs.frame import Frame
from juki_gateway.errors import JukiError
from juki_gateway.gateway.flow import ReadGate, close_gracefully, register_backpressure
from juki_gateway.gateway.tls import handshake_state, new_conn_id
from juki_gateway.protocols.channel import FrameChannel, Refused
from juki_gateway.protocols.session import FrameObserver

if TYPE_CHECKING:
    from juki_gateway.gateway.jukinet.node import JukinetNode

@implementer(IHandshakeListener, IPushProducer)
class JukinetProtocol(Protocol):
    """One authenticated connection carrying Juki-net frames."""

    def __init__(self, node: JukinetNode, outbound_peer: str | None = None, *,
                 observer: FrameObserver | None = None, conn_id: str = "") -> None:
        self.node = node
        self.outbound_peer = outbound_peer
        self.peer_id = outbound_peer or "?"
        self.peer_role = ""
        self.peer_org = ""
        self.conn_id = conn_id or new_conn_id()
        self.ready = False
        self.closed = False
        #: reading stops while the node's store catches up ("store") or the peer does not read
        #: our replies ("write"); a hosting gateway connection hands its own gate in
        self.gate: ReadGate | None = None
        self.channel: FrameChannel | None = None
        self._observer = observer  # a hosting gateway's per-endpoint frame metrics
        self._early: list[bytes] = []
        self.state: dict[str, Any] = {}  # per-connection handler state (consistency check …)

    def connectionMade(self) -> None:
        # a connection of the node's own (its listener, an outbound link); a gateway-hosted
        # connection gets the gateway's gate through attach_gate instead
        self.attach_gate(ReadGate(self.transport))
        if self.outbound_peer is None:  # a peer that does not read its replies is throttled
            register_backpressure(self.transport, self)

    def attach_gate(self, gate: ReadGate) -> None:
        """Use ``gate`` for this connection's read-side flow control."""
        self.gate = gate

    @property
    def paused(self) -> bool:
        """Whether reading and handling frames wait (store flow control or write backpressure)."""
        return self.gate is not None and self.gate.held

    def handshakeCompleted(self) -> None:
        if self.outbound_peer is None:
            st = handshake_state(self.transport)
            identity = st.peer.identity if st is not None and st.peer is not None else None
            if identity is None:
                self.abort()
                return
            self.peer_id, self.peer_role, self.peer_org = identity.name, identity.role, identity.org
            self.conn_id = st.conn_id if st is not None else self.conn_id
        else:
            # The TLS client creator checked the chain and the server's name; check its role and
            # organisation too, against what our configuration says that peer is.
            role, org = self.node.peer_role_org(self.outbound_peer)
            try:
                cert = self.transport.getPeerCertificate()  # type: ignore[union-attr]
                identity = identity_from_certificate(cert.to_cryptography())
            except (JukiError, AttributeError) as exc:
                self.node.count_error("bad_peer_identity")
                self.node.log_refusal(self, f"server identity unreadable: {exc}")
                self.abort()
                return
            if (identity.name, identity.role, identity.org) != (self.outbound_peer, role, org):
                self.node.count_error("wrong_peer_identity")
                self.node.log_refusal(
                    self, f"server is {identity.name} ({identity.role}, {identity.org}), "
                    f"expected {self.outbound_peer} ({role}, {org})")
                self.abort()
                return
            self.peer_role, self.peer_org = role, org
        self.start()

    def start(self) -> None:
        """The peer is known: open the frame channel and hand the connection to the node."""
        self.channel = self.node.open_channel(self)
        self.ready = True
        self.node.connection_ready(self)
        early, self._early = self._early, []
        for data in early:
            self.dataReceived(data)

    def dataReceived(self, data: bytes) -> None:
        if not self.ready:
            self._early.append(data)
            return
        assert self.channel is not None
        self.channel.receive_data(data)
        self._drain()

    def _drain(self) -> None:
        """Handle the complete frames received so far, until paused or closed."""
        channel = self.channel
        if self.closed or channel is None:
            return
        out = channel.drive(self, self._stopped)
        if out and self.transport is not None:
            self.transport.write(b"".join(out))
        self._count()
        if channel.closing and not self.closed:
            self.closed = True
            assert self.transport is not None
            close_gracefully(self.transport)

    def _stopped(self) -> bool:
        return self.paused or self.closed

    def _count(self) -> None:
        channel = self.channel
        if channel is not None and channel.counts:
            counts = channel.take_counts()
            self.node.frames_counted(counts)
            if self._observer is not None:
                self._observer.frames(counts.received, counts.sent, counts.errors)

    # -- the channel's handler ------------------------------------------------------------
    def frame(self, frame: Frame) -> None:
        """A frame that passed the channel's checks: the node acts on it."""
        self.node.frame_received(self, frame)

    def refused(self, event: Refused) -> list[bytes] | None:
        """A frame the channel refused: the node answers it (in order when sequenced)."""
        return self.node.frame_refused(self, event)

    def pause(self, reason: str = "store") -> None:
        """Stop reading from the peer (TCP pushes back on it); frames already received wait."""
        if not self.closed and self.gate is not None:
            self.gate.hold(reason)

    def resume(self, reason: str = "store") -> None:
        """Read again, handling the frames that arrived before the pause first."""
        gate = self.gate
        if self.closed or gate is None or reason not in gate.reasons:
            return
        gate.drop(reason)
        self._drain()
        if not self.closed:
            gate.reopen()

    # -- IPushProducer: the transport's send buffer is full, or has drained --------------------
    def pauseProducing(self) -> None:
        self.pause("write")

    def resumeProducing(self) -> None:
        self.resume("write")

    def stopProducing(self) -> None:
        pass  # the connection is going away; connectionLost follows

    def connectionLost(self, reason: Failure | None = None) -> None:
        if self.channel is not None and not self.closed:
            self.channel.receive_closed()
            self._count()
        self.closed = True
        if self.ready:
            self.node.connection_lost(self)

    def send_frame(self, msg_type: int, body: bytes = b"", **header: int) -> None:
        """Write one frame from this node to the peer."""
        if self.closed or self.transport is None or self.channel is None:
            return
        self.transport.write(self.channel.send(msg_type, body, **header))
        if self._observer is not None:
            self._count()

    def abort(self) -> None:
        """Drop the connection at once."""
        self.closed = True
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]


class JukinetServerFactory(Factory):
    """Builds server-side protocols for a node's endpoint (wrap it in mutual TLS)."""

    def __init__(self, node: JukinetNode) -> None:
        self.node = node

    def buildProtocol(self, addr: Any) -> JukinetProtocol:
        return JukinetProtocol(self.node)


class JukinetClientFactory(Factory):
    """Builds the protocol of an outbound link to one peer."""

    def __init__(self, node: JukinetNode, peer: str) -> None:
        self.node = node
        self.peer = peer

    def buildProtocol(self, addr: Any) -> JukinetProtocol:
        return JukinetProtocol(self.node, self.peer)
