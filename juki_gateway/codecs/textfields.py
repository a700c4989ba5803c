"""Text field kinds: ASCII tokens and text, UTF-8 detail text, double-byte text and kana.

Double-byte text is UTF-16BE padded with U+3000. The generated decoder finds the padding on the
bytes and settles "no 外字, nothing forbidden" with one regex scan; the 外字 count and byte
length it learns on the way are reused by the derived-item checks (see ``Gen``).
"""

from __future__ import annotations

import codecs
import re
from typing import Any

from juki_gateway.codecs.errors import BadPadding, BadText, MissingField, ValueTooLong
from juki_gateway.codecs.fields import IDEOGRAPHIC_SPACE, Gen, Kind, need_str
from juki_gateway.codecs.gaiji import TEXT_BAD, Profile
from juki_gateway.codecs.kana import KANA_BAD

#: Printable UTF-8 detail text: no control characters.
UTF8_BAD = re.compile("[\x00-\x1f\x7f-\x9f]")

class AsciiToken(Kind):
    """Left-aligned ASCII from a small alphabet, right-padded with spaces, never empty inside."""

    kind_name = "ascii"

    def __init__(self, alphabet: str, label: str) -> None:
        self.alphabet = alphabet
        self.label = label
        self._pat = re.compile(f"[{alphabet}]+".encode("ascii"))

    def decode(self, raw: Any, width: int, profile: Profile) -> str:
        s = raw.rstrip(b" ")
        if not s:
            raise MissingField("field is empty")
        if self._pat.fullmatch(s) is None:
            raise BadText(f"{raw!r} is not {self.label} left-aligned and space-padded")
        return str(s.decode("ascii"))

    def encode(self, value: Any, width: int, profile: Profile) -> bytes:
        s = need_str(value)
        if not s:
            raise MissingField("field is empty")
        if not s.isascii() or self._pat.fullmatch(s.encode("ascii")) is None:
            raise BadText(f"{s!r} is not {self.label}")
        if len(s) > width:
            raise ValueTooLong(f"{s!r} is longer than {width}")
        return s.encode("ascii").ljust(width, b" ")

    def gen_decode(self, width: int, raw: str, dst: str, g: Gen) -> list[str]:
        if self.alphabet == "0-9A-Za-z":  # bytes.isalnum() is exactly [0-9A-Za-z]+ (ASCII only)
            check = f"{dst}.isalnum()"
        else:
            check = f"{g.const(self._pat.fullmatch, 'pat')}({dst})"
        return [f"{dst} = {raw}.rstrip(b' ')", f"if not {check}: raise ValueError", f"{dst} = {dst}.decode()"]

    def gen_encode(self, width: int, val: str, dst: str, g: Gen) -> list[str]:
        p = g.const(self._pat.fullmatch, "pat")
        return [
            f"if type({val}) is not str or not {val}.isascii() or len({val}) > {width}: raise ValueError",
            f"{dst} = {val}.encode()",
            f"if not {p}({dst}): raise ValueError",
            f"{dst} = {dst}.ljust({width})",
        ]

    def describe(self, width: int) -> str:
        return f"{self.label}, left-aligned, space-padded"


class AsciiText(Kind):
    """Printable ASCII text (inner spaces allowed), right-padded with spaces."""

    kind_name = "ascii text"

    _pat = re.compile(rb"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")

    def decode(self, raw: Any, width: int, profile: Profile) -> str:
        s = raw.rstrip(b" ")
        if not s:
            raise MissingField("field is empty")
        if self._pat.fullmatch(s) is None:
            raise BadText(f"{raw!r} is not printable ASCII")
        return str(s.decode("ascii"))

    def encode(self, value: Any, width: int, profile: Profile) -> bytes:
        s = need_str(value)
        if not s:
            raise MissingField("field is empty")
        if not s.isascii() or self._pat.fullmatch(s.encode("ascii")) is None:
            raise BadText(f"{s!r} is not printable ASCII without trailing spaces")
        if len(s) > width:
            raise ValueTooLong(f"{s!r} is longer than {width}")
        return s.encode("ascii").ljust(width, b" ")

    def describe(self, width: int) -> str:
        return "printable ASCII, space-padded"


