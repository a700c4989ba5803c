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

from juki_gateway.protocols.intermediate.errors import FukuhonFieldInvalid
from juki_gateway.protocols.intermediate.layout import Field, Layout

MASK_WIDTH = 16


@dataclass(frozen=True, slots=True)
class FukuhonItem:
    """One providable item: mask position (1-based), identifier, Japanese name, wire field."""

    no: int
    key: str
    name_ja: str
    field: Field
    pattern: str  # the item's format (R12), checked on import and on build


_DATE = r"(?:\d{8})?"
FUKUHON_ITEMS: tuple[FukuhonItem, ...] = (
    FukuhonItem(1, "setai_no", "世帯番号", Field("setai_no", 16, "ascii"), r"\d{0,16}"),
    FukuhonItem(2, "shimei", "氏名", Field("shimei", 80, "text"), r".{0,40}"),
    FukuhonItem(3, "seinengappi", "生年月日", Field("seinengappi", 8, "ascii"), _DATE),
    FukuhonItem(4, "seibetsu", "性別", Field("seibetsu", 1, "ascii"), r"[0129]?"),
    FukuhonItem(5, "zokugara", "続柄", Field("zokugara", 40, "text"), r".{0,20}"),
    FukuhonItem(6, "jusho", "住所", Field("jusho", 200, "text"), r".{0,100}"),
    FukuhonItem(7, "jumin_date", "住民となった年月日", Field("jumin_date", 8, "ascii"), _DATE),
    FukuhonItem(8, "setainushi", "世帯主情報", Field("setainushi", 80, "text"), r".{0,40}"),
    FukuhonItem(9, "jumin_kubun", "住民区分", Field("jumin_kubun", 1, "ascii"), r"[12]?"),
    FukuhonItem(10, "kokuseki", "国籍", Field("kokuseki", 40, "text"), r".{0,20}"),
    FukuhonItem(11, "zairyu_shikaku", "在留資格", Field("zairyu_shikaku", 40, "text"), r".{0,20}"),
    FukuhonItem(12, "zairyu_kikan", "在留期間", Field("zairyu_kikan", 20, "text"), r".{0,10}"),
    FukuhonItem(
        13, "zairyu_manryo", "在留期間の満了の日", Field("zairyu_manryo", 8, "ascii"), _DATE
    ),
    FukuhonItem(14, "ho30_45", "法30条の45規定区分", Field("ho30_45", 20, "text"), r".{0,10}"),
)
ITEM_KEYS: tuple[str, ...] = tuple(item.key for item in FUKUHON_ITEMS)
ITEMS_BY_KEY: dict[str, FukuhonItem] = {item.key: item for item in FUKUHON_ITEMS}
_PATTERNS = {item.key: re.compile(item.pattern, re.DOTALL) for item in FUKUHON_ITEMS}

#: The items of one person as carried inside an (encrypted) answer.
ANSWER_ITEMS_LAYOUT = Layout("answer-items", tuple(item.field for item in FUKUHON_ITEMS))


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


_BLANKS: dict[str, bytes] = {
    f.name: ANSWER_ITEMS_LAYOUT.encode(dict.fromkeys(ITEM_KEYS, ""))[
        ANSWER_ITEMS_LAYOUT.offsets[f.name] : ANSWER_ITEMS_LAYOUT.offsets[f.name] + f.width
    ]
    for f in ANSWER_ITEMS_LAYOUT.fields
}
_SPANS: tuple[tuple[str, int, int], ...] = tuple(
    (f.name, ANSWER_ITEMS_LAYOUT.offsets[f.name], ANSWER_ITEMS_LAYOUT.offsets[f.name] + f.width)
    for f in ANSWER_ITEMS_LAYOUT.fields
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
        record[start:end] if key in items else _BLANKS[key] for key, start, end in _SPANS
    )
