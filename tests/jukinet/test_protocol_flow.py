"""The connection adapter's flow control, on a fake transport: pause stops handling frames (and
reading), resume handles the frames that arrived meanwhile, in order, then reads again; several
reasons (a node's store, write backpressure) must all be dropped before reading resumes."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from juki_gateway.certs.identity import PeerIdentity
from juki_gateway.codecs.frame import Frame, encode_frame
from juki_gateway.codecs.messages import MessageType
from juki_gateway.gateway.connection import ChannelProtocol, LinkContext
from juki_gateway.protocols.channel import ChannelApp, Connection, FrameChannel

TS = "20261126120000"
PEER = PeerIdentity("kizon-172014", "kizon-juki", "172014")


class App(ChannelApp):
    """Records the frames it is handed; pauses the connection after ``pause_after`` of them."""

    def __init__(self, pause_after: int) -> None:
        self.frames: list[int] = []
        self.pause_after = pause_after
        self.conn: Connection | None = None
        self.channel = FrameChannel(local="cs-172014", peer=PEER.name, timestamp=lambda: TS)

    def started(self, conn: Connection) -> None:
        self.conn = conn

    def frame(self, frame: Frame) -> None:
        self.frames.append(frame.header.request_no)
        if len(self.frames) == self.pause_after:
            assert self.conn is not None
            self.conn.pause("store")


def _frames(*numbers: int) -> bytes:
    """Frames the channel hands to the application (ACKs: no body), numbered by request_no."""
    return b"".join(encode_frame(MessageType.ACK, "kizon-172014", "cs-172014", timestamp=TS,
                                 request_no=n) for n in numbers)


def _connected(pause_after: int) -> tuple[App, ChannelProtocol, StringTransport]:
    """A protocol past its handshake on a fake transport, running an :class:`App`."""
    app = App(pause_after)
    ctx = LinkContext(label="cs-172014->kizon-172014", peer=PEER.name, clock=Clock(),
                      app_factory=lambda _conn_id, _peer: app)
    proto = ChannelProtocol(ctx)
    transport = StringTransport()
    proto.makeConnection(transport)
    proto.start(PEER)
    proto.established = True  # as if the peer had answered our PING
    return app, proto, transport


def test_pause_holds_buffered_frames_until_resume() -> None:
    app, proto, transport = _connected(pause_after=1)
    proto.dataReceived(_frames(1, 2, 3))
    assert app.frames == [1] and transport.producerState == "paused"
    proto.dataReceived(_frames(4))  # bytes already in flight when reading stopped: buffered
    assert app.frames == [1]
    proto.resume("store")
    assert app.frames == [1, 2, 3, 4] and transport.producerState == "producing"
    proto.dataReceived(_frames(5))
    assert app.frames == [1, 2, 3, 4, 5]


def test_resume_that_pauses_again_keeps_the_rest_buffered() -> None:
    app, proto, transport = _connected(pause_after=1)
    proto.dataReceived(_frames(1, 2, 3))
    app.pause_after = 2  # the next frame handled fills the next transaction again
    proto.resume("store")
    assert app.frames == [1, 2] and transport.producerState == "paused"
    proto.resume("store")
    assert app.frames == [1, 2, 3] and transport.producerState == "producing"


def test_reading_resumes_only_once_every_reason_is_dropped() -> None:
    app, proto, transport = _connected(pause_after=1)
    proto.dataReceived(_frames(1, 2))
    proto.pauseProducing()  # the peer stopped reading our replies as well
    proto.resume("store")
    assert app.frames == [1] and transport.producerState == "paused"
    proto.resumeProducing()
    assert app.frames == [1, 2] and transport.producerState == "producing"


def test_pause_and_resume_after_close_do_nothing() -> None:
    app, proto, transport = _connected(pause_after=0)
    proto.abort()
    proto.pause("store")
    proto.resume("store")
    proto.dataReceived(_frames(1))
    assert app.frames == [] and transport.producerState == "producing"
