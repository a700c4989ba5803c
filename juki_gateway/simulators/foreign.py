"""Foreign residents of the synthetic population: names as the register holds them, and 在留 items.

**Names.** The resident register holds a foreign resident's 氏名 in the Latin alphabet, as on the
在留カード (uppercase, family name first: ``SMITH JOHN``), optionally with a 通称. The 氏名 fields
of the layouts are double-byte text, which never holds ASCII (``docs/wire-format.md``,
"Conventions"), so the letters travel as their full-width forms (``ＳＭＩＴＨ　ＪＯＨＮ``, JIS X 0208
row 3, not 外字); the ふりがな is the katakana reading. Some hold a 通称 (drawn by
:mod:`.population`, carried in the 副本 only); 漢字併記 (a Chinese or Korean resident's name in
kanji beside the Latin one) is not carried.

**在留 items.** The 第30条の45 区分 says what kind of foreign resident a person is; a 中長期在留者
(区分 1) holds a 在留資格 with a 在留期間 and its expiry; a 特別永住者 (区分 2) holds no 在留資格 and
no 在留期間 (特別永住者 is not a 在留資格); a 永住者 has no 在留期間 either; a child born in Japan is
an 出生による経過滞在者 (区分 5) until a status is granted. :data:`PERIODS` lists the 在留期間
each 在留資格 may be granted for (出入国管理及び難民認定法施行規則 別表第二, the usual ones), and
:func:`incoherence` checks one resident's items against these rules (the tests use it).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

#: 第30条の45 区分 codes (the codec's ``foreign_resident_class`` table)
CHUCHOKI = "1"  # 中長期在留者
TOKUBETSU_EIJUSHA = "2"  # 特別永住者
SHUSSEI_KEIKA = "5"  # 出生による経過滞在者

#: 在留資格 codes (the codec's ``residence_status`` table)
EIJUSHA = "01"
NIHONJIN_HAIGUSHA = "02"
EIJUSHA_HAIGUSHA = "03"
TEIJUSHA = "04"
GIJINKOKU = "05"
RYUGAKU = "06"
GINO_JISSHU = "07"
TOKUTEI_GINO = "08"
KAZOKU_TAIZAI = "09"
KEIEI_KANRI = "10"
KODO_SENMON = "11"

#: 在留資格 → the 在留期間 (YYMM: years, months) it may be granted for; 永住者 has none.
PERIODS: dict[str, tuple[str, ...]] = {
    EIJUSHA: (),
    NIHONJIN_HAIGUSHA: ("0500", "0300", "0100", "0006"),
    EIJUSHA_HAIGUSHA: ("0500", "0300", "0100", "0006"),
    TEIJUSHA: ("0500", "0300", "0100", "0006"),
    GIJINKOKU: ("0500", "0300", "0100", "0003"),
    RYUGAKU: ("0403", "0400", "0303", "0300", "0203", "0200", "0103", "0100", "0006", "0003"),
    GINO_JISSHU: ("0200", "0100"),
    TOKUTEI_GINO: ("0100", "0006", "0004"),
    KAZOKU_TAIZAI: ("0500", "0403", "0400", "0303", "0300", "0203", "0200", "0103", "0100",
                    "0006", "0003"),
    KEIEI_KANRI: ("0500", "0300", "0100", "0006", "0004", "0003"),
    KODO_SENMON: ("0500",),
}

#: statuses whose holder may bring a spouse and children on 家族滞在
SPONSORS_KAZOKU_TAIZAI = frozenset({GIJINKOKU, RYUGAKU, KEIEI_KANRI, KODO_SENMON})
#: statuses whose holder may not bring family (技能実習, 特定技能 1号)
SINGLE_ONLY = frozenset({GINO_JISSHU, TOKUTEI_GINO})

#: 在留資格 → (youngest, oldest) age of a holder who heads a household
STATUS_AGES: dict[str | None, tuple[int, int]] = {
    None: (30, 95),  # 特別永住者
    EIJUSHA: (30, 85), NIHONJIN_HAIGUSHA: (25, 60), TEIJUSHA: (25, 65), GIJINKOKU: (23, 55),
    RYUGAKU: (19, 32), GINO_JISSHU: (19, 35), TOKUTEI_GINO: (20, 42), KEIEI_KANRI: (30, 65),
    KODO_SENMON: (28, 55),
}

#: nationality → 在留資格 of a household head → weight (None: 特別永住者); approximate.
STATUS_MIX: dict[str, dict[str | None, float]] = {
    "CHN": {EIJUSHA: 30, RYUGAKU: 25, GIJINKOKU: 20, GINO_JISSHU: 10, TEIJUSHA: 5,
            KEIEI_KANRI: 5, KODO_SENMON: 5},
    "VNM": {GINO_JISSHU: 35, TOKUTEI_GINO: 25, RYUGAKU: 15, GIJINKOKU: 20, EIJUSHA: 5},
    "KOR": {None: 45, EIJUSHA: 25, RYUGAKU: 15, GIJINKOKU: 15},
    "PHL": {EIJUSHA: 40, TEIJUSHA: 20, GINO_JISSHU: 25, TOKUTEI_GINO: 15},
    "IDN": {GINO_JISSHU: 45, TOKUTEI_GINO: 30, RYUGAKU: 15, GIJINKOKU: 10},
    "NPL": {RYUGAKU: 50, GIJINKOKU: 30, TOKUTEI_GINO: 20},
    "USA": {GIJINKOKU: 60, EIJUSHA: 25, KODO_SENMON: 15},
    "TWN": {EIJUSHA: 30, RYUGAKU: 35, GIJINKOKU: 35},
    "IND": {GIJINKOKU: 50, RYUGAKU: 25, KODO_SENMON: 25},
    "BRA": {TEIJUSHA: 50, EIJUSHA: 50},
    "GBR": {GIJINKOKU: 70, EIJUSHA: 30},
}


def household_sizes(status: str | None) -> dict[int, float]:
    """Persons → weight of households headed by a holder of ``status`` (the project's choice:
    trainees and 特定技能 live alone, students mostly alone, the others as families too)."""
    if status in SINGLE_ONLY:
        return {1: 1.0}
    if status == RYUGAKU:
        return {1: 0.85, 2: 0.1, 3: 0.05}
    return {1: 0.55, 2: 0.2, 3: 0.13, 4: 0.12}


def mean_household_size(nationality: str) -> float:
    """Mean persons per household headed by a resident of ``nationality``."""
    mix = STATUS_MIX[nationality]
    return sum(w * sum(k * p for k, p in household_sizes(st).items())
               / sum(household_sizes(st).values()) for st, w in mix.items()) / sum(mix.values())


def household_weights(nationalities: dict[str, float]) -> dict[str, float]:
    """Nationality → weight of drawing a household of it, so that *residents* (not
    households) follow the shares of ``nationalities``: each share is divided by the mean size
    of that nationality's households."""
    return {nat: share / mean_household_size(nat) for nat, share in nationalities.items()}


