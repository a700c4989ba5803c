"""Field kinds: how one fixed-width field's bytes map to a value, and back.

A layout (``layouts.py``) is a table of fields; each field names one kind from this module. A
kind knows three things about its bytes:

- ``decode``/``encode``: the reference semantics, used by the construct path (``reference.py``)
  and to locate and explain errors; they raise a :class:`CodecError` subclass with a reason;
- ``gen_decode``/``gen_encode``: the same semantics as inline Python source, which ``record.py``
  stitches into one specialised function per layout (the fast path). Generated code may raise
  any exception on bad input: the fast path then re-runs the reference path to report it;
- ``describe``: the one-line description printed in ``docs/wire-format.md``.

Optional fields have one empty form: all spaces for ASCII kinds, all U+3000 for double-byte kinds;
their value is then ``None``. This module holds the base class and the numeric, date, code and
binary kinds; ``textfields.py`` holds the ASCII, UTF-8 and double-byte text kinds.
"""

from __future__ import annotations

import calendar
import datetime
import functools
import itertools
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from juki_gateway.codecs.checkdigits import CheckScheme, weighted_digit_list
from juki_gateway.codecs.errors import (
    BadCheckDigit,
    BadDate,
    BadDigits,
    BadPadding,
    BadText,
    BadValueType,
    UnknownCode,
    ValueTooLong,
)
from juki_gateway.codecs.gaiji import Profile

IDEOGRAPHIC_SPACE = "\u3000"



class Gen:
    """Collects the constants a generated function refers to (its global namespace)."""

    def __init__(self) -> None:
        self.ns: dict[str, Any] = {}
        self._n = 0
        #: source field name -> variable already holding its 外字 count (set while generating)
        self.gaiji_counts: dict[str, str] = {}
        #: source field name -> variable holding ``profile.substitute(value)`` (computed once)
        self.substitutes: dict[str, str] = {}
        #: decoded text variable -> expressions already known for it while decoding
        self.text_gaiji: dict[str, str] = {}
        self.text_bytes: dict[str, str] = {}
        #: value variables of required fields (never None or empty once decoded or validated)
        self.required: set[str] = set()

    def const(self, obj: Any, hint: str = "k") -> str:
        """A fresh global name bound to ``obj`` in the generated code's namespace."""
        self._n += 1
        name = f"_{hint}{self._n}"
        self.ns[name] = obj
        return name