class Utf8Text(Kind):
    """UTF-8 text without control characters, right-padded with spaces."""

    kind_name = "utf-8 text"

    def decode(self, raw: Any, width: int, profile: Profile) -> str:
        try:
            s = str(raw.rstrip(b" ").decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise BadText(f"not UTF-8 at byte {exc.start}") from None
        if UTF8_BAD.search(s):
            raise BadText("control character in text")
        return s

    def encode(self, value: Any, width: int, profile: Profile) -> bytes:
        s = need_str(value)
        if UTF8_BAD.search(s) or s.endswith(" "):
            raise BadText("control character or trailing space in text")
        try:
            b = s.encode("utf-8")
        except UnicodeEncodeError:
            raise BadText("text holds a lone surrogate") from None
        if len(b) > width:
            raise ValueTooLong(f"{len(b)} bytes do not fit in {width}")
        return b.ljust(width, b" ")

    def describe(self, width: int) -> str:
        return "UTF-8 text, space-padded (may be empty)"


class Text(Kind):
    """Double-byte text: UTF-16BE, padded with U+3000; 外字 are judged by the link profile."""

    kind_name = "text"
    ascii_family = False
    _bad = TEXT_BAD
    _what = "double-byte text"

    def check_width(self, width: int) -> None:
        if width <= 0 or width % 2:
            raise ValueError("double-byte text needs an even width")

    def decode(self, raw: Any, width: int, profile: Profile) -> str:
        try:
            s = str(raw.decode("utf-16-be")).rstrip(IDEOGRAPHIC_SPACE)
        except UnicodeDecodeError as exc:
            raise BadText(f"not UTF-16BE at byte {exc.start} (lone surrogate)") from None
        if not s:
            raise MissingField("field is empty")
        m = self._bad.search(s)
        if m:
            raise BadText(f"U+{ord(m.group()):04X} is not allowed in {self._what}")
        return s

    def encode(self, value: Any, width: int, profile: Profile) -> bytes:
        s = need_str(value)
        if not s:
            raise MissingField("field is empty")
        m = self._bad.search(s)
        if m:
            raise BadText(f"U+{ord(m.group()):04X} is not allowed in {self._what}")
        if s.endswith(IDEOGRAPHIC_SPACE):
            raise BadPadding("text may not end with U+3000, the padding character")
        try:
            b = s.encode("utf-16-be")
        except UnicodeEncodeError:
            raise BadText("text holds a lone surrogate") from None
        if len(b) > width:
            raise ValueTooLong(f"{len(s)} characters ({len(b)} bytes) do not fit in {width} bytes")
        return b + self.empty(width)[: width - len(b)]

    def gen_decode(self, width: int, raw: str, dst: str, g: Gen) -> list[str]:
        bad = g.const(self._bad.search, "bad")
        u16 = g.const(codecs.utf_16_be_decode, "u16")
        empty = self.empty(width)
        tails = g.const([empty[i:] for i in range(width + 1)], "tails")
        n, count, full = f"_n{dst}", f"_g{dst}", f"_s{dst}"
        g.text_bytes[dst] = n
        # Find where the U+3000 padding starts on the bytes and decode only what is before it
        # (UTF-16 decoding costs by length, and names fill a fraction of their field). Padding
        # is made of 0x30 and 0x00 bytes only, so stripping those bytes never stops after its
        # start; rounded up to a whole unit, the cut is accepted when everything after it is
        # exactly U+3000 pairs. The unit before the cut then holds a byte other than 0x30/0x00,
        # so it is not U+3000: the value is the decoded field with its trailing U+3000 removed,
        # and the cut is its byte length. Otherwise (a value ending in a character such as
        # U+3030 whose bytes are all 0x30/0x00) decode the whole field and strip U+3000.
        lines = [
            f"{n} = len({raw}.rstrip(b'0\\x00'))",
            f"{n} += {n} & 1",
            f"if {raw}.endswith({tails}[{n}]):",
            f"    {dst} = {u16}({raw}[:{n}], None, True)[0]",
            "else:",
            f"    {full} = {u16}({raw}, None, True)[0]",
            f"    {dst} = {full}.rstrip('\\u3000')",
            f"    {n} = len({dst}.encode('utf-16-be'))",
        ]
        if self._bad is not TEXT_BAD:
            return [*lines, f"if not {dst} or {bad}({dst}): raise ValueError"]
        # one scan collects every character that is 外字 or forbidden; none clears the common
        # case, and when nothing is forbidden they are exactly the 外字
        g.text_gaiji[dst] = count
        return [
            *lines,
            f"if not {dst}: raise ValueError",
            f"{count} = len(_UNUSUAL_ALL({dst}))",
            f"if {count} and {bad}({dst}): raise ValueError",
        ]

    def gen_encode(self, width: int, val: str, dst: str, g: Gen) -> list[str]:
        bad = g.const(self._bad.search, "bad")
        pad = g.const(self.empty(width), "pad")
        n = f"_n{val}"
        g.text_bytes[val] = n
        return [
            f"if type({val}) is not str or not {val} or {bad}({val}) or {val}[-1] == '\\u3000': raise ValueError",
            f"{dst} = {val}.encode('utf-16-be')",
            f"{n} = len({dst})",
            f"if {n} > {width}: raise ValueError",
            f"{dst} += {pad}[{n}:]",
        ]

    def gen_canonical(self, width: int, val: str, g: Gen) -> str:
        # too long a value gives longer bytes, hence a mismatch; the byte length is kept for 項目長
        pad = g.const(self.empty(width), "pad")
        enc = f"_e{val}"
        g.text_bytes[val] = f"len({enc})"
        return f"(({enc} := {val}.encode('utf-16-be')) + {pad}[len({enc}):])"

    def describe(self, width: int) -> str:
        return f"double-byte text, UTF-16BE, U+3000-padded (≤ {width // 2} UTF-16 units)"


class Kana(Text):
    """Full-width katakana (ー, ・ and inner U+3000 allowed), UTF-16BE, U+3000-padded."""

    kind_name = "kana"
    _bad = KANA_BAD
    _what = "kana"

    def describe(self, width: int) -> str:
        return f"full-width katakana, UTF-16BE, U+3000-padded (≤ {width // 2} characters)"


class Utf16Text(Text):
    """Any text but controls, UTF-16BE, U+3000-padded: double-byte fields that may hold ASCII."""

    kind_name = "utf-16 text"
    _bad = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufff0-\uffff]")
    _what = "UTF-16 text"

    def describe(self, width: int) -> str:
        return f"any text but controls, UTF-16BE, U+3000-padded (≤ {width // 2} UTF-16 units)"
