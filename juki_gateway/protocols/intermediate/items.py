"""The 副本 (住民票関係情報) items the intermediate server can provide, as one table.

Each item has a number (its position in an item mask), an identifier, the Japanese name from
the brief's §4 and a wire field whose width and kind are those of the item's field in the
``fukuhon-juminhyo`` record (:attr:`FukuhonItem.codec_field`), so an item is carried the same
way on registration and in an answer. A 副本 record is the values of all items for one
団体内統合宛名番号; an answer carries exactly the permitted items, the others blank, inside a
record of constant length (so the ciphertext length reveals nothing about which items).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from juki_gateway.codecs.layouts import FUKUHON_JUMINHYO, SETAI_NO_WIDTH
from juki_gateway.codecs.schema import Field, Layout
from juki_gateway.protocols.intermediate.bodies import ImsBody
from juki_gateway.protocols.intermediate.errors import FukuhonFieldInvalid

MASK_WIDTH = 16


@dataclass(frozen=True, slots=True)
class FukuhonItem:
    """One providable item: its wire field (number = mask position) and its format (R12)."""

    field: Field
    pattern: str  # the item's format (R12), checked on import and on build
    codec_field: str  # the field of the ``fukuhon-juminhyo`` record that carries it

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


#: The 副本 record layout's fields, by identifier: every answer item is one of them.
_FUKUHON_FIELDS: dict[str, Field] = {f.name: f for f in FUKUHON_JUMINHYO.fields}


def _item(no: int, key: str, name_ja: str, codec_field: str, pattern: str) -> FukuhonItem:
    # the width and kind are the 副本 record's own (one width per item across layouts);
    # blank (not provided, or not asked for) is every item's empty form
    source = _FUKUHON_FIELDS[codec_field]
    return FukuhonItem(Field(no, key, name_ja, source.width, source.kind, optional=True),
                       pattern, codec_field)


_DATE = r"(?:\d{8})?"
FUKUHON_ITEMS: tuple[FukuhonItem, ...] = (
    _item(1, "setai_no", "世帯番号", "setai_no", rf"(?:\d{{{SETAI_NO_WIDTH}}})?"),
    _item(2, "shimei", "氏名", "kanji_name", r".{0,40}"),
    _item(3, "seinengappi", "生年月日", "birth_date", _DATE),
    _item(4, "seibetsu", "性別", "sex", r"[0129]?"),
    _item(5, "zokugara", "続柄", "relationship", r"(?:\d{8})?"),
    _item(6, "jusho", "住所", "address", r".{0,100}"),
    _item(7, "jumin_date", "住民となった年月日", "resident_since", _DATE),
    _item(8, "setainushi", "世帯主情報", "householder_name", r".{0,40}"),
    _item(9, "jumin_kubun", "住民区分", "resident_class", r"[12]?"),
    _item(10, "kokuseki", "国籍", "nationality", r"(?:[A-Z]{3})?"),
    _item(11, "zairyu_shikaku", "在留資格", "residence_status", r"(?:\d{2})?"),
    _item(12, "zairyu_kikan", "在留期間", "residence_period", r"(?:\d{4})?"),
    _item(13, "zairyu_manryo", "在留期間の満了の日", "residence_expiry_date", _DATE),
    _item(14, "ho30_45", "法30条の45規定区分", "foreign_resident_class", r"[1-6]?"),
    _item(15, "tsusho", "通称", "alias_name", r".{0,40}"),
    _item(16, "kyuuji", "旧氏", "former_surname", r".{0,20}"),
)
ITEM_KEYS: tuple[str, ...] = tuple(item.key for item in FUKUHON_ITEMS)
ITEMS_BY_KEY: dict[str, FukuhonItem] = {item.key: item for item in FUKUHON_ITEMS}
_PATTERNS = {item.key: re.compile(item.pattern, re.DOTALL) for item in FUKUHON_ITEMS}

#: The items of one person as carried inside an (encrypted) answer; blank items are None.
ANSWER_ITEMS_LAYOUT = ImsBody(Layout(
    "answer-items", "回答項目 (副本)", tuple(item.field for item in FUKUHON_ITEMS),
    "The 副本 items of one person inside a sealed answer: the permitted ones, the others blank.",
))

#: (layout, field) -> the item it carries, where the identifiers differ: each answer item is the
#: ``fukuhon-juminhyo`` field it is built from (docs/wire-format.md, "One width per item").
ITEM_ALIASES: dict[tuple[str, str], str] = {
    (ANSWER_ITEMS_LAYOUT.name, item.key): item.codec_field for item in FUKUHON_ITEMS
}


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
