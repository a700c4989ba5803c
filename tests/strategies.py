"""Hypothesis strategies built from the layout tables: one strategy per field kind."""

from __future__ import annotations

import datetime
from typing import Any

from hypothesis import strategies as st

from juki_gateway.codecs.fields import (
    CheckDigitCode,
    Code,
    Date,
    Digits,
    FlagString,
    Kind,
    Magic,
    Number,
    RawBytes,
    Timestamp,
    UInt,
)
from juki_gateway.codecs.gaiji import SUBSTITUTES
from juki_gateway.codecs.kana import KANA_CHARS
from juki_gateway.codecs.schema import Layout
from juki_gateway.codecs.textfields import (
    AsciiText,
    AsciiToken,
    Kana,
    Text,
    Utf8Text,
    Utf16Text,
)

#: ordinary JIS X 0208 text, 外字 with and without substitutes, and an inner ideographic space
TEXT_POOL = "山田太郎花子金沢市広坂一丁目番号ー々ヶ〒ＡＺ０９髙﨑𠮷德濵靑鷗\U0002000b\u3000"
ASCII_ALPHABETS = {
    "0-9A-Za-z": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "0-9-": "0123456789-",
    "A-Z": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "0-9A-Za-z._-": "0123456789abcdefghijkz._-ABZ",
    "0-9": "0123456789",
}
#: what double-byte fields that may hold ASCII carry: codes, country letters, names
UTF16_POOL = "019AVNMUS 山田髙﨑𠮷\u3000"


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=n, max_size=n)


#: a 代替文字位置情報 item holds at most this many positions; longer runs are an encode error
MAX_SUBSTITUTED = 10


def _text(pool: str, width: int) -> st.SearchStrategy[str]:
    return st.text(pool, min_size=1, max_size=width // 4).filter(
        lambda s: not s.endswith("\u3000") and sum(ch in SUBSTITUTES for ch in s) <= MAX_SUBSTITUTED
    )


def for_kind(kind: Kind, width: int) -> st.SearchStrategy[Any]:
    """Valid values of one field kind and width."""
    if isinstance(kind, CheckDigitCode):
        scheme = kind.scheme
        return _digits(scheme.digits - 1).map(lambda b: b + str(scheme.check_digit(b)))
    if isinstance(kind, Number):
        return st.integers(0, 10**width - 1)
    if isinstance(kind, Digits):
        return _digits(width)
    if isinstance(kind, Code):
        return st.sampled_from(sorted(kind.table.codes))
    if isinstance(kind, Date):
        return st.dates(datetime.date(1, 1, 1)).map(lambda d: f"{d.year:04d}{d.month:02d}{d.day:02d}")
    if isinstance(kind, Timestamp):
        return st.datetimes(datetime.datetime(1, 1, 1)).map(lambda d: d.strftime("%Y%m%d%H%M%S").rjust(14, "0"))
    if isinstance(kind, AsciiToken):
        return st.text(ASCII_ALPHABETS[kind.alphabet], min_size=1, max_size=width)
    if isinstance(kind, AsciiText):
        return st.text("abcXYZ09_- .", min_size=1, max_size=width).map(str.strip).filter(bool)
    if isinstance(kind, Utf8Text):
        return st.text("abc é漢字.", max_size=width // 3).map(str.rstrip)
    if isinstance(kind, Utf16Text):
        return _text(UTF16_POOL, width)
    if isinstance(kind, Kana):
        return _text(KANA_CHARS, width * 2)
    if isinstance(kind, Text):
        return _text(TEXT_POOL, width)
    if isinstance(kind, FlagString):
        return st.text("01", min_size=width, max_size=width)
    if isinstance(kind, RawBytes):
        return st.binary(min_size=width, max_size=width)
    if isinstance(kind, Magic):
        return st.just(kind.value.decode("ascii"))
    if isinstance(kind, UInt):
        return st.integers(0, (1 << (8 * width)) - 1)
    raise NotImplementedError(type(kind).__name__)


def records(layout: Layout) -> st.SearchStrategy[dict[str, Any]]:
    """Valid records of a layout: primary items only (derived ones are the encoder's job)."""
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for f in layout.fields:
        if f.derive is not None or f.name == "magic":
            continue
        s = for_kind(f.kind, f.width)
        parts[f.name] = st.none() | s if f.optional else s
    return st.fixed_dictionaries(parts)
