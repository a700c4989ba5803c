"""The frame envelope: a fixed-length header, the body records, an optional signature trailer.

Header layout (``frame-header`` in ``layouts.py``, big-endian, :data:`HEADER_LENGTH` bytes):
magic ``JKGW``, version (u8, 1), msg_type (u16), sender and receiver node ids (16 ASCII bytes,
space-padded), 依頼管理番号 request_no (u64), 更新順番号 seq (u64), 異常時更新順番号 recovery_seq
(u64), timestamp (14 ASCII digits YYYYMMDDhhmmss), record_count (u32), body_length (u32),
trailer_length (u16; 0 = no signature trailer).

:class:`FrameDecoder` is sans-IO, in the manner of h11: feed it any split of bytes with
:meth:`~FrameDecoder.receive_data`, pull events with :meth:`~FrameDecoder.next_event`:

- a :class:`Frame`, or ``None`` when more bytes are needed;
- a :class:`FrameRejected` as soon as a header shows the frame is not acceptable (unknown message
  type, body not a whole number of records, or what the caller's ``check`` refuses): its body
  and trailer are then skipped as they arrive, never buffered;
- a :class:`FatalFrameError` raised when the stream lost sync (bad magic, unknown version, a
  malformed header, a length over ``max_body`` — checked from the header alone, before any body
  byte is buffered); the decoder then stays broken and raises again on each call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

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
from juki_gateway.codecs.layouts import FRAME_HEADER, FRAME_MAGIC, FRAME_VERSION
from juki_gateway.codecs.record import get_codec
from juki_gateway.errors import JukiError

HEADER_LENGTH: int = FRAME_HEADER.record_length
MAGIC: bytes = FRAME_MAGIC
VERSION: int = FRAME_VERSION
DEFAULT_MAX_BODY = 1 << 20

_HEADER = get_codec(FRAME_HEADER.name)
_COMPACT_AT = 1 << 16


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """The decoded frame header (node ids without their padding)."""

    magic: bytes
    version: int
    msg_type: int
    sender: str
    receiver: str
    request_no: int
    seq: int
    recovery_seq: int
    timestamp: str
    record_count: int
    body_length: int
    trailer_length: int


@dataclass(frozen=True, slots=True)
class Frame:
    """One whole frame: header, body (record_count records) and signature trailer."""

    header: FrameHeader
    body: bytes
    trailer: bytes

    @property
    def msg_type(self) -> int:
        """The header's message type."""
        return self.header.msg_type

    @property
    def seq(self) -> int:
        """The header's 更新順番号."""
        return self.header.seq

    def records(self, layout: str, profile: str = "jukinet") -> list[dict[str, Any]]:
        """The body decoded as records of ``layout`` (raises CodecError when invalid)."""
        return get_codec(layout, profile).decode_many(self.body)


@dataclass(frozen=True, slots=True)
class FrameRejected:
    """A frame whose bytes were skipped: its header, and why it was refused."""

    header: FrameHeader
    error: JukiError


def encode_header(header: FrameHeader) -> bytes:
    """The wire bytes of ``header``; raises CodecError when a field is invalid."""
    return _HEADER.encode(
        {
            "magic": header.magic.decode("ascii", "replace"),
            "version": header.version,
            "msg_type": header.msg_type,
            "sender": header.sender,
            "receiver": header.receiver,
            "request_no": header.request_no,
            "seq": header.seq,
            "recovery_seq": header.recovery_seq,
            "timestamp": header.timestamp,
            "record_count": header.record_count,
            "body_length": header.body_length,
            "trailer_length": header.trailer_length,
        }
    )


