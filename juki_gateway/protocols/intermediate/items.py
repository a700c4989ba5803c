"""The 副本 (住民票関係情報) items the intermediate server can provide, as one table.

Each item has a number (its position in an item mask), an identifier, the Japanese name from
the brief's §4 and a wire field. A 副本 record is the values of all items for one
団体内統合宛名番号; an answer carries exactly the permitted items, the others blank, inside a
record of constant length (so the ciphertext length reveals nothing about which items).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from juki_gateway.codecs import codetables as ct
from juki_gateway.codecs.fields import Code, Date, Kind
from juki_gateway.codecs.schema import Field, Layout
from juki_gateway.codecs.textfields import AsciiToken, Utf16Text
from juki_gateway.protocols.intermediate.bodies import ImsBody
from juki_gateway.protocols.intermediate.errors import FukuhonFieldInvalid

MASK_WIDTH = 16


@dataclass(frozen=True, slots=True)
class FukuhonItem:
    """One providable item: its wire field (number = mask position) and its format (R12)."""

    field: Field
    pattern: str  # the item's format (R12), checked on import and on build

    @property
    def no(self) -> int:
        """The item's number: its 1-based position in an item mask."""
        return self.field.no

    @property
    def key(self) -> str:
        """The item's identifier."""
        return self.field.name

    @property
    def name_ja(self) -> str:
        """The item's Japanese name."""
        return self.field.label


def _item(no: int, key: str, name_ja: str, width: int, kind: Kind, pattern: str) -> FukuhonItem:
    # blank (not provided, or not asked for) is every item's empty form
    return FukuhonItem(Field(no, key, name_ja, width, kind, optional=True), pattern)


_DATE = r"(?:\d{8})?"
_TEXT = Utf16Text()
FUKUHON_ITEMS: tuple[FukuhonItem, ...] = (
    _item(1, "setai_no", "世帯番号", 16, AsciiToken("0-9", "ASCII digits"), r"\d{0,16}"),
    _item(2, "shimei", "氏名", 80, _TEXT, r".{0,40}"),
    _item(3, "seinengappi", "生年月日", 8, Date(), _DATE),
    _item(4, "seibetsu", "性別", 1, Code(ct.SEX), r"[0129]?"),
    _item(5, "zokugara", "続柄", 40, _TEXT, r".{0,20}"),
    _item(6, "jusho", "住所", 200, _TEXT, r".{0,100}"),
    _item(7, "jumin_date", "住民となった年月日", 8, Date(), _DATE),
    _item(8, "setainushi", "世帯主情報", 80, _TEXT, r".{0,40}"),
    _item(9, "jumin_kubun", "住民区分", 1, Code(ct.RESIDENT_CLASS), r"[12]?"),
    _item(10, "kokuseki", "国籍", 40, _TEXT, r".{0,20}"),
    _item(11, "zairyu_shikaku", "在留資格", 40, _TEXT, r".{0,20}"),
    _item(12, "zairyu_kikan", "在留期間", 20, _TEXT, r".{0,10}"),
    _item(13, "zairyu_manryo", "在留期間の満了の日", 8, Date(), _DATE),
    _item(14, "ho30_45", "法30条の45規定区分", 20, _TEXT, r".{0,10}"),
)
ITEM_KEYS: tuple[str, ...] = tuple(item.key for item in FUKUHON_ITEMS)
ITEMS_BY_KEY: dict[str, FukuhonItem] = {item.key: item for item in FUKUHON_ITEMS}
_PATTERNS = {item.key: re.compile(item.pattern, re.DOTALL) for item in FUKUHON_ITEMS}

#: The items of one person as carried inside an (encrypted) answer; blank items are None.
ANSWER_ITEMS_LAYOUT = ImsBody(Layout(
    "answer-items", "回答項目 (副本)", tuple(item.field for item in FUKUHON_ITEMS),
    "The 副本 items of one person inside a sealed answer: the permitted ones, the others blank.",
))


def items_to_mask(items: Iterable[str]) -> str:
    """The 16-character 0/1 mask naming ``items`` (unknown item keys are an error)."""
    bits = ["0"] * MASK_WIDTH
    for key in items:
        item = ITEMS_BY_KEY.get(key)
        if item is None:
            raise FukuhonFieldInvalid(f"unknown 副本 item {key!r}")
        bits[item.no - 1] = "1"
    return "".join(bits)


def mask_to_items(mask: str) -> frozenset[str]:
    """The item keys named by a mask; bits for no item are an error."""
    if len(mask) != MASK_WIDTH or set(mask) - {"0", "1"}:
        raise FukuhonFieldInvalid(f"item mask {mask!r} is not {MASK_WIDTH} characters of 0/1")
    keys: set[str] = set()
    for pos, bit in enumerate(mask, start=1):
        if bit == "1":
            if pos > len(FUKUHON_ITEMS):
                raise FukuhonFieldInvalid(f"item mask {mask!r} sets bit {pos}, which is no item")
            keys.add(FUKUHON_ITEMS[pos - 1].key)
    return frozenset(keys)


def check_fukuhon_values(values: Mapping[str, str]) -> dict[str, str]:
    """The full, format-checked item values of a 副本 record (missing items are blank)."""
    unknown = set(values) - set(ITEM_KEYS)
    if unknown:
        raise FukuhonFieldInvalid(f"unknown 副本 items: {', '.join(sorted(unknown))}")
    checked: dict[str, str] = {}
    for key in ITEM_KEYS:
        value = values.get(key, "")
        if not isinstance(value, str) or not _PATTERNS[key].fullmatch(value):
            raise FukuhonFieldInvalid(
                f"副本 item {key} ({ITEMS_BY_KEY[key].name_ja}) has an invalid value {value!r}"
            )
        checked[key] = value
    return checked


def select_items(fukuhon: Mapping[str, str], items: Iterable[str]) -> dict[str, str]:
    """Exactly ``items`` of a 副本 record; every other item blank."""
    wanted = set(items)
    return {key: (fukuhon.get(key, "") if key in wanted else "") for key in ITEM_KEYS}


_BLANK_RECORD = ANSWER_ITEMS_LAYOUT.encode({})
_SPANS: tuple[tuple[str, slice], ...] = tuple(
    (key, ANSWER_ITEMS_LAYOUT.span(key)) for key in ITEM_KEYS
)


def mask_record(record: bytes, items: frozenset[str]) -> bytes:
    """An answer-items record keeping only ``items``, the others blank, by byte slicing.

    ``record`` must be a valid answer-items record (as stored after import); the result equals
    ``ANSWER_ITEMS_LAYOUT.encode(select_items(decode(record), items))`` (a test pins this).
    """
    if len(record) != ANSWER_ITEMS_LAYOUT.length:
        raise FukuhonFieldInvalid(
            f"副本 record is {len(record)} bytes, not {ANSWER_ITEMS_LAYOUT.length}"
        )
    return b"".join(
        (record if key in items else _BLANK_RECORD)[span] for key, span in _SPANS
    )
