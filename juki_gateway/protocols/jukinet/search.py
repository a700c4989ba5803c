"""本人確認情報 search: the narrowness rule R3, name/address matching and the answer, sans-IO.

A search names a 住民票コード or a 個人番号 (an identifier, check digit validated), or 氏名 plus
one more basic item: 生年月日, or a 住所 that names at least a 市区町村 (:func:`split_address`).
性別 may narrow further but never counts (III(2)2 リスク1): with 氏名 always required, the file
cannot be read date by date or street by street. Names match on 清音化かな (kana with voicing marks
removed and small kana enlarged, katakana folded to hiragana) and on 外字 substitutes (髙→高 …),
so a query typed with either form finds the resident; addresses match 市区町村 for 市区町村
(:func:`address_matches`). An answer carries the first matches by 住民票コード, at most the
answering node's search limit, with the count of all matches and a truncation flag
(:func:`first_hits`, :func:`encode_search_answer`, :func:`decode_search_answer`).
docs/messages.md ("Search (R3)") states the same rules for peers; it is rendered from the
constants below and runs its examples through these functions.
"""

from __future__ import annotations

import functools
import heapq
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from juki_gateway.protocols.jukinet.errors import BadBody, SearchTooBroad
from juki_gateway.protocols.jukinet.layouts import (
    HONNIN_KAKUNIN,
    SEARCH_HIT,
    decode_bodies,
    decode_body,
    encode_body,
)
from juki_gateway.protocols.jukinet.numbers import validate_juminhyo_code, validate_kojin_bango

#: The records one search answer carries unless the node is configured otherwise
#: (``[jukinet.<endpoint>] search_limit``), and the most it may be configured to (a peer refuses
#: a SEARCH_RESPONSE frame declaring more records than this from its header).
DEFAULT_SEARCH_LIMIT = 100
MAX_SEARCH_LIMIT = 1000

# 外字 → 代替文字 (the substitution table of the Juki-net profile; the codec issue owns the full one).
SUBSTITUTES: Mapping[str, str] = {
    "髙": "高",
    "﨑": "崎",
    "𠮷": "吉",
    "德": "徳",
    "濵": "浜",
}

#: The 47 prefectures in 都道府県コード order (JIS X 0401: 01 北海道 … 17 石川県 … 47 沖縄県). An
#: address may begin with one of them, written exactly so; no name is a prefix of another.
PREFECTURES: tuple[str, ...] = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県", "栃木県",
    "群馬県", "埼玉県", "千葉県", "東京都", "神奈川県", "新潟県", "富山県", "石川県", "福井県",
    "山梨県", "長野県", "岐阜県", "静岡県", "愛知県", "三重県", "滋賀県", "京都府", "大阪府",
    "兵庫県", "奈良県", "和歌山県", "鳥取県", "島根県", "岡山県", "広島県", "山口県", "徳島県",
    "香川県", "愛媛県", "高知県", "福岡県", "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県",
    "鹿児島県", "沖縄県",
)
#: the characters that end a 市区町村 name, those that end a town or village of a 郡, the 郡 mark,
#: and those that end a city or ward (a text before a 郡 holding one is not a 郡 name)
MUNICIPALITY_ENDS = "市区町村"
DISTRICT_TOWN_ENDS = "町村"
DISTRICT = "郡"
NOT_IN_DISTRICT_NAME = "市区町"

#: the rule in one line, quoted by every refusal
SEARCH_RULE = "R3: 住民票コード or 個人番号, or 氏名 plus 生年月日 or a 住所 naming a 市区町村; 性別 does not count"

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


# -- addresses --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddressParts:
    """A normalized address cut at its prefecture and its 市区町村 (see :func:`split_address`).

    ``local`` is the text after the prefecture; ``municipality`` the key addresses are compared
    on: the 市区町村 name with its suffix (for a town or village of a 郡, without the 郡 name, which
    an address may leave out), empty when the address names none; ``rest`` what follows it
    (町名, 番地 …).
    """

    prefecture: str
    local: str
    municipality: str = ""
    rest: str = ""


def _first_end(text: str, start: int) -> int:
    """The index of the first 市区町村 suffix character at or after ``start``, or -1."""
    return next((i for i in range(start, len(text)) if text[i] in MUNICIPALITY_ENDS), -1)


def _municipality(text: str) -> tuple[str, str] | None:
    """(municipality key, rest) of an address without its prefecture, or None."""
    g = text.find(DISTRICT, 1)
    if g > 0 and not any(ch in NOT_IN_DISTRICT_NAME for ch in text[:g]):
        # a 郡 (河北郡, 西村山郡 …): a town or village of at least one character must follow
        k = _first_end(text, g + 2)
        if k < 0:
            return None  # a 郡 without a whole town or village names no 市区町村
        if text[k] in DISTRICT_TOWN_ENDS:
            return text[g + 1:k + 1], text[k + 1:]
        # a 市 or 区 follows: the 郡 was part of a city's name (大和郡山市)
    k = _first_end(text, 1)  # at least one character before the suffix (市川市, 町田市)
    return None if k < 0 else (text[:k + 1], text[k + 1:])


