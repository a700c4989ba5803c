"""Message entries: what a frame type carries and means, and the envelope's own types.

The codec defines the entry (:class:`MessageSpec`: type name, body layout, direction, responses,
the error classes a receiver answers with) and the frame envelope's generic types (ERROR, PING,
PONG, ACK, NACK: :data:`BASE_MESSAGES`). Each link keeps its table of entries beside its
protocol; the one message catalogue is built from all of them in the protocol layer
(``juki_gateway/protocols/catalogue.py``) and handed to the frame decoders, the generated
documents and the golden vectors. Nothing here knows the links: a function that needs entries
is given them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType

from juki_gateway.codecs.errors import CodecError
from juki_gateway.codecs.record import get_codec, get_layout
from juki_gateway.codecs.schema import Layout
from juki_gateway.errors import JukiError

ERROR_LAYOUT = "error"
_DETAIL_WIDTH = 200
_NAME_WIDTH = 32


class MessageType(IntEnum):
    """Frame message types (the header's ``msg_type``)."""

    ERROR = 0x0001
    PING = 0x0002
    PONG = 0x0003
    ACK = 0x0004
    NACK = 0x0005


@dataclass(frozen=True, slots=True)
class MessageSpec:
    """What a message type carries: the layout of its body records (None = no body), and how
    it is used: its Japanese name, who sends it to whom, what answers it, and the error classes
    (each with its wire code) a receiver refuses it with."""

    name: str
    body_layout: str | None
    description: str
    profile: str = "jukinet"  # the link profile the body records are decoded with
    byte_body: bool = False  # a body of bytes (record length 1) parsed by the link itself
    jp: str = ""  # 名称
    direction: str = ""
    responses: str = ""
    sequenced: bool = False  # carries the link's 更新順番号 (header seq), acked after commit
    errors: tuple[type[JukiError], ...] = ()
    #: (receiving role, the sender roles it takes this type from): the link's authorization
    #: table for a request or notice (empty for answers, which go back to whoever asked)
    accepts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: the most records one frame of this type may carry (None: bounded only by the link's
    #: largest frame); a frame declaring more is refused from its header, its body unread
    max_records: int | None = None

    @property
    def layout(self) -> Layout | None:
        """The body layout table (None when the message has no records)."""
        return get_layout(self.body_layout) if self.body_layout else None


def message_table(entries: Mapping[int, MessageSpec]) -> Mapping[int, MessageSpec]:
    """An immutable table of message entries keyed by plain ``int`` types, in type order."""
    return MappingProxyType({int(t): entries[t] for t in sorted(entries)})


_EITHER = "either side"
_RECEIVER = "receiver → sender of a sequenced message"

#: The frame envelope's own types, which every link carries (an immutable table).
BASE_MESSAGES: Mapping[int, MessageSpec] = message_table({
    MessageType.ERROR: MessageSpec(
        "ERROR", ERROR_LAYOUT, "a request or frame failed; body: one error record",
        jp="エラー通知", direction=_EITHER, responses="—", max_records=1,
    ),
    MessageType.PING: MessageSpec(
        "PING", None, "liveness probe; the peer answers PONG",
        jp="疎通確認", direction=_EITHER, responses="PONG",
    ),
    MessageType.PONG: MessageSpec(
        "PONG", None, "answer to PING", jp="疎通応答", direction=_EITHER, responses="—",
    ),
    MessageType.ACK: MessageSpec(
        "ACK", None, "acknowledges the update notice whose 更新順番号 is the header's seq",
        jp="受領通知", direction=_RECEIVER, responses="—",
    ),
    MessageType.NACK: MessageSpec(
        "NACK",
        ERROR_LAYOUT,
        "refuses an update notice; header seq = the expected 更新順番号; body: one error record",
        jp="再送要求", direction=_RECEIVER, responses="the sender resends from header seq",
        max_records=1,
    ),
})


def record_length(spec: MessageSpec) -> int:
    """The length of one body record of a message type (0 = no body, 1 = a byte body)."""
    if spec.byte_body:
        return 1
    layout = spec.layout
    return layout.record_length if layout is not None else 0


def body_limit(spec: MessageSpec, max_frame: int) -> int:
    """The most body bytes one frame of ``spec`` may declare on a link whose frames are at most
    ``max_frame`` bytes (0 for a type without a body)."""
    size = record_length(spec)
    if size == 0:
        return 0
    if spec.max_records is None:
        return max_frame
    return min(max_frame, size * spec.max_records)


def record_lengths(specs: Mapping[int, MessageSpec]) -> dict[int, int]:
    """msg_type → body record length (0 = no body, 1 = a byte body) of each entry of ``specs``:
    the table a :class:`~juki_gateway.codecs.frame.FrameDecoder` is given."""
    return {int(t): record_length(spec) for t, spec in specs.items()}


def _fit_utf8(text: str, width: int) -> str:
    """``text`` cut at a character boundary so that its UTF-8 form fits ``width`` bytes."""
    text = "".join(ch if ch.isprintable() else " " for ch in text).rstrip(" ")
    while len(text.encode("utf-8", "replace")) > width:
        text = text[:-1].rstrip(" ")
    return text.encode("utf-8", "replace").decode("utf-8")


def encode_error(code: int, name: str, detail: str) -> bytes:
    """The body of an ERROR/NACK frame (one ``error`` record); long detail text is shortened."""
    safe_name = "".join(c if 0x21 <= ord(c) < 0x7F else "_" for c in name)[:_NAME_WIDTH] or "error"
    return get_codec(ERROR_LAYOUT).encode(
        {"error_code": code, "error_name": safe_name, "detail": _fit_utf8(detail, _DETAIL_WIDTH)}
    )


def decode_error(body: bytes) -> tuple[int, str, str]:
    """(code, name, detail) of an ERROR/NACK body; raises CodecError when malformed."""
    rec = get_codec(ERROR_LAYOUT).decode(body)
    return int(rec["error_code"]), str(rec["error_name"]), str(rec["detail"])


def error_body(exc: CodecError) -> bytes:
    """The ERROR/NACK body describing a codec error."""
    return encode_error(exc.wire_code, exc.code, exc.message)
