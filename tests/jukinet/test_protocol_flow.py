"""The Juki-net protocol's flow control, on a fake transport: pause stops handling frames
(and reading), resume handles the frames that arrived meanwhile, in order, then reads again."""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import StringTransport

from juki_gateway.codecs.frame import Frame, encode_frame
from juki_gateway.codecs.messages import MessageType
from juki_gateway.gateway.jukinet.protocol import JukinetProtocol
from juki_gateway.protocols.channel import FrameChannel

TS = "20261126120000"


class Node:
    """The node calls the protocol makes; pauses it after ``pause_after`` frames."""

    def __init__(self, pause_after: int) -> None:
        self.frames: list[int] = []
        self.pause_after = pause_after

    def frame_received(self, proto: JukinetProtocol, frame: Frame) -> None:
        self.frames.append(frame.header.request_no)
        if len(self.frames) == self.pause_after:
            proto.pause()

    def open_channel(self, proto: JukinetProtocol) -> FrameChannel:
        return FrameChannel(local="cs-172014", peer=proto.peer_id, timestamp=lambda: TS)

    def connection_ready(self, proto: JukinetProtocol) -> None:
        pass

    def frames_counted(self, counts: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected node call {name}")


def _pings(*numbers: int) -> bytes:
    """Frames the channel hands to the node (ACKs: no body), numbered by request_no."""
    return b"".join(encode_frame(MessageType.ACK, "kizon-172014", "cs-172014", timestamp=TS,
                                 request_no=n) for n in numbers)


def _connected(pause_after: int) -> tuple[Node, JukinetProtocol, StringTransport]:
    """A protocol past its handshake on a fake transport, with a fake node."""
    node = Node(pause_after)
    proto = JukinetProtocol(node)  # type: ignore[arg-type]
    proto.peer_id = "kizon-172014"
    transport = StringTransport()
    proto.makeConnection(transport)
    proto.start()
    return node, proto, transport


def test_pause_holds_buffered_frames_until_resume() -> None:
    node, proto, transport = _connected(pause_after=1)
    proto.dataReceived(_pings(1, 2, 3))
    assert node.frames == [1] and transport.producerState == "paused"
    proto.dataReceived(_pings(4))  # bytes already in flight when reading stopped: buffered
    assert node.frames == [1]
    proto.resume()
    assert node.frames == [1, 2, 3, 4] and transport.producerState == "producing"
    proto.dataReceived(_pings(5))
    assert node.frames == [1, 2, 3, 4, 5]


def test_resume_that_pauses_again_keeps_the_rest_buffered() -> None:
    node, proto, transport = _connected(pause_after=1)
    proto.dataReceived(_pings(1, 2, 3))
    node.pause_after = 2  # the next frame handled fills the next transaction again
    proto.resume()
    assert node.frames == [1, 2] and transport.producerState == "paused"
    proto.resume()
    assert node.frames == [1, 2, 3] and transport.producerState == "producing"


def test_pause_and_resume_after_close_do_nothing() -> None:
    _, proto, transport = _connected(pause_after=0)
    proto.closed = True
    proto.pause()
    proto.resume()
    assert not proto.paused and transport.producerState == "producing"
