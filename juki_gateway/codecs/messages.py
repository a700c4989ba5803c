"""The message catalogue: every frame type, the layout of its body records, and what it means.

Base types live here (ERROR, PING, PONG, ACK, NACK). Each link keeps its message types beside
its protocol and registers them with :func:`register_messages`, its body layouts with
``layouts.register_layouts`` (the Juki-net links: types 0x01xx; the intermediate server: 0x06xx;
both modules are listed in :data:`LINK_CATALOGUES`). Every entry says its type code, direction,
body layout, responses and the error classes a receiver may answer it with; the links' frame
decoders, ``docs/wire-format.md``, ``docs/messages.md`` and the golden frame vectors are all
derived from :data:`CATALOGUE`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from enum import IntEnum

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


#: Modules that register their link's message types with :func:`register_messages` (imported
#: by :func:`load_link_catalogues`, so the catalogue is whole whatever was imported first).
LINK_CATALOGUES: tuple[str, ...] = (
    "juki_gateway.protocols.jukinet.messages",
    "juki_gateway.protocols.intermediate.messages",
)


def register_messages(specs: dict[int, MessageSpec]) -> None:
    """Add a link's message types to :data:`CATALOGUE`; a type number already taken is refused."""
    for msg_type, spec in specs.items():
        if CATALOGUE.setdefault(int(msg_type), spec) is not spec:
            raise ValueError(f"message type 0x{int(msg_type):04X} is already taken")


def load_link_catalogues() -> None:
    """Import every module of :data:`LINK_CATALOGUES` (each registers its types once)."""
    for name in LINK_CATALOGUES:
        importlib.import_module(name)


_EITHER = "either side"
_RECEIVER = "receiver → sender of a sequenced message"

CATALOGUE: dict[int, MessageSpec] = {
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
}


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


def body_record_lengths() -> dict[int, int]:
    """msg_type → body record length (0 = no body, 1 = a byte body), derived from :data:`CATALOGUE`."""
    load_link_catalogues()
    return {int(t): record_length(spec) for t, spec in CATALOGUE.items()}


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
