"""The sans-IO frame session: PING/PONG, ERROR frames, handler registry, fatal errors, batching."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from juki_gateway.certs.identity import PeerIdentity
from juki_gateway.codecs.frame import Frame, encode_frame
from juki_gateway.codecs.messages import MessageType, decode_error
from juki_gateway.errors import JukiError
from juki_gateway.protocols.catalogue import LINK_MESSAGES
from juki_gateway.protocols.channel import Catalogue
from juki_gateway.protocols.session import (
    FrameSession,
    HandlerRegistry,
    SessionInfo,
    TimestampSource,
)
from tests.gateway_support import TS, decode_frames

PEER = PeerIdentity("kizon-172014", "kizon-juki", "172014")


class Tally:
    """Collects what the session reports per read."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[int, int], dict[int, int], dict[str, int]]] = []

    def frames(self, received: dict[int, int], sent: dict[int, int], errors: dict[str, int]) -> None:
        self.calls.append((received, sent, errors))


def make(registry: HandlerRegistry | None = None, tally: Tally | None = None) -> FrameSession:
    """A session of cs-172014 talking to kizon-172014 at a fixed time."""
    return FrameSession(node="cs-172014", conn_id="C1", peer=PEER,
                        registry=registry or HandlerRegistry(), seconds=lambda: 1_800_000_000.0,
                        observer=tally)


def frame(msg_type: int, **kw: int) -> bytes:
    """A frame from the peer."""
    return encode_frame(msg_type, "kizon-172014", "cs-172014", timestamp=TS, **kw)


def test_pings_batched_into_one_answer() -> None:
    """Three PINGs in one read give three PONGs in one returned buffer, tallied once."""
    tally = Tally()
    out = make(tally=tally).receive_data(frame(MessageType.PING) * 3)
    frames = decode_frames(out)
    assert [f.msg_type for f in frames] == [MessageType.PONG] * 3
    assert frames[0].header.sender == "cs-172014" and frames[0].header.receiver == "kizon-172014"
    assert frames[0].header.timestamp == "20270115080000"
    assert tally.calls == [({MessageType.PING: 3}, {MessageType.PONG: 3}, {})]


def test_partial_frames_wait_for_more_bytes() -> None:
    """A frame split across reads is answered once it is complete."""
    s = make()
    data = frame(MessageType.PING)
    assert s.receive_data(data[:10]) == b""
    assert [f.msg_type for f in decode_frames(s.receive_data(data[10:]))] == [MessageType.PONG]


def test_registered_handler_answers() -> None:
    """A registered handler's frames are sent back; its JukiError becomes an ERROR frame."""
    reg = HandlerRegistry()

    class Refused(JukiError):
        code = "refused_here"
        wire_code = 4242

    def on_ack(f: Frame, info: SessionInfo) -> Iterable[bytes]:
        if f.header.seq == 0:
            raise Refused("seq 0 is not allowed")
        yield encode_frame(MessageType.ACK, info.node, info.peer.name, timestamp=info.timestamp(),
                           seq=f.header.seq)

    reg.register_handler(MessageType.ACK, on_ack)
    with pytest.raises(ValueError):
        reg.register_handler(MessageType.ACK, on_ack)
    out = decode_frames(make(reg).receive_data(frame(MessageType.ACK, seq=7) + frame(MessageType.ACK)))
    assert [f.msg_type for f in out] == [MessageType.ACK, MessageType.ERROR]
    assert out[0].header.seq == 7
    assert decode_error(out[1].body)[:2] == (4242, "refused_here")


def test_unknown_and_unhandled_types_get_error_and_session_survives() -> None:
    """Unknown type → 2111, known but unhandled → 3001, PONG/ERROR silent, session stays open."""
    s = make()
    out = decode_frames(s.receive_data(
        frame(0x7777, request_no=9) + frame(MessageType.NACK - 1) + frame(MessageType.PONG)
        + frame(MessageType.PING)
    ))
    assert [f.msg_type for f in out] == [MessageType.ERROR, MessageType.ERROR, MessageType.PONG]
    assert decode_error(out[0].body)[0] == 2111 and out[0].header.request_no == 9
    assert decode_error(out[1].body)[0] == 3001
    assert not s.closing


def test_oversized_length_sends_error_and_closes() -> None:
    """A header announcing a body over the limit gets one ERROR frame and closes the session."""
    s = FrameSession(node="cs-172014", conn_id="C1", peer=PEER, registry=HandlerRegistry(),
                     seconds=lambda: 0.0, catalogue=Catalogue(LINK_MESSAGES, max_frame=100))
    big = encode_frame(MessageType.PING, "kizon-172014", "cs-172014", b"x" * 200, timestamp=TS)
    out = decode_frames(s.receive_data(big[:120]))
    assert [f.msg_type for f in out] == [MessageType.ERROR]
    assert decode_error(out[0].body)[1] == "frame_too_large"
    assert s.closing
    assert s.receive_data(frame(MessageType.PING)) == b""


def test_timestamp_source_follows_clock() -> None:
    """The header timestamp is the injected clock's UTC second."""
    now = [0.0]
    ts = TimestampSource(lambda: now[0])
    assert ts() == "19700101000000"
    now[0] = 86400 + 3661.9
    assert ts() == "19700102010101"
