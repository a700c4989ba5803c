"""The reference path: construct ``Struct``s derived from the same layout tables.

Each field is a construct ``Bytes`` (or a big-endian integer) wrapped in an ``Adapter`` that
applies the field kind's reference ``decode``/``encode``; derived items are then cross-checked
(decode) or computed (build) with the generic derivation code. It is slow and plain on purpose:
the fast generated codec in ``record.py`` must agree with it on every input, which
``tests/test_reference.py`` checks with hypothesis. Never construct's ``compile()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import construct as cs  # type: ignore[import-untyped]

from juki_gateway.codecs.errors import CodecError, RecordLengthError
from juki_gateway.codecs.record import RecordCodec, get_codec
from juki_gateway.codecs.schema import Field, Layout

_INTS = {1: cs.Int8ub, 2: cs.Int16ub, 4: cs.Int32ub, 8: cs.Int64ub}


class _FieldAdapter(cs.Adapter):  # type: ignore[misc]
    """Applies one field's kind (with its empty form) on top of the raw construct value."""

    def __init__(self, codec: RecordCodec, index: int) -> None:
        f: Field = codec.layout.fields[index]
        raw = _INTS[f.width] if f.kind.struct_code(f.width) != f"{f.width}s" else cs.Bytes(f.width)
        super().__init__(raw)
        self.codec = codec
        self.index = index

    def _decode(self, obj: Any, context: Any, path: Any) -> Any:
        return self.codec.decode_field(self.index, obj)

    def _encode(self, obj: Any, context: Any, path: Any) -> Any:
        return self.codec.encode_field(self.index, obj)


def build_struct(codec: RecordCodec) -> cs.Struct:
    """The construct ``Struct`` of a codec's layout."""
    return cs.Struct(*(f.name / _FieldAdapter(codec, i) for i, f in enumerate(codec.layout.fields)))


class ReferenceCodec:
    """Decode and build records with construct; the specification the fast path must match."""

    def __init__(self, layout: Layout | str, profile: str = "jukinet") -> None:
        name = layout if isinstance(layout, str) else layout.name
        self.codec = get_codec(name, profile)
        self.layout = self.codec.layout
        self.struct = build_struct(self.codec)

    def decode(self, data: bytes) -> dict[str, Any]:
        """The record in ``data``; raises CodecError when invalid."""
        if len(data) != self.layout.record_length:
            raise RecordLengthError(
                f"{len(data)} bytes, a {self.layout.name} record is {self.layout.record_length}",
                layout=self.layout.name, offset=min(len(data), self.layout.record_length))
        try:
            container = self.struct.parse(data)
        except CodecError:
            raise
        except Exception as exc:  # construct's own errors become codec errors
            raise CodecError(f"construct: {exc}", layout=self.layout.name) from None
        values = {f.name: container[f.name] for f in self.layout.fields}
        self.codec.check_derived(values)
        return values

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """The bytes of ``record``; raises CodecError when invalid."""
        # primary items first, in table order: derived items are only computed from valid sources
        self.codec.encode_primaries(record)
        values = self.codec.complete(record)
        try:
            return bytes(self.struct.build(values))
        except CodecError:
            raise
        except Exception as exc:
            raise CodecError(f"construct: {exc}", layout=self.layout.name) from None
