"""The intermediate links' body layouts on the record codec: registration and error boundary.

Every body of the intermediate-server links is a codec :class:`~juki_gateway.codecs.schema.Layout`
(a table of codec ``Field`` kinds, defined in :mod:`.messages`, :mod:`.items` and
:mod:`.permission_list`). :class:`ImsBody` registers its table with the codec, encodes and
decodes through ``get_codec`` (the generated fast path, ``intermediate`` profile) and maps the
codec's :class:`~juki_gateway.codecs.errors.CodecError` to :class:`MalformedMessage` (wire code
6601) here, at the boundary, so a peer always sees the intermediate server's own error code with
the codec's located reason (layout, field, offset).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from juki_gateway.codecs.errors import CodecError
from juki_gateway.codecs.layouts import register_layouts
from juki_gateway.codecs.record import RecordCodec, get_codec
from juki_gateway.codecs.schema import Layout
from juki_gateway.protocols.intermediate.errors import MalformedMessage

#: The link profile of every intermediate-server body (外字 = outside JIS X 0213).
PROFILE = "intermediate"


class ImsBody:
    """One registered body layout run by the codec's fast path, failing with MalformedMessage."""

    __slots__ = ("codec", "layout", "length", "name")

    def __init__(self, layout: Layout) -> None:
        register_layouts(layout)
        self.layout = layout
        self.name = layout.name
        self.length = layout.record_length
        self.codec: RecordCodec = get_codec(layout.name, PROFILE)

    def encode(self, values: Mapping[str, Any]) -> bytes:
        """The record bytes of ``values`` (every required field given, no unknown field)."""
        try:
            return self.codec.encode(values)
        except CodecError as exc:
            raise MalformedMessage(exc.message) from None

    def decode(self, data: bytes) -> dict[str, Any]:
        """The field values of exactly one record (blank optional fields are None)."""
        try:
            return self.codec.decode(data)
        except CodecError as exc:
            raise MalformedMessage(exc.message) from None

    def decode_many(self, data: bytes) -> list[dict[str, Any]]:
        """Every record of a body made of whole records of this layout."""
        try:
            return self.codec.decode_many(data)
        except CodecError as exc:
            raise MalformedMessage(exc.message) from None

    def span(self, name: str) -> slice:
        """The bytes of field ``name`` inside a record."""
        i = [f.name for f in self.layout.fields].index(name)
        start = self.layout.offsets[i]
        return slice(start, start + self.layout.fields[i].width)