def decode_header(data: bytes | bytearray | memoryview) -> FrameHeader:
    """The header in the first :data:`HEADER_LENGTH` bytes of ``data``; CodecError when invalid."""
    rec = _HEADER.decode(bytes(data[:HEADER_LENGTH]))
    return FrameHeader(
        magic=rec["magic"].encode("ascii"),
        version=rec["version"],
        msg_type=rec["msg_type"],
        sender=rec["sender"],
        receiver=rec["receiver"],
        request_no=rec["request_no"],
        seq=rec["seq"],
        recovery_seq=rec["recovery_seq"],
        timestamp=rec["timestamp"],
        record_count=rec["record_count"],
        body_length=rec["body_length"],
        trailer_length=rec["trailer_length"],
    )


def encode_frame(
    msg_type: int,
    sender: str,
    receiver: str,
    body: bytes = b"",
    *,
    record_count: int = 0,
    request_no: int = 0,
    seq: int = 0,
    recovery_seq: int = 0,
    timestamp: str,
    trailer: bytes = b"",
) -> bytes:
    """A whole frame: header + body + trailer. Raises CodecError when a header field is invalid."""
    header = FrameHeader(
        magic=MAGIC,
        version=VERSION,
        msg_type=int(msg_type),
        sender=sender,
        receiver=receiver,
        request_no=request_no,
        seq=seq,
        recovery_seq=recovery_seq,
        timestamp=timestamp,
        record_count=record_count,
        body_length=len(body),
        trailer_length=len(trailer),
    )
    return encode_header(header) + bytes(body) + bytes(trailer)