@functools.lru_cache(maxsize=65536)
def split_address(text: str) -> AddressParts:
    """Cut an address at its prefecture and its 市区町村 (the R3 address rule).

    After :func:`normalize_address` (NFKC, 外字 substitutes, no spaces): an optional prefecture,
    one of :data:`PREFECTURES` written in full; then the 市区町村: either a 郡 name (one or more
    characters, none of 市区町, then 郡) followed by a town or village (one or more characters up
    to the first 町 or 村, with no 市 or 区 between), or otherwise one or more characters up to the
    first 市, 区, 町 or 村 after the first character. Anything after that is the rest.
    """
    t = normalize_address(text)
    prefecture = next((p for p in PREFECTURES if t.startswith(p)), "")
    t = t[len(prefecture):]
    cut = _municipality(t)
    return AddressParts(prefecture, t, *cut) if cut else AddressParts(prefecture, t)


def names_municipality(address: str) -> bool:
    """Whether an address names at least a 市区町村, so that it counts towards R3."""
    return bool(split_address(address).municipality)


def address_matches(query: str, address: str) -> bool:
    """Whether a resident's 住所 lies within the 住所 a search gives.

    Prefectures, when both name one, are the same; when both name a 市区町村, it is the same one
    and the query's rest begins the resident's rest; otherwise the query's text after its
    prefecture begins the resident's (such a query only narrows a search R3 found narrow by
    氏名+生年月日).
    """
    q, a = split_address(query), split_address(address)
    if q.prefecture and a.prefecture and q.prefecture != a.prefecture:
        return False
    if q.municipality and a.municipality:
        return q.municipality == a.municipality and a.rest.startswith(q.rest)
    return a.local.startswith(q.local)


# -- the rule ---------------------------------------------------------------------------------------


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
        """The basic items given that count towards R3 (性別 never counts; a 住所 only when it
        names a 市区町村)."""
        return [
            label
            for label, given in (
                ("氏名", bool(normalize_name(self.name))),
                ("生年月日", bool(self.birth_date.strip())),
                ("住所", names_municipality(self.address)),
            )
            if given
        ]


def check_narrow(criteria: SearchCriteria) -> None:
    """Raise :class:`SearchTooBroad` unless the search is narrow enough under R3.

    Identifiers are validated (check digit) when given; a search naming one is narrow. The
    refusal says which item is missing, never what was given (the peer knows; logs get the code).
    """
    identifiers = False
    if criteria.juminhyo_code.strip():
        validate_juminhyo_code(criteria.juminhyo_code.strip())
        identifiers = True
    if criteria.kojin_bango.strip():
        validate_kojin_bango(criteria.kojin_bango.strip())
        identifiers = True
    if identifiers:
        return
    items = criteria.basic_items()
    if "氏名" in items and len(items) >= 2:
        return
    # what is missing comes first: an ERROR detail holds 200 bytes of UTF-8
    if "氏名" not in items:
        missing = "氏名 is missing"
    elif criteria.address.strip():
        missing = "生年月日 is missing and the 住所 names no 市区町村"
    else:
        missing = "生年月日 or 住所 is missing"
    raise SearchTooBroad(f"{missing} ({SEARCH_RULE})")


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
    if criteria.address.strip() and not address_matches(criteria.address, c.address):
        return False
    return not (criteria.sex.strip() and criteria.sex.strip() != c.sex)


# -- the answer -------------------------------------------------------------------------------------


def first_hits(hits: Iterable[tuple[str, bytes]], limit: int) -> tuple[int, list[bytes]]:
    """(how many hits there are, the records of the ``limit`` hits with the smallest
    住民票コード, ascending) from (住民票コード, record) pairs, holding ``limit`` at a time."""
    total = 0

    def counted() -> Iterator[tuple[str, bytes]]:
        nonlocal total
        for hit in hits:
            total += 1
            yield hit

    best = heapq.nsmallest(limit, counted(), key=lambda hit: hit[0])
    return total, [record for _, record in best]


@dataclass(frozen=True, slots=True)
class SearchAnswer:
    """A decoded SEARCH_RESPONSE: the records carried, how many matched, whether it was cut."""

    records: list[dict[str, Any]]
    total: int
    truncated: bool


def encode_search_answer(total: int, records: list[bytes]) -> bytes:
    """The body of a SEARCH_RESPONSE: one ``search-hit`` per record (none when nothing matched)."""
    flag = "1" if total > len(records) else "0"
    return b"".join(encode_body(SEARCH_HIT, {"total": total, "truncated": flag, "record": r})
                    for r in records)


def decode_search_answer(body: bytes) -> SearchAnswer:
    """Decode and check a SEARCH_RESPONSE body; an inconsistent one is :class:`BadBody`."""
    hits = decode_bodies(SEARCH_HIT, body) if body else []
    if not hits:
        return SearchAnswer([], 0, False)
    total, flag = hits[0]["total"], hits[0]["truncated"]
    if any(h["total"] != total or h["truncated"] != flag for h in hits):
        raise BadBody("search-hit: total and truncated differ between the records of one answer")
    if total < len(hits) or (flag == "1") != (total > len(hits)):
        raise BadBody(f"search-hit: total {total} and truncated {flag} do not fit an answer of "
                      f"{len(hits)} records")
    return SearchAnswer([decode_body(HONNIN_KAKUNIN, h["record"]) for h in hits], int(total),
                        flag == "1")
