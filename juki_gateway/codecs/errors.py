"""The codec's error hierarchy: one class per cause, each with its own code and wire code.

Every failure to decode or build a record or a frame is a :class:`CodecError` (a
:class:`~juki_gateway.errors.JukiError`) carrying the layout, the field, the byte offset and a
reason. Nothing else ever escapes a decoder, whatever the bytes. The classes and their wire codes
are listed in ``docs/wire-format.md`` (generated from :data:`ERROR_CLASSES`).

Two families matter to a stream reader: :class:`FatalFrameError` (the stream lost sync, the
connection must close) and everything else (the frame's boundary is known, it can be skipped).
"""

from __future__ import annotations

from typing import ClassVar

from juki_gateway.errors import JukiError


class CodecError(JukiError):
    """A record or a frame could not be decoded or built."""

    code: ClassVar[str] = "codec_error"
    wire_code: ClassVar[int] = 2000
    summary: ClassVar[str] = "generic codec failure"

    def __init__(
        self,
        reason: str,
        *,
        layout: str | None = None,
        field: str | None = None,
        offset: int | None = None,
        record: int | None = None,
    ) -> None:
        self.reason = reason
        self.layout = layout
        self.field = field
        self.offset = offset
        self.record = record
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.record is not None:
            where.append(f"record {self.record}")
        if self.layout is not None:
            where.append(f"layout {self.layout}")
        if self.field is not None:
            where.append(f"field {self.field}")
        if self.offset is not None:
            where.append(f"offset {self.offset}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.reason}" if prefix else self.reason

    def located(
        self,
        *,
        layout: str | None = None,
        field: str | None = None,
        offset: int | None = None,
        record: int | None = None,
        shift: int = 0,
    ) -> CodecError:
        """A copy of this error with its location filled in (``shift`` moves a known offset)."""
        new = type(self).__new__(type(self))
        CodecError.__init__(
            new,
            self.reason,
            layout=self.layout if self.layout is not None else layout,
            field=self.field if self.field is not None else field,
            offset=self.offset + shift if self.offset is not None else offset,
            record=self.record if self.record is not None else record,
        )
        return new


# --- frame envelope -----------------------------------------------------------------------


class FatalFrameError(CodecError):
    """The byte stream lost synchronisation: the connection must be closed."""

    code = "frame_fatal"
    wire_code = 2100
    summary = "stream lost synchronisation"


class BadMagic(FatalFrameError):
    """The frame does not start with the magic bytes ``JKGW``."""

    code = "bad_magic"
    wire_code = 2101
    summary = "frame does not start with JKGW"


class UnsupportedVersion(FatalFrameError):
    """The frame's envelope version is not one this decoder speaks."""

    code = "unsupported_version"
    wire_code = 2102
    summary = "unknown envelope version"


class FrameTooLarge(FatalFrameError):
    """body_length + trailer_length exceeds the decoder's configured maximum."""

    code = "frame_too_large"
    wire_code = 2103
    summary = "body + trailer over the configured maximum (checked before buffering)"


class BadFrameHeader(FatalFrameError):
    """A header field (node id, timestamp) is malformed, so the header cannot be trusted."""

    code = "bad_frame_header"
    wire_code = 2104
    summary = "malformed header field (node id, timestamp)"


class TruncatedFrame(FatalFrameError):
    """The stream ended in the middle of a frame."""

    code = "truncated_frame"
    wire_code = 2105
    summary = "stream closed inside a frame"


class UnknownMessageType(CodecError):
    """The frame's message type is not in the catalogue (the frame is skipped)."""

    code = "unknown_message_type"
    wire_code = 2111
    summary = "message type not in the catalogue (frame skipped)"


class BadBodyLength(CodecError):
    """The body is not record_count whole records of the type's layout (the frame is skipped)."""

    code = "bad_body_length"
    wire_code = 2112
    summary = "body is not record_count whole records (frame skipped)"


# --- records and fields -------------------------------------------------------------------


class RecordLengthError(CodecError):
    """The record (or run of records) is not the layout's length (truncated or overlong)."""

    code = "bad_record_length"
    wire_code = 2201
    summary = "record data is not a whole number of records"


class BadDigits(CodecError):
    """A numeric field holds something other than ASCII digits."""

    code = "bad_digits"
    wire_code = 2202
    summary = "numeric field holds a non-digit"


class BadCheckDigit(CodecError):
    """A 個人番号, 住民票コード or 地方公共団体コード has the wrong check digit."""

    code = "bad_check_digit"
    wire_code = 2203
    summary = "check digit does not match"


class UnknownCode(CodecError):
    """A coded field holds a value that is not in its code table."""

    code = "unknown_code"
    wire_code = 2204
    summary = "value not in the field's code table"


class BadDate(CodecError):
    """A date or timestamp is not a real calendar moment."""

    code = "bad_date"
    wire_code = 2205
    summary = "impossible date or time"


class BadPadding(CodecError):
    """Padding is malformed: wrong pad character, or a gap inside the value."""

    code = "bad_padding"
    wire_code = 2206
    summary = "padding is malformed"


class BadText(CodecError):
    """A text field holds bytes or characters its kind does not allow."""

    code = "bad_text"
    wire_code = 2207
    summary = "character or byte not allowed in the field"


class ValueTooLong(CodecError):
    """A value does not fit in its field's width."""

    code = "value_too_long"
    wire_code = 2208
    summary = "value does not fit the field"


class DerivedMismatch(CodecError):
    """A derived item (外字数, 外字フラグ, 代替文字, 清音化かな, 項目長) disagrees with its source."""

    code = "derived_mismatch"
    wire_code = 2209
    summary = "derived item disagrees with its source items"


class MissingField(CodecError):
    """A required field was not supplied (or was empty)."""

    code = "missing_field"
    wire_code = 2210
    summary = "required field missing or empty"


class UnknownField(CodecError):
    """The record holds a key that is not a field of the layout."""

    code = "unknown_field"
    wire_code = 2211
    summary = "key is not a field of the layout"


class BadValueType(CodecError):
    """A supplied value has the wrong type (e.g. a number where text is expected)."""

    code = "bad_value_type"
    wire_code = 2212
    summary = "value has the wrong type"


class UnknownLayout(CodecError):
    """No layout has that name."""

    code = "unknown_layout"
    wire_code = 2213
    summary = "no such layout"


ERROR_CLASSES: tuple[type[CodecError], ...] = (
    CodecError,
    FatalFrameError,
    BadMagic,
    UnsupportedVersion,
    FrameTooLarge,
    BadFrameHeader,
    TruncatedFrame,
    UnknownMessageType,
    BadBodyLength,
    RecordLengthError,
    BadDigits,
    BadCheckDigit,
    UnknownCode,
    BadDate,
    BadPadding,
    BadText,
    ValueTooLong,
    DerivedMismatch,
    MissingField,
    UnknownField,
    BadValueType,
    UnknownLayout,
)
