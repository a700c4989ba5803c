"""The message catalogue: every frame type, the layout of its body records, and what it means.

Base types live here (ERROR, PING, PONG, ACK, NACK). Later work appends its message types (the
Juki-net links) to :class:`MessageType` and :data:`CATALOGUE`, or keeps them beside its protocol
and registers them with :func:`register_messages` (the intermediate server: types 0x06xx, its
body layouts registered with ``layouts.register_layouts``; listed in :data:`LINK_CATALOGUES`).
The frame decoder's default "type → body record length" table is derived from the catalogue.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from enum import IntEnum

from juki_gateway.codecs.errors import CodecError
from juki_gateway.codecs.record import get_codec

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
    """What a message type carries: the layout of its body records (None = no body)."""

    name: str
    body_layout: str | None
    description: str
    profile: str = "jukinet"  # the link profile the body records are decoded with
    byte_body: bool = False  # a body of bytes (record length 1) parsed by the link itself


#: Modules that register their link's message types with :func:`register_messages` (imported
#: by :func:`load_link_catalogues`, so the catalogue is whole whatever was imported first).
LINK_CATALOGUES: tuple[str, ...] = ("juki_gateway.protocols.intermediate.messages",)


def register_messages(specs: dict[int, MessageSpec]) -> None:
    """Add a link's message types to :data:`CATALOGUE`; a type number already taken is refused."""
    for msg_type, spec in specs.items():
        if CATALOGUE.setdefault(int(msg_type), spec) is not spec:
            raise ValueError(f"message type 0x{int(msg_type):04X} is already taken")


def load_link_catalogues() -> None:
    """Import every module of :data:`LINK_CATALOGUES` (each registers its types once)."""
    for name in LINK_CATALOGUES:
        importlib.import_module(name)


CATALOGUE: dict[int, MessageSpec] = {
    MessageType.ERROR: MessageSpec(
        "ERROR", ERROR_LAYOUT, "a request or frame failed; body: one error record"
    ),
    MessageType.PING: MessageSpec("PING", None, "liveness probe; the peer answers PONG"),
    MessageType.PONG: MessageSpec("PONG", None, "answer to PING"),
    MessageType.ACK: MessageSpec(
        "ACK", None, "acknowledges the update notice whose 更新順番号 is the header's seq"
    ),
    MessageType.NACK: MessageSpec(
        "NACK",
        ERROR_LAYOUT,
        "refuses an update notice; header seq = the expected 更新順番号; body: one error record",
    ),
}


def body_record_lengths() -> dict[int, int]:
    """msg_type → body record length (0 = no body, 1 = a byte body), derived from :data:`CATALOGUE`."""
    load_link_catalogues()
    return {
        int(t): (
            1 if spec.byte_body
            else get_codec(spec.body_layout, spec.profile).record_length if spec.body_layout
            else 0
        )
        for t, spec in CATALOGUE.items()
    }


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
