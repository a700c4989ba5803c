"""Body layouts of the Juki-net messages, as data: one table of fields per record kind.

Each field has a name (the glossary identifier), its Japanese item name, a kind, a width in
bytes and an optional check. Encoding, decoding, the offsets used by the fast key extraction
and the tables in ``docs/messages.md`` all derive from these tables. Kinds:

* ``digits``: ASCII digits, right-aligned with leading zeros for numbers, or all spaces for
  "not given" when the field is ``optional``;
* ``ascii``: printable ASCII padded with spaces;
* ``text``: UTF-16BE double-byte text padded with U+3000 (no character is ever dropped: text
  that does not fit is an error);
* ``bytes``: raw bytes of exactly the width.

Checks: ``kojin_bango``, ``juminhyo_code``, ``municipality_code`` (check digits), ``date``
(YYYYMMDD), ``sex`` and ``change_reason`` (code tables below).

The update-notification record here carries the items brief §3 lists for the notification; the
codec issue's full 本人確認情報 layout (36 items) can replace it without touching the links,
which treat records as opaque fixed-length bytes keyed by 住民票コード.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from juki_gateway.protocols.jukinet.errors import BadBody, BadCheckDigit
from juki_gateway.protocols.jukinet.numbers import (
    juminhyo_code_check_digit,
    kojin_bango_check_digit,
    municipality_code_check_digit,
    validate_juminhyo_code,
    validate_kojin_bango,
    validate_municipality_code,
)

Kind = Literal["digits", "ascii", "text", "bytes"]

SEX_CODES: Mapping[str, str] = {"1": "男", "2": "女", "0": "不明", "9": "適用不能"}

# 異動事由, grouped as 記載 (1x), 消除 (2x) and 修正 (3x).
CHANGE_REASONS: Mapping[str, str] = {
    "11": "国内転入",
    "12": "国外転入",
    "13": "出生",
    "19": "職権記載",
    "21": "国内転出",
    "22": "国外転出",
    "23": "死亡",
    "29": "職権消除",
    "31": "転居",
    "32": "職権修正",
    "33": "誤記修正",
    "34": "個人番号の変更請求",
    "35": "住民票コードの変更請求",
    "36": "世帯変更",
}

RECORD_STATUS: Mapping[str, str] = {"0": "現存", "1": "消除"}

_TEXT_PAD = "\u3000"


@dataclass(frozen=True, slots=True)
class BodyField:
    """One field of a body layout."""

    name: str
    jp: str
    kind: Kind
    width: int
    check: str | None = None
    optional: bool = False


@dataclass(frozen=True)
class BodyLayout:
    """A fixed-length record: an ordered table of fields."""

    name: str
    jp: str
    fields: tuple[BodyField, ...]
    offsets: Mapping[str, int] = field(init=False)
    size: int = field(init=False)

    def __post_init__(self) -> None:
        offsets: dict[str, int] = {}
        pos = 0
        for f in self.fields:
            offsets[f.name] = pos
            pos += f.width
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "size", pos)

    def slice_of(self, name: str) -> slice:
        """The byte range of one field (for fast key extraction without a full decode)."""
        start = self.offsets[name]
        width = next(f.width for f in self.fields if f.name == name)
        return slice(start, start + width)

    def encode(self, values: Mapping[str, object]) -> bytes:
        """Encode one record; every field must be given (optional ones may be empty)."""
        unknown = set(values) - set(self.offsets)
        if unknown:
            raise BadBody(f"{self.name}: unknown field(s) {sorted(unknown)}")
        parts: list[bytes] = []
        for f in self.fields:
            if f.name not in values:
                raise BadBody(f"{self.name}.{f.name}: missing")
            parts.append(_encode_field(self.name, f, values[f.name]))
        return b"".join(parts)

    def decode(self, data: bytes) -> dict[str, object]:
        """Decode and validate one record of exactly :attr:`size` bytes.

        The common case (well-formed digits and text) is handled inline; anything unusual
        goes through :func:`_decode_field`, which raises the specific error.
        """
        if len(data) != self.size:
            raise BadBody(f"{self.name}: record is {len(data)} bytes, layout needs {self.size}")
        out: dict[str, object] = {}
        pos = 0
        for f in self.fields:
            raw = data[pos : pos + f.width]
            kind = f.kind
            if kind == "digits" and raw.isdigit() and f.check in _FAST_CHECKS:
                text = raw.decode("ascii")
                if f.check is None or _FAST_CHECKS[f.check](text):
                    out[f.name] = text
                    pos += f.width
                    continue
            elif kind == "text":
                try:
                    out[f.name] = raw.decode("utf-16-be").rstrip(_TEXT_PAD)
                    pos += f.width
                    continue
                except UnicodeDecodeError:
                    pass
            out[f.name] = _decode_field(self.name, f, raw, pos)
            pos += f.width
        return out

    def decode_many(self, body: bytes) -> list[dict[str, object]]:
        """Decode a body holding a whole number of records."""
        if self.size == 0 or len(body) % self.size:
            raise BadBody(f"{self.name}: body of {len(body)} bytes is not whole records of {self.size}")
        return [self.decode(body[i : i + self.size]) for i in range(0, len(body), self.size)]


def _check(layout: str, f: BodyField, value: str, offset: int) -> None:
    where = f"{layout}.{f.name} at offset {offset}"
    try:
        if f.check == "kojin_bango":
            validate_kojin_bango(value)
        elif f.check == "juminhyo_code":
            validate_juminhyo_code(value)
        elif f.check == "municipality_code":
            validate_municipality_code(value)
        elif f.check == "date":
            try:
                dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
            except ValueError:
                raise BadBody(f"{where}: {value!r} is not a date (YYYYMMDD)") from None
        elif f.check == "sex":
            if value not in SEX_CODES:
                raise BadBody(f"{where}: unknown 性別 code {value!r}")
        elif f.check == "change_reason":
            if value not in CHANGE_REASONS:
                raise BadBody(f"{where}: unknown 異動事由 code {value!r}")
        elif f.check == "record_status":
            if value not in RECORD_STATUS:
                raise BadBody(f"{where}: unknown レコード状況 code {value!r}")
    except BadCheckDigit as exc:
        raise BadCheckDigit(f"{where}: {exc.message}") from None


def _encode_field(layout: str, f: BodyField, value: object) -> bytes:
    where = f"{layout}.{f.name}"
    if f.kind == "bytes":
        if not isinstance(value, bytes) or len(value) != f.width:
            raise BadBody(f"{where}: needs exactly {f.width} bytes")
        return value
    if isinstance(value, int) and not isinstance(value, bool) and f.kind == "digits":
        value = str(value).zfill(f.width)
    if not isinstance(value, str):
        raise BadBody(f"{where}: needs text, got {type(value).__name__}")
    if f.kind == "digits":
        if value == "" and f.optional:
            return b" " * f.width
        if len(value) != f.width or not value.isascii() or not value.isdigit():
            raise BadBody(f"{where}: needs {f.width} ASCII digits, got {value!r}")
        _check(layout, f, value, 0)
        return value.encode("ascii")
    if f.kind == "ascii":
        if not value.isascii() or not value.isprintable() or len(value) > f.width:
            raise BadBody(f"{where}: needs at most {f.width} printable ASCII characters")
        return value.ljust(f.width).encode("ascii")
    raw = value.encode("utf-16-be")
    if len(raw) > f.width:
        raise BadBody(f"{where}: {value!r} needs {len(raw)} bytes, the field holds {f.width}")
    if value.endswith(_TEXT_PAD):
        raise BadBody(f"{where}: text may not end with U+3000 (it is the padding)")
    return raw + _TEXT_PAD.encode("utf-16-be") * ((f.width - len(raw)) // 2)


def _decode_field(layout: str, f: BodyField, raw: bytes, offset: int) -> object:
    where = f"{layout}.{f.name} at offset {offset}"
    if f.kind == "bytes":
        return raw
    if f.kind == "text":
        try:
            return raw.decode("utf-16-be").rstrip(_TEXT_PAD)
        except UnicodeDecodeError:
            raise BadBody(f"{where}: not UTF-16BE text") from None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise BadBody(f"{where}: not ASCII") from None
    if f.kind == "ascii":
        if not text.isprintable():
            raise BadBody(f"{where}: not printable ASCII")
        return text.rstrip(" ")
    if f.optional and text == " " * f.width:
        return ""
    if not text.isdigit():
        raise BadBody(f"{where}: {text!r} is not {f.width} digits")
    _check(layout, f, text, offset)
    return text


def _fast_check_digit(check: Callable[[str], int]) -> Callable[[str], bool]:
    @functools.lru_cache(maxsize=1 << 16)
    def ok(v: str) -> bool:
        return check(v[:-1]) == ord(v[-1]) - 48

    return ok


@functools.lru_cache(maxsize=65536)
def _is_date(v: str) -> bool:
    try:
        dt.date(int(v[:4]), int(v[4:6]), int(v[6:8]))
    except ValueError:
        return False
    return True


_FAST_CHECKS: dict[str | None, Callable[[str], bool]] = {
    None: lambda v: True,
    "date": _is_date,
    "kojin_bango": _fast_check_digit(kojin_bango_check_digit),
    "juminhyo_code": _fast_check_digit(juminhyo_code_check_digit),
    "municipality_code": _fast_check_digit(municipality_code_check_digit),
    "sex": SEX_CODES.__contains__,
    "change_reason": CHANGE_REASONS.__contains__,
    "record_status": RECORD_STATUS.__contains__,
}


def _layout(name: str, jp: str, *fields: BodyField) -> BodyLayout:
    return BodyLayout(name, jp, fields)


F = BodyField

UPDATE_RECORD = _layout(
    "update_record",
    "本人確認情報(更新通知)",
    F("juminhyo_code", "住民票コード", "digits", 11, "juminhyo_code"),
    F("municipality_code", "市町村コード", "digits", 6, "municipality_code"),
    F("name_kanji", "漢字氏名", "text", 40),
    F("name_kana", "ふりがな氏名", "text", 60),
    F("birth_date", "生年月日", "digits", 8, "date"),
    F("sex", "性別", "digits", 1, "sex"),
    F("address", "住所", "text", 120),
    F("kojin_bango", "個人番号", "digits", 12, "kojin_bango", optional=True),
    F("change_reason", "異動事由", "digits", 2, "change_reason"),
    F("change_date", "異動年月日", "digits", 8, "date"),
    F("record_status", "レコード状況フラグ", "digits", 1, "record_status"),
)

SOUFUSAKI_RECORD = _layout(
    "soufusaki_record",
    "送付先情報(カード管理への送付)",
    F("soufusaki_no", "送付先管理番号", "ascii", 16),
    F("juminhyo_code", "住民票コード", "digits", 11, "juminhyo_code"),
    F("municipality_code", "市町村コード", "digits", 6, "municipality_code"),
    F("name_kanji", "氏名", "text", 40),
    F("postal_code", "送付先郵便番号", "digits", 7),
    F("address", "送付先住所", "text", 120),
    F("kojin_bango", "個人番号", "digits", 12, "kojin_bango"),
)

MOVE_IN_NOTICE = _layout(
    "move_in_notice",
    "転入通知",
    F("juminhyo_code", "住民票コード", "digits", 11, "juminhyo_code"),
    F("new_municipality_code", "転入先市町村コード", "digits", 6, "municipality_code"),
    F("old_municipality_code", "転出元市町村コード", "digits", 6, "municipality_code"),
    F("name_kanji", "漢字氏名", "text", 40),
    F("birth_date", "生年月日", "digits", 8, "date"),
    F("new_address", "転入先住所", "text", 120),
    F("move_in_date", "転入年月日", "digits", 8, "date"),
)

KOJIN_BANGO_REQUEST = _layout(
    "kojin_bango_request",
    "個人番号生成要求",
    F("juminhyo_code", "住民票コード", "digits", 11, "juminhyo_code"),
    F("municipality_code", "市町村コード", "digits", 6, "municipality_code"),
)

KOJIN_BANGO_RESPONSE = _layout(
    "kojin_bango_response",
    "個人番号生成応答",
    F("juminhyo_code", "住民票コード", "digits", 11, "juminhyo_code"),
    F("kojin_bango", "個人番号", "digits", 12, "kojin_bango"),
)

POOL_REQUEST = _layout(
    "pool_request",
    "住民票コード払出要求",
    F("municipality_code", "市町村コード", "digits", 6, "municipality_code"),
    F("count", "要求件数", "digits", 6),
)

POOL_ENTRY = _layout(
    "pool_entry",
    "未使用住民票コード",
    F("juminhyo_code", "住民票コード", "digits", 11, "juminhyo_code"),
)

SEARCH_REQUEST = _layout(
    "search_request",
    "本人確認情報検索要求",
    F("juminhyo_code", "住民票コード", "digits", 11, "juminhyo_code", optional=True),
    F("kojin_bango", "個人番号", "digits", 12, "kojin_bango", optional=True),
    F("name", "氏名(漢字又はかな)", "text", 60),
    F("birth_date", "生年月日", "digits", 8, "date", optional=True),
    F("address", "住所", "text", 120),
    F("sex", "性別", "digits", 1, "sex", optional=True),
)

CONSISTENCY_ENTRY = _layout(
    "consistency_entry",
    "整合性確認データ",
    F("juminhyo_code", "住民票コード", "digits", 11, "juminhyo_code"),
    F("digest", "レコード要約(BLAKE2b-128)", "bytes", 16),
)

CONSISTENCY_DIFF = _layout(
    "consistency_diff",
    "整合性確認結果",
    F("kind", "差異区分 (M: 相手に無し, E: CSに無し, D: 項目相違)", "ascii", 1),
    F("juminhyo_code", "住民票コード", "digits", 11, "juminhyo_code"),
    F("peer_record", "相手側の本人確認情報 (D, E のとき; M は 0x00)", "bytes", UPDATE_RECORD.size),
)

LAYOUTS: Mapping[str, BodyLayout] = {
    lay.name: lay
    for lay in (
        UPDATE_RECORD,
        SOUFUSAKI_RECORD,
        MOVE_IN_NOTICE,
        KOJIN_BANGO_REQUEST,
        KOJIN_BANGO_RESPONSE,
        POOL_REQUEST,
        POOL_ENTRY,
        SEARCH_REQUEST,
        CONSISTENCY_ENTRY,
        CONSISTENCY_DIFF,
    )
}
