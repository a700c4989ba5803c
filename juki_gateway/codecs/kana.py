"""Kana helpers: the allowed ふりがな characters and 清音化かな (devoiced kana).

清音化かな is the kana name with voicing marks removed (ガ→カ, パ→ハ, ヴ→ウ) and small kana
enlarged (ァ→ア, ッ→ツ, ャ→ヤ, ヵ→カ), used for searching. The translation table is built once at
import from Unicode decomposition, not per call.
"""

from __future__ import annotations

import re
import unicodedata

#: Characters a kana field may hold: full-width katakana, ー, ・ and the ideographic space.
KANA_CHARS = "".join(chr(c) for c in range(0x30A1, 0x30F7)) + "ー・\u3000"
KANA_BAD = re.compile("[^\u30a1-\u30f6\u30fc\u30fb\u3000]")

_SMALL_TO_LARGE = {
    "ァ": "ア", "ィ": "イ", "ゥ": "ウ", "ェ": "エ", "ォ": "オ", "ッ": "ツ",
    "ャ": "ヤ", "ュ": "ユ", "ョ": "ヨ", "ヮ": "ワ", "ヵ": "カ", "ヶ": "ケ",
}


def _build_seion_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for ch in KANA_CHARS:
        base = unicodedata.normalize("NFD", ch)[0]
        base = _SMALL_TO_LARGE.get(base, base)
        if base != ch:
            table[ord(ch)] = base
    return table


SEION_TABLE: dict[int, str] = _build_seion_table()


def seion_kana(kana: str) -> str:
    """清音化かな of a katakana string: voicing marks removed, small kana enlarged."""
    return kana.translate(SEION_TABLE)


def is_kana(text: str) -> bool:
    """True when ``text`` holds only characters allowed in a kana field."""
    return KANA_BAD.search(text) is None