#: nationalities whose residents marry into Japanese households here (日本人の配偶者等) → weight
SPOUSE_NATIONALITIES: dict[str, float] = {"PHL": 30, "CHN": 30, "KOR": 20, "USA": 10, "BRA": 5,
                                          "GBR": 5}

Name = tuple[str, str]  # (Latin letters as the register holds them, katakana reading)

#: nationality → (family names, male given names, female given names), Latin and katakana.
#: Given names may hold a middle name (``VAN AN``); family names are one word.
NAMES: dict[str, tuple[tuple[Name, ...], tuple[Name, ...], tuple[Name, ...]]] = {
    "CHN": (
        (("WANG", "ワン"), ("LI", "リー"), ("ZHANG", "チャン"), ("LIU", "リュウ"), ("CHEN", "チェン"),
         ("YANG", "ヤン"), ("ZHAO", "チャオ"), ("HUANG", "ホアン")),
        (("WEI", "ウェイ"), ("HAO", "ハオ"), ("JIAN", "ジエン"), ("MING", "ミン"), ("YU", "ユー")),
        (("NA", "ナー"), ("JING", "ジン"), ("XIN", "シン"), ("YAN", "イエン"), ("LING", "リン")),
    ),
    "VNM": (
        (("NGUYEN", "グエン"), ("TRAN", "チャン"), ("LE", "レ"), ("PHAM", "ファム"),
         ("HOANG", "ホアン"), ("VU", "ヴー"), ("DANG", "ダン"), ("BUI", "ブイ")),
        (("VAN AN", "ヴァン　アン"), ("VAN HUNG", "ヴァン　フン"), ("MINH DUC", "ミン　ドゥック"),
         ("QUANG HUY", "クアン　フイ"), ("DUC THANH", "ドゥック　タイン")),
        (("THI LAN", "ティ　ラン"), ("THI HOA", "ティ　ホア"), ("THI MAI", "ティ　マイ"),
         ("NGOC ANH", "ゴック　アイン"), ("THU HA", "トゥ　ハー")),
    ),
    "KOR": (
        (("KIM", "キム"), ("LEE", "イ"), ("PARK", "パク"), ("CHOI", "チェ"), ("JUNG", "チョン"),
         ("KANG", "カン")),
        (("MINJUN", "ミンジュン"), ("JIHO", "ジホ"), ("SUNGHO", "ソンホ"), ("YONGSU", "ヨンス"),
         ("KWANGHO", "クァンホ")),
        (("SOYEON", "ソヨン"), ("JIYOUNG", "ジヨン"), ("MINJI", "ミンジ"), ("EUNJU", "ウンジュ"),
         ("YOUNGJA", "ヨンジャ")),
    ),
    "PHL": (
        (("SANTOS", "サントス"), ("REYES", "レイエス"), ("CRUZ", "クルス"), ("GARCIA", "ガルシア"),
         ("BAUTISTA", "バウティスタ")),
        (("JOSE", "ホセ"), ("MARK", "マーク"), ("JOHN PAUL", "ジョン　ポール")),
        (("MARIA", "マリア"), ("JOCELYN", "ジョセリン"), ("MARICEL", "マリセル"),
         ("ROSALIE", "ロザリー")),
    ),
    "IDN": (
        (("PRATAMA", "プラタマ"), ("SAPUTRA", "サプトラ"), ("WIJAYA", "ウィジャヤ"),
         ("HIDAYAT", "ヒダヤット")),
        (("AGUS", "アグス"), ("BUDI", "ブディ"), ("RIZKY", "リズキ")),
        (("DEWI", "デウィ"), ("SITI", "シティ"), ("PUTRI", "プトリ")),
    ),
    "NPL": (
        (("SHRESTHA", "シュレスタ"), ("GURUNG", "グルン"), ("TAMANG", "タマン"), ("RAI", "ライ"),
         ("THAPA", "タパ")),
        (("RAJESH", "ラジェシュ"), ("SANJAY", "サンジャイ"), ("BIKASH", "ビカス")),
        (("SITA", "シータ"), ("ANITA", "アニタ"), ("SARITA", "サリタ")),
    ),
    "USA": (
        (("SMITH", "スミス"), ("JOHNSON", "ジョンソン"), ("BROWN", "ブラウン"), ("MILLER", "ミラー"),
         ("DAVIS", "デイビス")),
        (("JOHN", "ジョン"), ("MICHAEL", "マイケル"), ("DAVID", "デイビッド"), ("JAMES", "ジェームズ")),
        (("EMILY", "エミリー"), ("SARAH", "サラ"), ("JESSICA", "ジェシカ")),
    ),
    "TWN": (
        (("CHEN", "チェン"), ("LIN", "リン"), ("HUANG", "ホアン"), ("CHANG", "チャン"), ("WU", "ウー")),
        (("CHIHAO", "チーハオ"), ("WEIMING", "ウェイミン"), ("CHENGEN", "チェンエン")),
        (("YUTING", "ユーティン"), ("HSINYI", "シンイー"), ("YAWEN", "ヤーウェン")),
    ),
    "IND": (
        (("SHARMA", "シャルマ"), ("PATEL", "パテル"), ("SINGH", "シン"), ("KUMAR", "クマール")),
        (("RAHUL", "ラフル"), ("AMIT", "アミット"), ("VIKRAM", "ヴィクラム")),
        (("PRIYA", "プリヤ"), ("NEHA", "ネハ"), ("ANJALI", "アンジャリ")),
    ),
    "BRA": (
        (("SILVA", "シルバ"), ("SANTOS", "サントス"), ("OLIVEIRA", "オリベイラ"), ("SOUZA", "ソウザ")),
        (("LUCAS", "ルーカス"), ("JOAO", "ジョアン"), ("RAFAEL", "ハファエル")),
        (("ANA", "アナ"), ("JULIANA", "ジュリアナ"), ("CAMILA", "カミラ")),
    ),
    "GBR": (
        (("TAYLOR", "テイラー"), ("WILSON", "ウィルソン"), ("EVANS", "エヴァンズ"),
         ("THOMAS", "トーマス")),
        (("OLIVER", "オリバー"), ("GEORGE", "ジョージ"), ("HARRY", "ハリー")),
        (("AMELIA", "アメリア"), ("EMMA", "エマ"), ("CHARLOTTE", "シャーロット")),
    ),
}