class FrameDecoder:
    """Sans-IO frame decoder: bytes in with receive_data, frames out with next_event.

    Every decision about a frame is taken from its header alone, before a body byte is kept:
    a fatal error breaks the stream; a rejected frame (unknown type, body length disagreeing
    with ``record_count``, or whatever ``check`` refuses) is reported at once and its body and
    trailer are then skipped as they arrive, never buffered. Only an accepted frame's bytes are
    held, so what one connection buffers is bounded by the largest frame it may send.

    ``lengths`` maps each message type the connection takes to its body record length (0 = no
    body), as :func:`~juki_gateway.codecs.messages.record_lengths` derives it from catalogue
    entries; any other type is rejected as unknown.
    """

    def __init__(
        self,
        lengths: Mapping[int, int],
        *,
        max_body: int = DEFAULT_MAX_BODY,
        check: Callable[[FrameHeader], JukiError | None] | None = None,
    ) -> None:
        self._lengths: dict[int, int] = dict(lengths)
        self.max_body = max_body
        self._check = check
        self._buf = bytearray()
        self._pos = 0  # start of the current frame in _buf
        self._consumed = 0  # stream offset of _buf[0]
        self._header: FrameHeader | None = None
        self._skip = 0  # bytes of a rejected frame still to be skipped
        self._error: FatalFrameError | None = None

    @property
    def broken(self) -> FatalFrameError | None:
        """The fatal error that broke the stream, or None."""
        return self._error

    def receive_data(self, data: bytes) -> None:
        """Buffer more bytes from the peer (ignored once the stream is broken)."""
        if self._error is not None or not data:
            return
        if self._skip and self._pos == len(self._buf):
            # nothing buffered: skip a rejected frame's bytes without copying them
            n = min(self._skip, len(data))
            self._skip -= n
            self._consumed += n
            if n == len(data):
                return
            data = data[n:]
        self._buf += data

    def buffered(self) -> int:
        """How many bytes are buffered and not yet returned as events."""
        return len(self._buf) - self._pos

    @property
    def in_frame(self) -> bool:
        """True while part of a frame (or of a skipped frame) has been received."""
        return bool(self._skip) or self.buffered() > 0

    def _fail(self, error: FatalFrameError) -> FatalFrameError:
        self._error = error
        self._buf = bytearray()
        self._pos = 0
        return error

    def _advance(self, to: int) -> None:
        self._pos = to
        if to == len(self._buf):
            self._consumed += to
            self._buf = bytearray()
            self._pos = 0
        elif to >= _COMPACT_AT:
            del self._buf[:to]
            self._consumed += to
            self._pos = 0

    def _judge(self, header: FrameHeader, at: int) -> JukiError | None:
        """Why the frame must be skipped (from its header alone), or None to accept it."""
        rec_len = self._lengths.get(header.msg_type)
        if rec_len is None:
            return UnknownMessageType(
                f"message type 0x{header.msg_type:04X} is not in the catalogue",
                layout=FRAME_HEADER.name, field="msg_type", offset=at + FRAME_HEADER.offsets[2])
        if rec_len == 0:
            if header.body_length or header.record_count:
                return BadBodyLength(
                    f"message type 0x{header.msg_type:04X} has no body, got {header.body_length} bytes"
                    f" and record_count {header.record_count}",
                    layout=FRAME_HEADER.name, field="body_length", offset=at + HEADER_LENGTH)
        elif header.body_length != header.record_count * rec_len:
            return BadBodyLength(
                f"body of {header.body_length} bytes is not record_count {header.record_count}"
                f" × {rec_len}-byte records",
                layout=FRAME_HEADER.name, field="body_length", offset=at + HEADER_LENGTH)
        return self._check(header) if self._check is not None else None

    def next_event(self) -> Frame | FrameRejected | None:
        """The next frame or rejected frame, None if more data is needed; raises FatalFrameError."""
        if self._error is not None:
            raise self._error
        buf, start = self._buf, self._pos
        avail = len(buf) - start
        if self._skip:
            n = min(self._skip, avail)
            self._skip -= n
            self._advance(start + n)
            if self._skip:
                return None
            buf, start = self._buf, self._pos
            avail = len(buf) - start
        at = self._consumed + start
        if self._header is None:
            n = min(avail, len(MAGIC))
            if buf[start : start + n] != MAGIC[:n]:
                raise self._fail(BadMagic(f"expected {MAGIC!r}, got {bytes(buf[start:start + n])!r}",
                                          layout=FRAME_HEADER.name, field="magic", offset=at))
            if avail < HEADER_LENGTH:
                return None
            if buf[start + 4] != VERSION:
                raise self._fail(UnsupportedVersion(f"version {buf[start + 4]} (this decoder speaks {VERSION})",
                                                    layout=FRAME_HEADER.name, field="version", offset=at + 4))
            try:
                header = decode_header(buf[start : start + HEADER_LENGTH])
            except CodecError as exc:
                raise self._fail(BadFrameHeader(exc.reason, layout=FRAME_HEADER.name, field=exc.field,
                                                offset=at + (exc.offset or 0))) from None
            size = header.body_length + header.trailer_length
            if size > self.max_body:
                raise self._fail(FrameTooLarge(
                    f"body {header.body_length} + trailer {header.trailer_length} bytes exceed the maximum {self.max_body}",
                    layout=FRAME_HEADER.name, field="body_length", offset=at + FRAME_HEADER.offsets[10]))
            refusal = self._judge(header, at)
            if refusal is not None:
                # skip the frame from its header on: its body is never buffered
                self._skip = size
                self._advance(start + HEADER_LENGTH)
                if self._skip and self._pos < len(self._buf):
                    n = min(self._skip, len(self._buf) - self._pos)
                    self._skip -= n
                    self._advance(self._pos + n)
                return FrameRejected(header, refusal)
            self._header = header
        header = self._header
        total = HEADER_LENGTH + header.body_length + header.trailer_length
        if avail < total:
            return None
        body_at = start + HEADER_LENGTH
        body = bytes(buf[body_at : body_at + header.body_length])
        trailer = bytes(buf[body_at + header.body_length : start + total]) if header.trailer_length else b""
        self._header = None
        self._advance(start + total)
        return Frame(header, body, trailer)

    def close(self) -> None:
        """The peer closed the stream: raise TruncatedFrame if it stopped inside a frame."""
        if self._error is None and self.in_frame:
            n = self.buffered()
            what = f"{n} bytes of an unfinished frame" if n else f"{self._skip} bytes of a skipped frame missing"
            raise self._fail(TruncatedFrame(f"stream closed with {what}",
                                            layout=FRAME_HEADER.name, offset=self._consumed + self._pos))
