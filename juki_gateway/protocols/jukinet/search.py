"""本人確認情報 search: the narrowness rule R3 and name/address matching, sans-IO.

A search names a 住民票コード or a 個人番号 (an identifier), or at least two of 氏名, 生年月日 and
住所; 性別 may narrow further but never counts (III(2)2 リスク1). Names match on 清音化かな (kana
with voicing marks removed and small kana enlarged, katakana folded to hiragana) and on 外字
substitutes (髙→高 …), so a query typed with either form finds the resident.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from juki_gateway.protocols.jukinet.errors import SearchTooBroad
from juki_gateway.protocols.jukinet.numbers import validate_juminhyo_code, validate_kojin_bango

# 外字 → 代替文字 (the substitution table of the Juki-net profile; the codec issue owns the full one).
SUBSTITUTES: Mapping[str, str] = {
    "髙": "高",
    "﨑": "崎",
    "𠮷": "吉",
    "德": "徳",
    "濵": "浜",
}

_SMALL_KANA = str.maketrans("ぁぃぅぇぉっゃゅょゎゕゖ", "あいうえおつやゆよわかけ")
_SPACES = str.maketrans("", "", " \u3000\t")


def substitute_gaiji(text: str) -> str:
    """Replace every 外字 that has a substitute by its 代替文字."""
    return "".join(SUBSTITUTES.get(ch, ch) for ch in text)


def seion_kana(text: str) -> str:
    """清音化かな: hiragana, without 濁点/半濁点, small kana enlarged, spaces removed."""
    text = unicodedata.normalize("NFKC", text)
    folded = []
    for ch in text:
        cp = ord(ch)
        if 0x30A1 <= cp <= 0x30F6:  # katakana → hiragana
            ch = chr(cp - 0x60)
        folded.append(ch)
    decomposed = unicodedata.normalize("NFD", "".join(folded))
    bare = "".join(ch for ch in decomposed if ch not in "\u3099\u309a")
    return unicodedata.normalize("NFC", bare).translate(_SMALL_KANA).translate(_SPACES)


@functools.lru_cache(maxsize=65536)
def normalize_name(text: str) -> str:
    """The form names are compared in: 外字 substituted, then 清音化かな folding, no spaces."""
    return seion_kana(substitute_gaiji(text))


def normalize_address(text: str) -> str:
    """The form addresses are compared in: NFKC, 外字 substituted, no spaces."""
    return substitute_gaiji(unicodedata.normalize("NFKC", text)).translate(_SPACES)


@dataclass(frozen=True, slots=True)
class SearchCriteria:
    """What a search asks for; empty strings mean "not given"."""

    juminhyo_code: str = ""
    kojin_bango: str = ""
    name: str = ""
    birth_date: str = ""
    address: str = ""
    sex: str = ""

    def basic_items(self) -> list[str]:
        """The basic items given that count towards R3 (sex never counts)."""
        return [
            label
            for label, value in (("氏名", self.name), ("生年月日", self.birth_date), ("住所", self.address))
            if value.strip()
        ]


def check_narrow(criteria: SearchCriteria) -> None:
    """Raise :class:`SearchTooBroad` unless the search is narrow enough under R3.

    Identifiers are validated (check digit) when given.
    """
    if criteria.juminhyo_code.strip():
        validate_juminhyo_code(criteria.juminhyo_code.strip())
        return
    if criteria.kojin_bango.strip():
        validate_kojin_bango(criteria.kojin_bango.strip())
        return
    items = criteria.basic_items()
    if len(items) < 2:
        given = "、".join(items) if items else "none"
        raise SearchTooBroad(
            "a 本人確認情報 search needs a 住民票コード or 個人番号, or at least two of "
            f"氏名/生年月日/住所 (性別 does not count); given: {given}"
        )


@dataclass(frozen=True, slots=True)
class Candidate:
    """The searchable items of one resident's current 本人確認情報."""

    juminhyo_code: str
    kojin_bango: str
    name_kanji: str
    name_kana: str
    birth_date: str
    sex: str
    address: str


def matches(criteria: SearchCriteria, c: Candidate) -> bool:
    """Whether a resident matches every item the search gives (call :func:`check_narrow` first)."""
    if criteria.juminhyo_code.strip() and criteria.juminhyo_code.strip() != c.juminhyo_code:
        return False
    if criteria.kojin_bango.strip() and criteria.kojin_bango.strip() != c.kojin_bango:
        return False
    if criteria.name.strip():
        want = normalize_name(criteria.name)
        if want not in (normalize_name(c.name_kanji), normalize_name(c.name_kana)):
            return False
    if criteria.birth_date.strip() and criteria.birth_date.strip() != c.birth_date:
        return False
    if criteria.address.strip():
        if not normalize_address(c.address).startswith(normalize_address(criteria.address)):
            return False
    return not (criteria.sex.strip() and criteria.sex.strip() != c.sex)
