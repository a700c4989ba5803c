"""The frame envelope: encoding, the sans-IO decoder, and each of its error classes."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from juki_gateway.codecs.errors import (
    BadBodyLength,
    BadFrameHeader,
    BadMagic,
    CodecError,
    FatalFrameError,
    FrameTooLarge,
    TruncatedFrame,
    UnknownMessageType,
    UnsupportedVersion,
)
from juki_gateway.codecs.frame import (
    HEADER_LENGTH,
    Frame,
    FrameDecoder,
    FrameRejected,
    decode_header,
    encode_frame,
)
from juki_gateway.codecs.messages import (
    BASE_MESSAGES,
    MessageType,
    decode_error,
    encode_error,
    record_lengths,
)
from juki_gateway.protocols.catalogue import CATALOGUE

TS = "20260401093000"
#: the decoder table of the envelope's own types (ERROR, PING, PONG, ACK, NACK)
LENGTHS = record_lengths(BASE_MESSAGES)


def _nack(seq: int = 7, detail: str = "expected 7") -> bytes:
    return encode_frame(MessageType.NACK, "cs-172014", "pf-17", encode_error(2203, "bad_check_digit", detail),
                        record_count=1, seq=seq, timestamp=TS)


def _ping(**kw: int) -> bytes:
    return encode_frame(MessageType.PING, "cs-172014", "pf-17", timestamp=TS, **kw)


def _drain(dec: FrameDecoder) -> list[Frame | FrameRejected]:
    out: list[Frame | FrameRejected] = []
    while (ev := dec.next_event()) is not None:
        out.append(ev)
    return out


def test_header_length_and_field_order() -> None:
    """The header is 87 bytes: magic, version, type, node ids, three u64s, timestamp, u32, u32, u16."""
    raw = encode_frame(0x0102, "cs-172014", "kiko", b"", request_no=3, seq=4, recovery_seq=5, timestamp=TS,
                       trailer=b"sig")
    assert HEADER_LENGTH == 87
    assert raw[:4] == b"JKGW" and raw[4] == 1
    assert struct.unpack(">H", raw[5:7]) == (0x0102,)
    assert raw[7:23] == b"cs-172014".ljust(16) and raw[23:39] == b"kiko".ljust(16)
    assert struct.unpack(">QQQ", raw[39:63]) == (3, 4, 5)
    assert raw[63:77] == TS.encode()
    assert struct.unpack(">IIH", raw[77:87]) == (0, 0, 3)
    assert raw[87:] == b"sig"
    h = decode_header(raw)
    assert (h.sender, h.receiver, h.request_no, h.seq, h.recovery_seq, h.trailer_length) == ("cs-172014", "kiko", 3, 4, 5, 3)


def test_one_byte_at_a_time_yields_each_frame() -> None:
    """Feeding a stream one byte at a time yields every frame exactly once, then None."""
    stream = _nack(1) + _ping(seq=2) + _nack(3)
    dec = FrameDecoder(LENGTHS)
    got: list[Frame | FrameRejected] = []
    for b in stream:
        dec.receive_data(bytes([b]))
        got += _drain(dec)
    assert [e.seq for e in got if isinstance(e, Frame)] == [1, 2, 3]
    assert dec.next_event() is None
    dec.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2000), max_size=8), st.integers(min_value=1, max_value=6))
def test_any_split_gives_the_same_frames(cuts: list[int], count: int) -> None:
    """Any split of a multi-frame stream gives the same frames as one chunk."""
    frames = [_nack(i, "é" * i) if i % 2 else _ping(seq=i) for i in range(count)]
    stream = b"".join(frames)
    points = sorted({min(c, len(stream)) for c in cuts})
    dec = FrameDecoder(LENGTHS)
    got: list[Frame | FrameRejected] = []
    prev = 0
    for p in [*points, len(stream)]:
        dec.receive_data(stream[prev:p])
        prev = p
        got += _drain(dec)
    assert [e.seq for e in got if isinstance(e, Frame)] == list(range(count))
    assert all(isinstance(e, Frame) for e in got)


def test_many_frames_in_one_chunk_with_trailer() -> None:
    """Many frames in one chunk come out in order, trailers separated from bodies."""
    chunk = b"".join(
        encode_frame(MessageType.ACK, "pf-17", "cs-172014", seq=i, timestamp=TS, trailer=bytes([i]) * i)
        for i in range(50)
    )
    dec = FrameDecoder(LENGTHS)
    dec.receive_data(chunk)
    got = _drain(dec)
    assert [(f.seq, f.trailer) for f in got if isinstance(f, Frame)] == [(i, bytes([i]) * i) for i in range(50)]


def test_error_body_round_trip() -> None:
    """encode_error/decode_error round-trip, and long detail text is shortened to fit 200 bytes."""
    body = encode_error(2209, "derived_mismatch", "外字数 " * 100)
    code, name, detail = decode_error(body)
    assert (code, name) == (2209, "derived_mismatch")
    assert detail.startswith("外字数") and len(detail.encode()) <= 200


@pytest.mark.parametrize("first", [b"X", b"JK\x00"])
def test_bad_magic_is_fatal_early_and_sticky(first: bytes) -> None:
    """A bad magic is fatal as soon as the first wrong byte arrives, and stays fatal."""
    dec = FrameDecoder(LENGTHS)
    dec.receive_data(first)
    with pytest.raises(BadMagic) as exc:
        dec.next_event()
    assert isinstance(exc.value, FatalFrameError) and exc.value.wire_code == 2101
    dec.receive_data(_ping())
    with pytest.raises(BadMagic):
        dec.next_event()


def test_unknown_version_is_fatal() -> None:
    """An envelope version other than 1 is fatal."""
    raw = bytearray(_ping())
    raw[4] = 2
    dec = FrameDecoder(LENGTHS)
    dec.receive_data(bytes(raw))
    with pytest.raises(UnsupportedVersion):
        dec.next_event()


def test_malformed_header_field_is_fatal() -> None:
    """An impossible header timestamp makes the header untrustworthy: fatal, naming the field."""
    raw = bytearray(_ping())
    raw[63:77] = b"20250230000000"
    dec = FrameDecoder(LENGTHS)
    dec.receive_data(bytes(raw))
    with pytest.raises(BadFrameHeader) as exc:
        dec.next_event()
    assert exc.value.field == "timestamp"


def test_oversize_rejected_from_header_before_body() -> None:
    """A body_length over max_body is fatal as soon as the header is in, before any body byte."""
    raw = encode_frame(MessageType.ERROR, "a", "b", b"x" * 236 * 5, record_count=5, timestamp=TS)
    dec = FrameDecoder(LENGTHS, max_body=1000)
    dec.receive_data(raw[:HEADER_LENGTH])
    with pytest.raises(FrameTooLarge) as exc:
        dec.next_event()
    assert exc.value.field == "body_length"
    assert dec.buffered() == 0


def test_trailer_counts_towards_the_maximum() -> None:
    """body_length + trailer_length is what is compared with max_body."""
    raw = encode_frame(MessageType.PING, "a", "b", timestamp=TS, trailer=b"s" * 600)
    dec = FrameDecoder(LENGTHS, max_body=500)
    dec.receive_data(raw[:HEADER_LENGTH])
    with pytest.raises(FrameTooLarge):
        dec.next_event()


def test_unknown_type_is_skipped_and_decoding_continues() -> None:
    """An unknown message type is rejected with its header and the next frame still decodes."""
    dec = FrameDecoder(LENGTHS)
    dec.receive_data(encode_frame(0x7FFF, "a", "b", b"whatever", timestamp=TS, seq=9) + _ping(seq=10))
    first, second = _drain(dec)
    assert isinstance(first, FrameRejected) and isinstance(first.error, UnknownMessageType)
    assert first.header.seq == 9 and first.error.wire_code == 2111
    assert isinstance(second, Frame) and second.seq == 10


@pytest.mark.parametrize(
    ("msg_type", "body", "count"),
    [
        (MessageType.ERROR, b"x" * 235, 1),  # not a whole record
        (MessageType.ERROR, b"x" * 236, 2),  # record_count disagrees
        (MessageType.PING, b"x", 0),  # type without body
        (MessageType.PONG, b"", 1),  # record_count on a type without body
    ],
)
def test_bad_body_length_is_skipped(msg_type: int, body: bytes, count: int) -> None:
    """A body that is not record_count whole records is rejected and skipped."""
    dec = FrameDecoder(LENGTHS)
    dec.receive_data(encode_frame(msg_type, "a", "b", body, record_count=count, timestamp=TS) + _ping(seq=4))
    first, second = _drain(dec)
    assert isinstance(first, FrameRejected) and isinstance(first.error, BadBodyLength)
    assert isinstance(second, Frame) and second.seq == 4


def test_close_inside_a_frame_raises_truncated() -> None:
    """Closing with a partial frame buffered raises TruncatedFrame; closing between frames does not."""
    dec = FrameDecoder(LENGTHS)
    dec.receive_data(_ping()[:50])
    assert dec.next_event() is None
    with pytest.raises(TruncatedFrame):
        dec.close()
    clean = FrameDecoder(LENGTHS)
    clean.receive_data(_ping())
    assert isinstance(clean.next_event(), Frame)
    clean.close()


def test_custom_catalogue_mapping() -> None:
    """The decoder takes exactly the msg_type → record length table it is given."""
    dec = FrameDecoder({0x0100: 10})
    dec.receive_data(encode_frame(0x0100, "a", "b", b"0123456789" * 2, record_count=2, timestamp=TS))
    ev = dec.next_event()
    assert isinstance(ev, Frame) and ev.body == b"0123456789" * 2


def test_catalogue_lengths_derive_from_layouts() -> None:
    """The decoder table of the one catalogue comes from its entries' body layouts."""
    lengths = record_lengths(CATALOGUE)
    assert set(lengths) == set(CATALOGUE)
    assert lengths[MessageType.ERROR] == 236 and lengths[MessageType.PING] == 0
    assert lengths[0x0621] == 1 and lengths[0x06A1] == 1  # byte bodies


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sender": "has space"}, "sender"),
        ({"sender": "x" * 17}, "sender"),
        ({"timestamp": "20250230120000"}, "timestamp"),
        ({"seq": -1}, "seq"),
        ({"msg_type": 70000}, "msg_type"),
    ],
)
def test_encode_frame_rejects_bad_header_values(kwargs: dict[str, object], field: str) -> None:
    """encode_frame raises a CodecError naming the bad header field."""
    args: dict[str, object] = {"msg_type": 2, "sender": "a", "receiver": "b", "timestamp": TS}
    args.update(kwargs)
    with pytest.raises(CodecError) as exc:
        encode_frame(**args)  # type: ignore[arg-type]
    assert exc.value.field == field


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_escape_as_other_exceptions(data: bytes) -> None:
    """Whatever the bytes, the decoder yields events, None, or raises a CodecError."""
    dec = FrameDecoder(LENGTHS, max_body=300)
    dec.receive_data(b"JKGW\x01" + data)
    try:
        _drain(dec)
        dec.close()
    except CodecError:
        pass


def test_frame_records_decode_the_body() -> None:
    """Frame.records decodes the body with the named layout."""
    dec = FrameDecoder(LENGTHS)
    dec.receive_data(_nack(3, "seq 3 expected"))
    frame = dec.next_event()
    assert isinstance(frame, Frame)
    (rec,) = frame.records("error")
    assert rec["error_code"] == 2203 and rec["detail"] == "seq 3 expected"