class Kind:
    """Base of all field kinds; the default fast path simply calls the reference methods."""

    kind_name: ClassVar[str] = "kind"
    ascii_family: ClassVar[bool] = True  # empty form is spaces (else U+3000)
    has_default: ClassVar[bool] = False  # encode(None) gives the one allowed value

    def struct_code(self, width: int) -> str:
        """The ``struct`` format code of a field of this kind and width."""
        return f"{width}s"

    def check_width(self, width: int) -> None:
        """Raise ValueError when a layout table gives this kind an impossible width."""
        if width <= 0:
            raise ValueError(f"{self.kind_name}: width must be positive")

    def empty(self, width: int) -> bytes:
        """The one empty form of an optional field of this kind."""
        return b" " * width if self.ascii_family else IDEOGRAPHIC_SPACE.encode("utf-16-be") * (width // 2)

    def decode(self, raw: Any, width: int, profile: Profile) -> Any:
        """The value of ``raw``; raises a CodecError subclass when ``raw`` is invalid."""
        raise NotImplementedError

    def encode(self, value: Any, width: int, profile: Profile) -> Any:
        """The raw form of ``value``; raises a CodecError subclass when it is invalid."""
        raise NotImplementedError

    def gen_decode(self, width: int, raw: str, dst: str, g: Gen) -> list[str]:
        """Source lines assigning the value of ``raw`` to ``dst`` (may raise anything if invalid)."""
        k = g.const(self, "kind")
        return [f"{dst} = {k}.decode({raw}, {width}, _PROFILE)"]

    def gen_encode(self, width: int, val: str, dst: str, g: Gen) -> list[str]:
        """Source lines assigning the raw form of ``val`` to ``dst`` (may raise anything)."""
        k = g.const(self, "kind")
        return [f"{dst} = {k}.encode({val}, {width}, _PROFILE)"]

    def gen_canonical(self, width: int, val: str, g: Gen) -> str:
        """An expression for the wire bytes of a trusted value (a derived item being checked)."""
        k = g.const(self, "kind")
        return f"{k}.encode({val}, {width}, _PROFILE)"

    def describe(self, width: int) -> str:
        """One line for the wire-format document."""
        return self.kind_name


def need_str(value: Any) -> str:
    if not isinstance(value, str):
        raise BadValueType(f"expected a string, got {type(value).__name__}")
    return value


def _need_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadValueType(f"expected an integer, got {type(value).__name__}")
    return value


def _ascii_digits(raw: bytes, what: str) -> str:
    if not raw.isdigit():
        raise BadDigits(f"{what} must be ASCII digits, got {raw!r}")
    return raw.decode("ascii")


class Digits(Kind):
    """Exactly ``width`` ASCII digits, kept as a string (leading zeros matter)."""

    kind_name = "digits"

    def decode(self, raw: Any, width: int, profile: Profile) -> str:
        return _ascii_digits(raw, "digits")

    def encode(self, value: Any, width: int, profile: Profile) -> bytes:
        s = need_str(value)
        if len(s) != width or not (s.isascii() and s.isdigit()):
            raise BadDigits(f"must be exactly {width} ASCII digits, got {s!r}")
        return s.encode("ascii")

    def gen_decode(self, width: int, raw: str, dst: str, g: Gen) -> list[str]:
        return [f"if not {raw}.isdigit(): raise ValueError", f"{dst} = {raw}.decode()"]

    def gen_encode(self, width: int, val: str, dst: str, g: Gen) -> list[str]:
        return [
            f"if type({val}) is not str or len({val}) != {width} or not ({val}.isascii() and {val}.isdigit()): raise ValueError",
            f"{dst} = {val}.encode()",
        ]

    def describe(self, width: int) -> str:
        return f"{width} ASCII digits (string)"


class Number(Kind):
    """A non-negative integer written as ``width`` zero-padded ASCII digits."""

    kind_name = "number"

    def decode(self, raw: Any, width: int, profile: Profile) -> int:
        return int(_ascii_digits(raw, "number"))

    def encode(self, value: Any, width: int, profile: Profile) -> bytes:
        n = _need_int(value)
        if n < 0 or n >= 10**width:
            raise ValueTooLong(f"{n} does not fit in {width} digits")
        return b"%0*d" % (width, n)

    def gen_decode(self, width: int, raw: str, dst: str, g: Gen) -> list[str]:
        return [f"if not {raw}.isdigit(): raise ValueError", f"{dst} = int({raw})"]

    def gen_encode(self, width: int, val: str, dst: str, g: Gen) -> list[str]:
        return [
            f"if type({val}) is not int or not 0 <= {val} < {10**width}: raise ValueError",
            f"{dst} = b'%0{width}d' % {val}",
        ]

    def gen_canonical(self, width: int, val: str, g: Gen) -> str:
        if width <= 3:  # a list index (IndexError when it does not fit, like a mismatch)
            t = g.const([b"%0*d" % (width, n) for n in range(10**width)], "num")
            return f"{t}[{val}]"
        return f"(b'%0{width}d' % {val})"

    def describe(self, width: int) -> str:
        return f"integer, {width} zero-padded ASCII digits"


class CheckDigitCode(Kind):
    """A code whose last digit checks the others (個人番号, 住民票コード, 地方公共団体コード)."""

    kind_name = "check-digit code"

    def __init__(self, scheme: CheckScheme) -> None:
        self.scheme = scheme

    def check_width(self, width: int) -> None:
        if width != self.scheme.digits:
            raise ValueError(f"{self.scheme.name} is {self.scheme.digits} digits wide")

    def decode(self, raw: Any, width: int, profile: Profile) -> str:
        s = _ascii_digits(raw, self.scheme.label)
        if not self.scheme.is_valid(s):
            raise BadCheckDigit(
                f"{self.scheme.label} {s} has check digit {s[-1]}, expected "
                f"{self.scheme.check_digit(s[:-1])}"
            )
        return s

    def encode(self, value: Any, width: int, profile: Profile) -> bytes:
        s = need_str(value)
        if len(s) != width or not (s.isascii() and s.isdigit()):
            raise BadDigits(f"{self.scheme.label} must be {width} ASCII digits, got {s!r}")
        return self.decode(s.encode("ascii"), width, profile).encode("ascii")

    def _check_expr(self, raw: str, g: Gen) -> str:
        """True when ``raw`` has a wrong check digit; raises TypeError when the body has a non-digit."""
        # One list lookup per body digit (weight × digit by byte value; None + int raises for a
        # non-digit), summed: no multiplication, no temporary objects. The check digit itself
        # must equal the table's ASCII digit, so a non-digit there is a mismatch.
        terms = " + ".join(
            f"{g.const(weighted_digit_list(w), f'wd{w}_')}[{raw}[{i}]]" for i, w in enumerate(self.scheme.weights)
        )
        table = g.const(bytes(48 + d for d in self.scheme.check_by_residue), "ck")
        return f"{table}[({terms}) % 11] != {raw}[{len(self.scheme.weights)}]"

    def gen_decode(self, width: int, raw: str, dst: str, g: Gen) -> list[str]:
        return [f"if {self._check_expr(raw, g)}: raise ValueError", f"{dst} = {raw}.decode()"]

    def gen_encode(self, width: int, val: str, dst: str, g: Gen) -> list[str]:
        return [
            f"if type({val}) is not str or len({val}) != {width} or not {val}.isascii(): raise ValueError",
            f"{dst} = {val}.encode()",
            f"if {self._check_expr(dst, g)}: raise ValueError",
        ]

    def describe(self, width: int) -> str:
        s = self.scheme
        return f"{s.label}: {width} digits, weights {','.join(map(str, s.weights))} mod 11 check digit"


@dataclass(frozen=True, slots=True)
class CodeTable:
    """A named code table: code (ASCII) → meaning."""

    name: str
    label: str
    codes: dict[str, str]
    rule: str = ""  # how codes are composed, when the table is generated from a few base codes
    doc_codes: dict[str, str] | None = None  # what the documentation lists (default: codes)


class Code(Kind):
    """A value from a code table, written as its ASCII code."""

    kind_name = "code"

    def __init__(self, table: CodeTable) -> None:
        self.table = table
        self._by_raw = {c.encode("ascii"): c for c in table.codes}

    def check_width(self, width: int) -> None:
        if any(len(c) != width for c in self.table.codes):
            raise ValueError(f"code table {self.table.name} has codes not {width} wide")

    def decode(self, raw: Any, width: int, profile: Profile) -> str:
        code = self._by_raw.get(raw)
        if code is None:
            raise UnknownCode(f"{raw!r} is not a {self.table.label} code ({self.table.name})")
        return code

    def encode(self, value: Any, width: int, profile: Profile) -> bytes:
        s = need_str(value)
        if s not in self.table.codes:
            raise UnknownCode(f"{s!r} is not a {self.table.label} code ({self.table.name})")
        return s.encode("ascii")

    def gen_decode(self, width: int, raw: str, dst: str, g: Gen) -> list[str]:
        t = g.const(self._by_raw, "tbl")
        return [f"{dst} = {t}[{raw}]"]

    def gen_encode(self, width: int, val: str, dst: str, g: Gen) -> list[str]:
        t = g.const(frozenset(self.table.codes), "codes")
        return [f"if type({val}) is not str or {val} not in {t}: raise ValueError", f"{dst} = {val}.encode()"]

    def gen_canonical(self, width: int, val: str, g: Gen) -> str:
        return f"{val}.encode()"

    def describe(self, width: int) -> str:
        return f"code, table `{self.table.name}` ({self.table.label})"


#: Every valid month-day (MMDD) including 0229; a leap-year check is only needed for 0229.
_MMDD: frozenset[bytes] = frozenset(
    d.strftime("%m%d").encode("ascii")
    for d in (datetime.date(2024, 1, 1) + datetime.timedelta(days=n) for n in range(366))
)


@functools.cache
def common_dates() -> frozenset[bytes]:
    """Every calendar date YYYYMMDD of 1900-2099: one set lookup settles the common case."""
    return frozenset(
        b"%04d%02d%02d" % (y, m, d)
        for y in range(1900, 2100)
        for m in range(1, 13)
        for d in range(1, calendar.monthrange(y, m)[1] + 1)
    )


def _date_lines(b: str, g: Gen, *, prefix: bool = False) -> list[str]:
    """Inline calendar check of ``b`` (or its first 8 bytes with ``prefix``), set lookup first."""
    mmdd = g.const(_MMDD, "mmdd")
    leap = g.const(calendar.isleap, "leap")
    dates = g.const(common_dates(), "dates")
    d = f"{b}[:8]" if prefix else b
    return [
        f"if {d} not in {dates}:",
        f"    if not {b}.isdigit() or {b}[4:8] not in {mmdd} or {b}[:4] == b'0000' or ({b}[4:8] == b'0229' and not {leap}(int({b}[:4]))): raise ValueError",
    ]


def _check_date(s: str) -> None:
    try:
        datetime.date(int(s[:4]), int(s[4:6]), int(s[6:8]))
    except ValueError:
        raise BadDate(f"{s} is not a calendar date") from None


class Date(Kind):
    """A calendar-checked date YYYYMMDD."""

    kind_name = "date"

    def check_width(self, width: int) -> None:
        if width != 8:
            raise ValueError("a date is 8 wide")

    def decode(self, raw: Any, width: int, profile: Profile) -> str:
        s = _ascii_digits(raw, "date")
        _check_date(s)
        return s

    def encode(self, value: Any, width: int, profile: Profile) -> bytes:
        s = need_str(value)
        if len(s) != 8 or not (s.isascii() and s.isdigit()):
            raise BadDigits(f"a date is YYYYMMDD, got {s!r}")
        _check_date(s)
        return s.encode("ascii")

    def gen_decode(self, width: int, raw: str, dst: str, g: Gen) -> list[str]:
        return [*_date_lines(raw, g), f"{dst} = {raw}.decode()"]

    def gen_encode(self, width: int, val: str, dst: str, g: Gen) -> list[str]:
        return [
            f"if type({val}) is not str or len({val}) != 8: raise ValueError",
            f"{dst} = {val}.encode()",
            *_date_lines(dst, g),
        ]

    def describe(self, width: int) -> str:
        return "date YYYYMMDD (calendar-checked)"


def _check_timestamp(s: str) -> None:
    try:
        datetime.datetime(int(s[:4]), int(s[4:6]), int(s[6:8]), int(s[8:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise BadDate(f"{s} is not a real moment YYYYMMDDhhmmss") from None


class Timestamp(Kind):
    """A calendar-checked timestamp YYYYMMDDhhmmss."""

    kind_name = "timestamp"

    def check_width(self, width: int) -> None:
        if width != 14:
            raise ValueError("a timestamp is 14 wide")

    def decode(self, raw: Any, width: int, profile: Profile) -> str:
        s = _ascii_digits(raw, "timestamp")
        _check_timestamp(s)
        return s

    def encode(self, value: Any, width: int, profile: Profile) -> bytes:
        s = need_str(value)
        if len(s) != 14 or not (s.isascii() and s.isdigit()):
            raise BadDigits(f"a timestamp is YYYYMMDDhhmmss, got {s!r}")
        _check_timestamp(s)
        return s.encode("ascii")

    def _lines(self, b: str, g: Gen) -> list[str]:
        return [
            f"if not {b}.isdigit(): raise ValueError",
            *_date_lines(b, g, prefix=True),
            f"if {b}[8:10] > b'23' or {b}[10:12] > b'59' or {b}[12:] > b'59': raise ValueError",
        ]

    def gen_decode(self, width: int, raw: str, dst: str, g: Gen) -> list[str]:
        return [*self._lines(raw, g), f"{dst} = {raw}.decode()"]

    def gen_encode(self, width: int, val: str, dst: str, g: Gen) -> list[str]:
        return [
            f"if type({val}) is not str or len({val}) != 14: raise ValueError",
            f"{dst} = {val}.encode()",
            *self._lines(dst, g),
        ]

    def describe(self, width: int) -> str:
        return "timestamp YYYYMMDDhhmmss (calendar-checked)"


class Magic(Kind):
    """A constant byte string (the frame's magic)."""

    kind_name = "magic"
    has_default = True

    def __init__(self, value: bytes) -> None:
        self.value = value

    def check_width(self, width: int) -> None:
        if width != len(self.value):
            raise ValueError("magic width mismatch")

    def decode(self, raw: Any, width: int, profile: Profile) -> str:
        if raw != self.value:
            raise BadText(f"expected magic {self.value!r}, got {raw!r}")
        return self.value.decode("ascii")

    def encode(self, value: Any, width: int, profile: Profile) -> bytes:
        if value not in (None, self.value.decode("ascii")):
            raise BadText(f"magic must be {self.value!r}")
        return self.value

    def describe(self, width: int) -> str:
        return f"constant {self.value.decode('ascii')!r}"


_UINT_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}


class UInt(Kind):
    """A big-endian unsigned binary integer of 1, 2, 4 or 8 bytes."""

    kind_name = "uint"

    def struct_code(self, width: int) -> str:
        return _UINT_CODES[width]

    def check_width(self, width: int) -> None:
        if width not in _UINT_CODES:
            raise ValueError("uint width must be 1, 2, 4 or 8")

    def decode(self, raw: Any, width: int, profile: Profile) -> int:
        return int(raw)

    def encode(self, value: Any, width: int, profile: Profile) -> int:
        n = _need_int(value)
        if not 0 <= n < 1 << (8 * width):
            raise ValueTooLong(f"{n} does not fit in an unsigned {8 * width}-bit integer")
        return n

    def gen_decode(self, width: int, raw: str, dst: str, g: Gen) -> list[str]:
        return [f"{dst} = {raw}"]

    def gen_encode(self, width: int, val: str, dst: str, g: Gen) -> list[str]:
        return [f"if type({val}) is not int or not 0 <= {val} < {1 << (8 * width)}: raise ValueError", f"{dst} = {val}"]

    def describe(self, width: int) -> str:
        return f"unsigned {8 * width}-bit big-endian integer"


class Positions(Kind):
    """Up to width/3 ascending 1-based character positions, 3 digits each, then spaces."""

    kind_name = "positions"

    def check_width(self, width: int) -> None:
        if width % 3:
            raise ValueError("positions width must be a multiple of 3")

    def decode(self, raw: Any, width: int, profile: Profile) -> list[int]:
        out: list[int] = []
        body = raw.rstrip(b" ")
        if len(body) % 3:
            raise BadPadding("positions must be whole 3-digit slots followed by spaces")
        for i in range(0, len(body), 3):
            slot = body[i : i + 3]
            if not slot.isdigit():
                raise BadDigits(f"position slot {slot!r} is not 3 digits")
            n = int(slot)
            if n == 0 or (out and n <= out[-1]):
                raise BadDigits("positions must be ascending and start at 1")
            out.append(n)
        return out

    def encode(self, value: Any, width: int, profile: Profile) -> bytes:
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise BadValueType("positions are a list of integers")
        if len(value) > width // 3:
            raise ValueTooLong(f"more than {width // 3} positions")
        if any(not 0 < v < 1000 for v in value) or any(a >= b for a, b in itertools.pairwise(value)):
            raise BadDigits("positions must be ascending, 1..999")
        return b"".join(b"%03d" % v for v in value).ljust(width, b" ")

    def gen_decode(self, width: int, raw: str, dst: str, g: Gen) -> list[str]:
        k = g.const(self, "kind")
        return [f"{dst} = [] if {raw} == {g.const(b' ' * width, 'empty')} else {k}.decode({raw}, {width}, _PROFILE)"]

    def gen_encode(self, width: int, val: str, dst: str, g: Gen) -> list[str]:
        k = g.const(self, "kind")
        return [
            f"if type({val}) is not list: raise ValueError",
            f"{dst} = {k}.encode({val}, {width}, _PROFILE) if {val} else {g.const(b' ' * width, 'empty')}",
        ]

    def gen_canonical(self, width: int, val: str, g: Gen) -> str:
        # computed positions are ascending and 1-based by construction; too many of them give
        # bytes longer than the field, hence a mismatch
        t = g.const([b"%03d" % n for n in range(1000)], "pos")
        empty = g.const(b" " * width, "empty")
        return f"(b''.join([{t}[p] for p in {val}]).ljust({width}) if {val} else {empty})"

    def describe(self, width: int) -> str:
        return f"up to {width // 3} ascending 3-digit positions (1-based), space-padded"


class FlagString(Kind):
    """A string of '0'/'1' flags, one per source item."""

    kind_name = "flags"
    _pat = re.compile(rb"[01]+")

    def decode(self, raw: Any, width: int, profile: Profile) -> str:
        if self._pat.fullmatch(raw) is None:
            raise BadDigits(f"{raw!r} is not a string of 0/1 flags")
        return str(raw.decode("ascii"))

    def encode(self, value: Any, width: int, profile: Profile) -> bytes:
        s = need_str(value)
        if len(s) != width or self._pat.fullmatch(s.encode("ascii", "replace")) is None:
            raise BadDigits(f"{s!r} is not {width} 0/1 flags")
        return s.encode("ascii")

    def gen_decode(self, width: int, raw: str, dst: str, g: Gen) -> list[str]:
        p = g.const(self._pat.fullmatch, "pat")
        return [f"if not {p}({raw}): raise ValueError", f"{dst} = {raw}.decode()"]

    def gen_encode(self, width: int, val: str, dst: str, g: Gen) -> list[str]:
        p = g.const(self._pat.fullmatch, "pat")
        return [
            f"if type({val}) is not str or len({val}) != {width} or not {val}.isascii(): raise ValueError",
            f"{dst} = {val}.encode()",
            f"if not {p}({dst}): raise ValueError",
        ]

    def gen_canonical(self, width: int, val: str, g: Gen) -> str:
        return f"{val}.encode()"

    def describe(self, width: int) -> str:
        return f"{width} flags '0'/'1'"


class RawBytes(Kind):
    """Opaque bytes of exactly the width: a key, a signature, a sealed box, a nested record."""

    kind_name = "raw bytes"

    def decode(self, raw: Any, width: int, profile: Profile) -> bytes:
        return bytes(raw)

    def encode(self, value: Any, width: int, profile: Profile) -> bytes:
        if not isinstance(value, bytes):
            raise BadValueType(f"expected bytes, got {type(value).__name__}")
        if len(value) != width:
            raise BadValueType(f"expected exactly {width} bytes, got {len(value)}")
        return value

    def gen_decode(self, width: int, raw: str, dst: str, g: Gen) -> list[str]:
        return [f"{dst} = {raw}"]

    def gen_encode(self, width: int, val: str, dst: str, g: Gen) -> list[str]:
        return [f"if type({val}) is not bytes or len({val}) != {width}: raise ValueError", f"{dst} = {val}"]

    def gen_canonical(self, width: int, val: str, g: Gen) -> str:
        return val

    def describe(self, width: int) -> str:
        return f"{width} opaque bytes"
