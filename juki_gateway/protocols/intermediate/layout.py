"""A small fixed-width layout engine for the intermediate server's message bodies.

A layout is a table of fields (name, width, kind) and nothing else; encoding and decoding are
derived from it, and every decode validates each field exactly as the encoder would produce it.
Kinds: ``ascii`` (printable ASCII, right-padded with spaces), ``digits`` (ASCII digits, the
width exactly), ``uint`` (big-endian unsigned), ``raw`` (opaque bytes of exactly the width),
``text`` (UTF-16BE, right-padded with U+3000) and ``mask`` (a string of ``0``/``1``).

The project's general record-layout engine belongs to the codec issue; this module is the
smallest piece the intermediate messages need and can be folded into it.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from juki_gateway.protocols.intermediate.errors import MalformedMessage

Kind = Literal["ascii", "digits", "uint", "raw", "text", "mask"]
Value = str | int | bytes

_PAD_TEXT = "\u3000"


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a layout: its name, width in bytes and kind."""

    name: str
    width: int
    kind: Kind


class Layout:
    """A fixed-width record layout built from a table of :class:`Field`."""

    __slots__ = ("_struct", "fields", "length", "name", "offsets")

    def __init__(self, name: str, fields: tuple[Field, ...]) -> None:
        for f in fields:
            if f.kind == "text" and f.width % 2:
                raise ValueError(f"{name}.{f.name}: a text field needs an even width")
        self.name = name
        self.fields = fields
        self._struct = struct.Struct(">" + "".join(f"{f.width}s" for f in fields))
        self.length = self._struct.size
        offsets: dict[str, int] = {}
        pos = 0
        for f in fields:
            offsets[f.name] = pos
            pos += f.width
        self.offsets = offsets

    def encode(self, values: Mapping[str, Value]) -> bytes:
        """The record bytes for ``values`` (every field must be given)."""
        parts: list[bytes] = []
        for f in self.fields:
            try:
                value = values[f.name]
            except KeyError:
                raise MalformedMessage(f"{self.name}: field {f.name!r} missing") from None
            parts.append(_encode_field(self.name, f, value))
        return b"".join(parts)

    def decode(self, data: bytes) -> dict[str, Value]:
        """The field values of one record; raises :class:`MalformedMessage` on a bad field."""
        if len(data) != self.length:
            raise MalformedMessage(
                f"{self.name}: record is {len(data)} bytes, layout needs {self.length}"
            )
        raw = self._struct.unpack(data)
        return {
            f.name: _decode_field(self.name, f, chunk, self.offsets[f.name])
            for f, chunk in zip(self.fields, raw, strict=True)
        }

    def decode_many(self, data: bytes) -> list[dict[str, Value]]:
        """Every record of a body made of whole records of this layout."""
        if self.length == 0 or len(data) % self.length:
            raise MalformedMessage(
                f"{self.name}: body of {len(data)} bytes is not whole records of {self.length}"
            )
        return [self.decode(data[i : i + self.length]) for i in range(0, len(data), self.length)]


def _encode_field(layout: str, f: Field, value: Value) -> bytes:
    if f.kind == "uint":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise MalformedMessage(
                f"{layout}.{f.name}: needs a non-negative integer, got {value!r}"
            )
        if value >= 1 << (8 * f.width):
            raise MalformedMessage(f"{layout}.{f.name}: {value} does not fit in {f.width} bytes")
        return value.to_bytes(f.width, "big")
    if f.kind == "raw":
        if not isinstance(value, bytes) or len(value) != f.width:
            raise MalformedMessage(f"{layout}.{f.name}: needs exactly {f.width} bytes")
        return value
    if not isinstance(value, str):
        raise MalformedMessage(f"{layout}.{f.name}: needs text, got {type(value).__name__}")
    if f.kind == "text":
        encoded = value.encode("utf-16-be")
        if len(encoded) > f.width:
            raise MalformedMessage(f"{layout}.{f.name}: text longer than {f.width // 2} characters")
        pad = (f.width - len(encoded)) // 2
        return encoded + (_PAD_TEXT * pad).encode("utf-16-be")
    if not value.isascii() or not value.isprintable():
        raise MalformedMessage(f"{layout}.{f.name}: {value!r} is not printable ASCII")
    if f.kind == "digits":
        if len(value) != f.width or not value.isdigit():
            raise MalformedMessage(
                f"{layout}.{f.name}: needs exactly {f.width} digits, got {value!r}"
            )
    elif f.kind == "mask":
        if len(value) != f.width or set(value) - {"0", "1"}:
            raise MalformedMessage(
                f"{layout}.{f.name}: needs {f.width} characters of 0/1, got {value!r}"
            )
    elif len(value) > f.width or value != value.rstrip(" "):
        raise MalformedMessage(f"{layout}.{f.name}: {value!r} does not fit in {f.width} characters")
    return value.encode("ascii").ljust(f.width, b" ")


def _decode_field(layout: str, f: Field, chunk: bytes, offset: int) -> Value:
    if f.kind == "uint":
        return int.from_bytes(chunk, "big")
    if f.kind == "raw":
        return chunk
    if f.kind == "text":
        try:
            text = chunk.decode("utf-16-be")
        except UnicodeDecodeError:
            raise MalformedMessage(
                f"{layout}.{f.name} at offset {offset}: not UTF-16BE text"
            ) from None
        return text.rstrip(_PAD_TEXT)
    try:
        text = chunk.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedMessage(f"{layout}.{f.name} at offset {offset}: not ASCII") from None
    if not text.isprintable():
        raise MalformedMessage(
            f"{layout}.{f.name} at offset {offset}: control characters in {text!r}"
        )
    if f.kind == "digits":
        if not text.isdigit():
            raise MalformedMessage(
                f"{layout}.{f.name} at offset {offset}: {text!r} is not {f.width} digits"
            )
        return text
    if f.kind == "mask":
        if set(text) - {"0", "1"}:
            raise MalformedMessage(
                f"{layout}.{f.name} at offset {offset}: {text!r} is not a 0/1 mask"
            )
        return text
    return text.rstrip(" ")


def get_str(values: Mapping[str, Value], name: str) -> str:
    """A decoded text field (typed accessor for mypy)."""
    value = values[name]
    assert isinstance(value, str)
    return value


def get_int(values: Mapping[str, Value], name: str) -> int:
    """A decoded ``uint`` field (typed accessor for mypy)."""
    value = values[name]
    assert isinstance(value, int)
    return value


def get_bytes(values: Mapping[str, Value], name: str) -> bytes:
    """A decoded ``raw`` field (typed accessor for mypy)."""
    value = values[name]
    assert isinstance(value, bytes)
    return value
