"""The time window of intermediate-link frames: pure check and session, on a fixed clock."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from cryptography import x509

from juki_gateway.codecs.frame import Frame, FrameDecoder
from juki_gateway.codecs.messages import MessageType, decode_error
from juki_gateway.gateway.intermediate.service import IntermediateService
from juki_gateway.gateway.intermediate.session import LENGTHS, ImsSession
from juki_gateway.protocols.intermediate.errors import FrameTimeOutsideWindow
from juki_gateway.protocols.intermediate.freshness import FRAME_TIME_WINDOW, frame_time_error
from juki_gateway.protocols.intermediate.messages import ImsMessageType
from juki_gateway.protocols.intermediate.signing import sign_frame

from .conftest import START
from .helpers import NETWORK_KEY, make_permit
from .test_service import query_body, setup_person


@pytest.mark.parametrize(
    ("stamp", "refused"),
    [
        ("20261126120000", False),
        ("20261126115500", False),  # exactly the window behind
        ("20261126120500", False),  # exactly the window ahead
        ("20261126115459", True),
        ("20261126120501", True),
        ("20261125120000", True),
        ("20991231235959", True),
    ],
)
def test_the_window_is_checked_against_the_given_clock(stamp: str, refused: bool) -> None:
    """A timestamp at most 300 s from the clock passes; one second more either way is refused
    with 6612, saying which side."""
    assert FRAME_TIME_WINDOW == 300
    error = frame_time_error(stamp, START)
    assert (error is not None) is refused
    if error is not None:
        assert isinstance(error, FrameTimeOutsideWindow) and error.wire_code == 6612
        assert ("ahead of" if stamp > "20261126120000" else "behind") in error.message


def test_the_window_is_a_parameter() -> None:
    """A narrower window refuses what the default accepts."""
    assert frame_time_error("20261126120100", START) is None
    assert frame_time_error("20261126120100", START, window=30) is not None


@dataclass
class FakeConnection:
    """The connection an ImsSession writes to, in memory."""

    written: list[bytes] = field(default_factory=list)
    conn_id: str = "c1"
    closed: bool = False
    peer_certificate: x509.Certificate | None = None

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def pause(self, reason: str) -> None:
        pass

    def resume(self, reason: str) -> None:
        pass

    def abort(self) -> None:
        self.closed = True


def test_the_session_refuses_a_stale_frame_on_its_injected_clock(
    service: IntermediateService,
) -> None:
    """With the server's clock at 12:00, a query stamped 11:50 gets ERROR 6612 and is not acted
    on (its permit stays unspent); stamped 11:59 it is answered; the refusal is counted and
    logged by its code."""
    from twisted.logger import LogEvent, formatEvent, globalLogPublisher

    logged: list[str] = []

    def observe(event: LogEvent) -> None:
        if event.get("log_namespace") == "juki_gateway.intermediate":
            logged.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    try:
        _stale_frame_on_a_fixed_clock(service)
    finally:
        globalLogPublisher.removeObserver(observe)
    assert any("refused: ims_frame_time_outside_window (6612)" in line for line in logged), logged


def _stale_frame_on_a_fixed_clock(service: IntermediateService) -> None:
    setup_person(service)
    session = ImsSession(lambda: service, "ims-172014", "ipnw", "ipnw",
                         peer_key=NETWORK_KEY.public_key())
    conn = FakeConnection()
    session.started(conn)
    body = query_body(make_permit("w-1"))

    def send(request_no: int, stamp: str) -> None:
        session.channel.receive_data(sign_frame(
            NETWORK_KEY, ImsMessageType.INFO_QUERY, "ipnw", "ims-172014", body,
            record_count=1, request_no=request_no, timestamp=stamp))
        session.channel.drive(session)

    send(1, "20261126115000")
    assert session.channel.counts.errors == {"ims_frame_time_outside_window": 1}
    send(2, "20261126115900")
    decoder = FrameDecoder(LENGTHS)
    decoder.receive_data(b"".join(conn.written))
    err, answer = decoder.next_event(), decoder.next_event()
    assert isinstance(err, Frame) and isinstance(answer, Frame)
    assert (err.msg_type, err.header.request_no) == (MessageType.ERROR, 1)
    assert decode_error(err.body)[0] == 6612
    assert (answer.msg_type, answer.header.request_no) == (ImsMessageType.QUERY_RESULT, 2)
    assert service.spent_permit_count == 1
