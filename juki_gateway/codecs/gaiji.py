"""外字 (out-of-set characters) per link profile, and the 代替文字 substitution table.

Wire text is UTF-16BE, so no character is ever lost; what counts as 外字 depends on the link:

- ``jukinet`` (Juki-net links): every character outside JIS X 0208;
- ``intermediate`` (intermediate-server links): every character outside JIS X 0213:2004.

The character sets are built once at import by decoding every code point of the standard with
Python's own codecs (``iso2022_jp`` is exactly JIS X 0208 in its kanji mode, ``euc_jis_2004`` is
JIS X 0213), and turned into one compiled regular expression per profile that finds the 外字 of
a string, so a lookup is one C-level scan.

A 外字 with an entry in :data:`SUBSTITUTES` is replaced by its substitute in the 代替文字 items;
one without stays as is, is counted, and is flagged. Nothing is ever replaced by '?'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


def _jis_x0208() -> frozenset[str]:
    chars: set[str] = set()
    for row in range(0x21, 0x7F):
        for cell in range(0x21, 0x7F):
            try:
                text = (b"\x1b$B" + bytes((row, cell))).decode("iso2022_jp")
            except UnicodeDecodeError:
                continue
            if len(text) == 1:
                chars.add(text)
    return frozenset(chars)


def _jis_x0213() -> frozenset[str]:
    chars: set[str] = set()
    for plane in (b"", b"\x8f"):
        for row in range(0xA1, 0xFF):
            for cell in range(0xA1, 0xFF):
                try:
                    text = (plane + bytes((row, cell))).decode("euc_jis_2004")
                except UnicodeDecodeError:
                    continue
                if len(text) == 1:
                    chars.add(text)
    return frozenset(chars)


def _complement_regex(chars: frozenset[str]) -> re.Pattern[str]:
    """A regex matching any character NOT in ``chars`` (built from merged code-point ranges)."""
    points = sorted(ord(c) for c in chars)
    ranges: list[tuple[int, int]] = []
    for p in points:
        if ranges and ranges[-1][1] == p - 1:
            ranges[-1] = (ranges[-1][0], p)
        else:
            ranges.append((p, p))
    parts = []
    for lo, hi in ranges:
        parts.append(re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}")
    return re.compile("[^" + "".join(parts) + "]")


#: Characters never allowed in double-byte wire text: ASCII and C0/C1 controls (names are
#: full-width), line separators, the BOM, half-width katakana and forms, and the specials block.
TEXT_BAD = re.compile("[\x00-\x9f\u2028\u2029\ufeff\uff61-\uffef\ufff0-\uffff]")

JIS_X0208: frozenset[str] = _jis_x0208()
JIS_X0213: frozenset[str] = _jis_x0213()

#: The project's substitution table: 外字 → the usual JIS X 0208 form (異体字 → 通用字体).
SUBSTITUTES: dict[str, str] = {
    "\u9ad9": "高",  # 髙 はしごだか
    "\ufa11": "崎",  # 﨑 たつさき
    "\U00020bb7": "吉",  # 𠮷 つちよし
    "\u5fb7": "徳",  # 德
    "\u6ff5": "浜",  # 濵
    "\ufa14": "欅",  # 﨔
    "\U0002123d": "土",  # 𡈽
    "\u9ed1": "黒",  # 黑
    "\u6a6b": "横",  # 橫
    "\u9751": "青",  # 靑
    "\uf9dc": "隆",  # CJK compatibility form of 隆
    "\ufa10": "塚",  # CJK compatibility form of 塚
    "\ufa19": "神",  # CJK compatibility form of 神
    "\ufa1a": "祥",  # CJK compatibility form of 祥
    "\ufa1b": "福",  # CJK compatibility form of 福
}


@dataclass(frozen=True, slots=True)
class Profile:
    """A link profile: which character set the link's peer can display without 外字 handling."""

    name: str
    charset: str
    chars: frozenset[str]
    gaiji_re: re.Pattern[str]
    #: matches any character that is 外字 or not allowed at all: one scan clears the common case
    unusual_re: re.Pattern[str]

    def is_gaiji(self, ch: str) -> bool:
        """True when ``ch`` is outside this profile's character set."""
        return ch not in self.chars

    def gaiji_count(self, text: str | None) -> int:
        """How many 外字 ``text`` holds (0 for an empty field)."""
        return len(self.gaiji_re.findall(text)) if text else 0

    def substitute(self, text: str | None) -> tuple[str | None, list[int], int]:
        """(代替文字 text, 1-based positions substituted, 外字 left without a substitute)."""
        if not text or self.gaiji_re.search(text) is None:
            return text, [], 0
        out = text.translate(self.substitutes)  # one code point for one: positions line up
        positions = [i for i, (a, b) in enumerate(zip(text, out, strict=True), 1) if a != b] if out != text else []
        return out, positions, len(self.gaiji_re.findall(text)) - len(positions)

    @property
    def substitutes(self) -> dict[int, str]:
        """The substitution table restricted to this profile's 外字 (str.translate form)."""
        return _SUB_TABLES[self.name]


def _profile(name: str, charset: str, chars: frozenset[str]) -> Profile:
    clean = frozenset(c for c in chars if not TEXT_BAD.match(c))
    return Profile(name, charset, chars, _complement_regex(chars), _complement_regex(clean))


JUKINET = _profile("jukinet", "JIS X 0208", JIS_X0208)
INTERMEDIATE = _profile("intermediate", "JIS X 0213", JIS_X0213)
_SUB_TABLES: dict[str, dict[int, str]] = {
    p.name: {ord(k): v for k, v in SUBSTITUTES.items() if k not in p.chars} for p in (JUKINET, INTERMEDIATE)
}

PROFILES: dict[str, Profile] = {p.name: p for p in (JUKINET, INTERMEDIATE)}
