"""The thin Twisted adapter of a Juki-net connection: bytes → frames → the node, and back.

One class serves both directions: a connection a peer opened to our endpoint (``outbound_peer``
is None; the peer's identity comes from its verified certificate) and a connection we opened
to a peer's endpoint (``outbound_peer`` names it; the server certificate was checked against
that name). Parsing is the codec's sans-IO :class:`FrameDecoder`; all logic is in the node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from juki_gateway.certs.identity import identity_from_certificate
from juki_gateway.codecs.errors import FatalFrameError
from juki_gateway.codecs.frame import Frame, FrameDecoder, FrameRejected
from juki_gateway.codecs.messages import MessageType, encode_error
from juki_gateway.errors import JukiError
from juki_gateway.gateway.tls import handshake_state
from juki_gateway.protocols.jukinet.messages import record_lengths

if TYPE_CHECKING:
    from juki_gateway.gateway.jukinet.node import JukinetNode

MAX_BODY = 8 << 20


@implementer(IHandshakeListener)
class JukinetProtocol(Protocol):
    """One authenticated connection carrying Juki-net frames."""

    def __init__(self, node: JukinetNode, outbound_peer: str | None = None) -> None:
        self.node = node
        self.outbound_peer = outbound_peer
        self.peer_id = outbound_peer or "?"
        self.peer_role = ""
        self.peer_org = ""
        self.ready = False
        self.closed = False
        self.paused = False  # reading stopped until the node's store catches up (flow control)
        self.decoder = FrameDecoder(record_lengths(), max_body=MAX_BODY)
        self._early: list[bytes] = []
        self.state: dict[str, Any] = {}  # per-connection handler state (consistency check …)

    def handshakeCompleted(self) -> None:
        if self.outbound_peer is None:
            st = handshake_state(self.transport)
            identity = st.peer.identity if st is not None and st.peer is not None else None
            if identity is None:
                self.abort()
                return
            self.peer_id, self.peer_role, self.peer_org = identity.name, identity.role, identity.org
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
        self.ready = True
        self.node.connection_ready(self)
        early, self._early = self._early, []
        for data in early:
            self.dataReceived(data)

    def dataReceived(self, data: bytes) -> None:
        if not self.ready:
            self._early.append(data)
            return
        self.decoder.receive_data(data)
        self._drain()

    def _drain(self) -> None:
        """Handle the complete frames received so far, until paused or closed."""
        while not self.closed and not self.paused:
            try:
                event = self.decoder.next_event()
            except FatalFrameError as exc:
                self.node.count_error(exc.code)
                self.send_frame(MessageType.ERROR, encode_error(exc.wire_code, exc.code, exc.message),
                                record_count=1)
                self.closed = True
                assert self.transport is not None
                self.transport.loseConnection()
                return
            if event is None:
                return
            if isinstance(event, FrameRejected):
                self.node.frame_rejected(self, event)
            else:
                assert isinstance(event, Frame)
                self.node.frame_received(self, event)

    def pause(self) -> None:
        """Stop reading from the peer (TCP pushes back on it); frames already received wait."""
        if not self.paused and not self.closed and self.transport is not None:
            self.paused = True
            self.transport.pauseProducing()  # type: ignore[attr-defined]

    def resume(self) -> None:
        """Read again, handling the frames that arrived before the pause first."""
        if self.paused and not self.closed and self.transport is not None:
            self.paused = False
            self._drain()
            if not self.paused and not self.closed:
                self.transport.resumeProducing()  # type: ignore[attr-defined]

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.closed = True
        if self.ready:
            self.node.connection_lost(self)

    def send_frame(self, msg_type: int, body: bytes = b"", **header: int) -> None:
        """Write one frame from this node to the peer."""
        if self.closed or self.transport is None:
            return
        self.transport.write(self.node.encode(msg_type, self.peer_id, body, **header))

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