_FULLWIDTH_LATIN = str.maketrans(
    {**{chr(c): chr(c - 0x41 + 0xFF21) for c in range(0x41, 0x5B)}, " ": "\u3000"})


def register_name(family: str, given: str) -> str:
    """The 氏名 as the register holds it, in double-byte text: ``ＳＭＩＴＨ　ＪＯＨＮ``."""
    return f"{family} {given}".upper().translate(_FULLWIDTH_LATIN)


def family_name(name: str) -> str:
    """The family name of a register name (its first word)."""
    return name.split("\u3000")[0]


@dataclass(frozen=True, slots=True)
class ForeignStatus:
    """The 在留 items of a foreign resident (``None``: the item does not apply)."""

    nationality: str
    foreign_resident_class: str
    residence_status: str | None = None
    residence_period: str | None = None
    residence_expiry_date: str | None = None


def _months(period: str) -> int:
    return int(period[:2]) * 12 + int(period[2:])


def _add_months(day: dt.date, months: int) -> dt.date:
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    for d in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def expiry_bounds(period: str, as_of: dt.date) -> tuple[dt.date, dt.date]:
    """The earliest and latest 満了日 of a 在留期間 still running on ``as_of`` (granted on or
    before it, not yet expired)."""
    return as_of, _add_months(as_of, _months(period)) - dt.timedelta(days=1)


