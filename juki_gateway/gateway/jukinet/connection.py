"""A Juki-net node's side of one connection: the channel application that hands frames to the node.

One class serves both directions: a connection a peer opened to the node's endpoint
(``outbound_peer`` is None) and a connection the node opened to a peer's endpoint (one of its
outbound links; ``outbound_peer`` names it). The I/O is the daemon's one adapter,
:class:`~juki_gateway.gateway.connection.ChannelProtocol`, which reads through this object's
:class:`~juki_gateway.protocols.channel.FrameChannel` (the error policy of docs/sequencing.md);
all logic is in the node. A connection that arrives before the node's store is open waits,
paused, until the node is ready.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from juki_gateway.certs.identity import PeerIdentity
from juki_gateway.codecs.frame import Frame
from juki_gateway.protocols.channel import ChannelApp, ChannelCounts, Connection, Refused

if TYPE_CHECKING:
    from juki_gateway.gateway.jukinet.node import JukinetNode

#: The read-gate reason of a connection waiting for its node's store to open.
OPENING = "opening"


class NodeConnection(ChannelApp):
    """One authenticated connection carrying Juki-net frames to and from a node."""

    def __init__(self, node: JukinetNode, peer: PeerIdentity, conn_id: str,
                 outbound_peer: str | None = None) -> None:
        self.node = node
        self.outbound_peer = outbound_peer
        self.peer_id, self.peer_role, self.peer_org = peer.name, peer.role, peer.org
        self.conn_id = conn_id
        self.ready = False
        self.conn: Connection | None = None
        #: per-connection handler state, by (handler, request number): a consistency check …
        self.state: dict[tuple[str, int], Any] = {}
        self.channel = node.open_channel(self)

    @property
    def closed(self) -> bool:
        """Whether the connection is closing or gone (frames sent now are dropped)."""
        return self.conn is None or self.conn.closed

    def started(self, conn: Connection) -> None:
        """The connection is authenticated: start now, or once the node's store is open."""
        self.conn = conn
        if self.node.ready.called:
            self._ready(None)
        else:  # frames that arrive meanwhile wait in the channel; TCP pushes back on the peer
            conn.pause(OPENING)
            self.node.ready.addCallback(self._ready)

    def _ready(self, result: object) -> object:
        if self.conn is not None and not self.conn.closed:
            self.ready = True
            self.node.connection_ready(self)
            self.conn.resume(OPENING)
        return result

    # -- the channel's handler ------------------------------------------------------------
    def frame(self, frame: Frame) -> None:
        """A frame that passed the channel's checks: the node acts on it."""
        self.node.frame_received(self, frame)

    def refused(self, event: Refused) -> list[bytes] | None:
        """A frame the channel refused: the node answers it (in order when sequenced)."""
        return self.node.frame_refused(self, event)

    def counted(self, counts: ChannelCounts) -> None:
        """Refused and broken frames are refusals this node sent."""
        self.node.frames_counted(counts)

    def lost(self) -> None:
        """The connection is gone: the node forgets it."""
        if self.ready:
            self.node.connection_lost(self)

    # -- what the node does with the connection ----------------------------------------------
    def pause(self, reason: str = "store") -> None:
        """Stop reading from the peer (TCP pushes back on it); frames already received wait."""
        if self.conn is not None:
            self.conn.pause(reason)

    def resume(self, reason: str = "store") -> None:
        """Read again, handling the frames that arrived before the pause first."""
        if self.conn is not None:
            self.conn.resume(reason)

    def send_frame(self, msg_type: int, body: bytes = b"", **header: int) -> None:
        """Write one frame from this node to the peer."""
        conn = self.conn
        if conn is None or conn.closed:
            return
        conn.write(self.channel.send(msg_type, body, **header))

    def abort(self) -> None:
        """Drop the connection at once."""
        if self.conn is not None:
            self.conn.abort()