def status_with_period(rng: random.Random, nationality: str, status: str,
                       as_of: dt.date) -> ForeignStatus:
    """A 中長期在留者 holding ``status``: a period it may be granted for, granted on a day of
    the last period so it has not expired on ``as_of`` (永住者: no period, no expiry)."""
    periods = PERIODS[status]
    if not periods:
        return ForeignStatus(nationality, CHUCHOKI, status)
    period = rng.choice(periods)
    months = _months(period)
    granted_latest = as_of
    granted_earliest = _add_months(as_of, -months) + dt.timedelta(days=1)
    span = (granted_latest - granted_earliest).days
    granted = granted_earliest + dt.timedelta(days=rng.randint(0, span))
    expiry = _add_months(granted, months) - dt.timedelta(days=1)
    return ForeignStatus(nationality, CHUCHOKI, status, period, expiry.strftime("%Y%m%d"))


def special_permanent(nationality: str) -> ForeignStatus:
    """A 特別永住者: no 在留資格, no 在留期間, no expiry."""
    return ForeignStatus(nationality, TOKUBETSU_EIJUSHA)


def born_here(nationality: str) -> ForeignStatus:
    """A child born in Japan to foreign parents, before any status is granted (経過滞在者)."""
    return ForeignStatus(nationality, SHUSSEI_KEIKA)


def dependant_status(head_status: str | None) -> str | None:
    """The 在留資格 of a head's spouse or child living with them (None: 特別永住者 too)."""
    if head_status is None:
        return None
    if head_status in SPONSORS_KAZOKU_TAIZAI:
        return KAZOKU_TAIZAI
    if head_status == EIJUSHA:
        return EIJUSHA_HAIGUSHA
    return head_status  # 定住者: the family of a 定住者 is granted 定住者


def incoherence(f: ForeignStatus, as_of: dt.date) -> str | None:
    """Why ``f``'s 区分, 在留資格, 在留期間 and 満了日 do not fit together on ``as_of``, or None."""
    items = (f.residence_status, f.residence_period, f.residence_expiry_date)
    if f.foreign_resident_class in (TOKUBETSU_EIJUSHA, SHUSSEI_KEIKA):
        return None if items == (None, None, None) else "区分 2/5 with a 在留資格 or 在留期間"
    if f.foreign_resident_class != CHUCHOKI:
        return f"unexpected 区分 {f.foreign_resident_class}"
    if f.residence_status not in PERIODS:
        return f"中長期在留者 without a known 在留資格 ({f.residence_status})"
    periods = PERIODS[f.residence_status]
    if not periods:
        return None if items[1:] == (None, None) else "永住者 with a 在留期間 or expiry"
    if f.residence_period not in periods:
        return f"在留期間 {f.residence_period} not granted for 在留資格 {f.residence_status}"
    if f.residence_expiry_date is None:
        return "在留期間 without an expiry"
    expiry = dt.datetime.strptime(f.residence_expiry_date, "%Y%m%d").date()
    earliest, latest = expiry_bounds(f.residence_period, as_of)
    if not earliest <= expiry <= latest:
        return f"expiry {expiry} outside {earliest}..{latest} for 在留期間 {f.residence_period}"
    return None
