"""The seeded synthetic population of Kanazawa (市町村コード 172014) that the simulators drive.

Residents live in households drawn to match Kanazawa's published figures (:mod:`.kanazawa`,
``docs/population.md``): one-person households about 40 %, the age structure of the 2020
census up to 105, foreign residents about 1.3 %. Ages within a household fit together (children
with parents of a plausible age, elderly couples, an elderly parent living with a middle-aged
child, three generations). The age of a person whose age does not follow from another member's
(a single person, the older partner of a couple, a family's eldest child, a foreign household's
head) is drawn by quota: each age band is weighted by how far it is below its share so far,
times how plausible the age is for that role, so the bands track the table at any size.

Names and kana come from faker's ``ja_JP`` locale; a documented share of surnames hold 外字,
some with a substitute in :data:`~juki_gateway.codecs.gaiji.SUBSTITUTES` and some without (so
代替文字変換結果 2 occurs). Foreign residents carry their Latin-alphabet names and coherent 在留
items (:mod:`.foreign`). Addresses use real 町名 with their real 丁目 (:data:`.kanazawa.TOWNS`).
Every 住民票コード and 個人番号 is drawn with the codec's check-digit helpers, so each record
encodes with the codec's layouts (``honnin-kakunin``, ``soufusaki``, ``fukuhon-juminhyo``).
The same seed gives the same population, byte for byte: nothing here reads the clock (dates
are relative to the ``as_of`` date the caller passes).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from juki_gateway.codecs.checkdigits import generate_juminhyo_code, generate_kojin_bango
from juki_gateway.extras import require
from juki_gateway.simulators import foreign as fr
from juki_gateway.simulators.foreign import ForeignStatus
from juki_gateway.simulators.kanazawa import (
    AGE_BANDS,
    FOREIGN_SHARE,
    HOUSEHOLD_SIZES,
    NATIONALITIES,
    OLDEST,
    TOWNS,
    Town,
)
from juki_gateway.simulators.residents import KANAZAWA, Resident, age_on

if TYPE_CHECKING:  # faker is the 'sim' extra: imported when a population first draws a name
    from faker import Faker

__all__ = ["GAIJI_SURNAMES", "KANAZAWA", "KANAZAWA_PLACE", "ForeignStatus", "Place", "Population",
           "Resident", "age_on", "build_population", "fullwidth"]

#: Share of foreign residents aged 16 or more holding a 通称: (others, 特別永住者). The
#: project's assumption (no public figure was at hand): 通称 are common among 特別永住者.
TSUSHO_SHARE: tuple[float, float] = (0.05, 0.5)
TSUSHO_SURNAMES: tuple[str, ...] = ("金本", "新井", "木村", "松本", "山本", "金田", "安田", "岩本")
#: Share of Japanese wives (妻, 子の妻) with a 旧氏 on the 住民票: the project's assumption.
KYUUJI_SHARE = 0.05
#: 旧氏 drawn: common ones, one with a substitutable 外字 (髙) and one without (栁)
KYUUJI_SURNAMES: tuple[str, ...] = ("佐藤", "鈴木", "中村", "田中", "髙田", "栁田")

KANAZAWA_NAME = "金沢市"
PREFECTURE_NAME = "石川県"


@dataclass(frozen=True, slots=True)
class Place:
    """The municipality a population lives in: its 市町村コード, the names its addresses start
    with, the 町名 they use and the first two digits of its postal codes."""

    lg_code: str
    prefecture: str
    municipality: str
    towns: tuple[Town, ...]
    postal_prefix: str


#: 金沢市, with its real 町名 (:data:`.kanazawa.TOWNS`): the default place of a population
KANAZAWA_PLACE = Place(KANAZAWA, PREFECTURE_NAME, KANAZAWA_NAME, TOWNS, "92")
#: 町名 for the addresses of a municipality other than 金沢市: common names, not checked
#: against that municipality's own list (docs/population.md)
GENERIC_TOWNS: tuple[Town, ...] = (
    Town("本町", 3), Town("中央", 2), Town("新町"), Town("栄町", 2), Town("緑町"), Town("旭町", 3),
    Town("幸町"), Town("桜町"), Town("東町", 2), Town("西町"), Town("南町"), Town("北町", 2),
)

#: 外字 surnames (kanji, kana) as the register holds them. The first have a substitute in the
#: codec's SUBSTITUTES table (髙→高, 﨑→崎, 𠮷→吉 …); the last have none (栁, 槗, 𣘺, 桒, 杦, 淸 are
#: outside JIS X 0208 and not in the table), so their 送付先情報 says 代替文字変換結果 2.
GAIJI_SURNAMES_SUBSTITUTED: tuple[tuple[str, str], ...] = (
    ("髙橋", "タカハシ"), ("髙田", "タカダ"), ("髙木", "タカギ"), ("山﨑", "ヤマザキ"),
    ("宮﨑", "ミヤザキ"), ("𠮷田", "ヨシダ"), ("𠮷川", "ヨシカワ"), ("德永", "トクナガ"),
    ("濵田", "ハマダ"), ("黑田", "クロダ"), ("橫山", "ヨコヤマ"), ("靑木", "アオキ"),
)
GAIJI_SURNAMES_KEPT: tuple[tuple[str, str], ...] = (
    ("栁田", "ヤナギダ"), ("栁沢", "ヤナギサワ"), ("槗本", "ハシモト"), ("𣘺本", "ハシモト"),
    ("桒原", "クワハラ"), ("杦本", "スギモト"), ("淸水", "シミズ"),
)
GAIJI_SURNAMES = GAIJI_SURNAMES_SUBSTITUTED + GAIJI_SURNAMES_KEPT
#: of the households whose surname holds 外字, the share drawn from the names with a substitute
GAIJI_SUBSTITUTED_SHARE = 2 / 3

#: share of Japanese couples in which one partner is a foreign resident (日本人の配偶者等)
MIXED_COUPLE_SHARE = 0.01

# 続柄 codes (the codec's relationship table)
HEAD, HUSBAND, WIFE, CHILD = "01000000", "02000000", "03000000", "06000000"
FATHER, MOTHER = "07000000", "08000000"
WIFES_FATHER, WIFES_MOTHER = "03070000", "03080000"
CHILDS_WIFE, GRANDCHILD = "06030000", "06060000"
YOUNGER_BROTHER, YOUNGER_SISTER = "11000000", "12000000"

_FULLWIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")


def fullwidth(text: str) -> str:
    """ASCII digits and '-' as their double-byte forms (wire text is double-byte)."""
    return text.translate(_FULLWIDTH)


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


#: (first age, last age, weight): how plausible an age is for a role whose age is drawn freely
Weights = tuple[tuple[int, int, float], ...]
SINGLE: Weights = ((18, 24, 2.0), (25, 34, 1.2), (35, 64, 0.8), (65, 79, 1.0), (80, OLDEST, 1.4))
COUPLE: Weights = ((22, 34, 0.5), (35, 54, 0.35), (55, 64, 1.0), (65, 84, 1.6), (85, 100, 0.6))
ELDEST_CHILD: Weights = ((0, 14, 1.0), (15, 19, 0.9), (20, 24, 0.5), (25, 34, 0.3), (35, 45, 0.15))
LONE_PARENTS_CHILD: Weights = ((0, 19, 1.0), (20, 39, 0.6), (40, 60, 0.8))
EVEN: Weights = ((0, OLDEST, 1.0),)


def _weight(weights: Weights, age: int) -> float:
    for lo, hi, w in weights:
        if lo <= age <= hi:
            return w
    return 0.0


_NATIONALITY_WEIGHTS = fr.household_weights(NATIONALITIES)
#: mean persons per household, Japanese (6 standing for 6 or 7) and foreign
_MEAN_SIZE = sum((6.5 if k == 6 else k) * w for k, w in HOUSEHOLD_SIZES.items()) \
    / sum(HOUSEHOLD_SIZES.values())
_FOREIGN_MEAN_SIZE = sum(w * fr.mean_household_size(n) for n, w in _NATIONALITY_WEIGHTS.items()) \
    / sum(_NATIONALITY_WEIGHTS.values())
_BAND_OF: tuple[int, ...] = tuple(
    next(i for i, (lo, hi, _s) in enumerate(AGE_BANDS) if lo <= a <= hi) for a in range(OLDEST + 1))
_SHARES: tuple[float, ...] = tuple(s / 100 for _lo, _hi, s in AGE_BANDS)
_BAND_YEARS: tuple[int, ...] = tuple(hi - lo + 1 for lo, hi, _s in AGE_BANDS)


def _female_share(age: int) -> float:
    """Share of women among people living alone (or as the lone parent) at ``age``."""
    return 0.45 if age < 50 else 0.55 if age < 70 else 0.7 if age < 85 else 0.8


def _child_of(relationship: str) -> str:
    """The 続柄 of a child born to a member with ``relationship`` to the 世帯主."""
    if relationship in (HEAD, HUSBAND, WIFE):
        return CHILD
    if relationship in (CHILD, CHILDS_WIFE, "06020000"):
        return GRANDCHILD
    if relationship[:2] in ("90", "91"):  # 縁故者, 同居人: they stand alone in the table
        return "90000000"
    steps = relationship.rstrip("0")
    steps += "0" * (len(steps) % 2)
    return (steps + "06").ljust(8, "0") if len(steps) < 8 else "90000000"  # else 縁故者


@dataclass(slots=True)
class _Member:
    """One member of a household being drawn, before codes are given."""

    kanji: str
    kana: str
    sex: str
    age: int
    relationship: str
    foreign: ForeignStatus | None = None


@dataclass
class Population:
    """A seeded set of residents in households, with fresh codes for births and move-ins.

    ``gaiji_share`` is the share of Japanese households whose surname holds 外字;
    ``foreign_share`` the share of residents who are foreign residents.
    """

    seed: int
    as_of: dt.date
    residents: list[Resident] = field(default_factory=list)
    households: dict[str, list[Resident]] = field(default_factory=dict)
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _faker: Faker | None = field(default=None, repr=False)
    _codes: set[str] = field(default_factory=set, repr=False)
    _next_atena: int = 1
    _next_setai: int = 1
    #: residents drawn so far per age band of :data:`AGE_BANDS` (the quotas' state)
    _band_counts: list[int] = field(default_factory=lambda: [0] * len(AGE_BANDS), repr=False)
    _foreign_count: int = field(default=0, repr=False)
    _alias_rng: random.Random | None = field(default=None, repr=False)
    gaiji_share: float = 0.03
    foreign_share: float = FOREIGN_SHARE
    #: where the residents live (their addresses); 金沢市 unless told
    place: Place = KANAZAWA_PLACE

    def __iter__(self) -> Iterator[Resident]:
        return iter(self.residents)

    def __len__(self) -> int:
        return len(self.residents)

    # -- drawing --------------------------------------------------------------------------
    @property
    def faker(self) -> Faker:
        """The seeded ja_JP faker of this population."""
        if self._faker is None:
            self._faker = require("faker").Faker("ja_JP")
            self._faker.seed_instance(self.seed)
        return self._faker

    @property
    def rng(self) -> random.Random:
        """The population's seeded random source (the simulators draw events from it)."""
        return self._rng

    def _unique(self, draw: Any) -> str:
        while True:
            code: str = draw(self._rng)
            if code not in self._codes:
                self._codes.add(code)
                return code

    def new_codes(self) -> tuple[str, str]:
        """A fresh (住民票コード, 個人番号) pair, unique in this population."""
        return self._unique(generate_juminhyo_code), self._unique(generate_kojin_bango)

    def _quota_age(self, lo: int, hi: int, weights: Weights) -> int:
        """An age in ``lo..hi`` drawn by quota (see the module docstring)."""
        hi = min(hi, OLDEST)
        drawn = sum(self._band_counts) + 1
        # a band at or above its share keeps a small weight, so every role can always draw
        room = [max(share * drawn - n, share * 0.02)
                for share, n in zip(_SHARES, self._band_counts, strict=True)]
        ages = range(lo, hi + 1)
        w = [_weight(weights, a) * room[_BAND_OF[a]] / _BAND_YEARS[_BAND_OF[a]] for a in ages]
        if not any(w):
            return self._rng.randint(lo, hi)
        return self._rng.choices(ages, weights=w)[0]

    def _birth_date(self, age: int) -> str:
        """A birth date that makes someone ``age`` years old on ``as_of``."""
        latest = _years_before(self.as_of, age)
        earliest = _years_before(self.as_of, age + 1) + dt.timedelta(days=1)
        born = earliest + dt.timedelta(days=self._rng.randint(0, (latest - earliest).days))
        return born.strftime("%Y%m%d")

    def _address(self) -> tuple[str, str, str]:
        """(住所, 郵便番号, 大字・字コード) at a real 町名: 丁目・番・号 where the 町 has 丁目,
        番地 where it has none. The 大字・字コード is the project's own number for the 町 and
        丁目 (not the アドレス・ベース・レジストリ's); the postal code is not matched to the 町."""
        rng = self._rng
        towns = self.place.towns
        index = rng.randrange(len(towns))
        town = towns[index]
        if town.chome:
            chome = rng.randint(1, town.chome)
            street = f"{chome}丁目{rng.randint(1, 25)}番{rng.randint(1, 20)}号"
        else:
            chome = 0
            street = f"{rng.randint(1, 40)}番地"
            if rng.random() < 0.5:
                street += str(rng.randint(1, 20))
        if rng.random() < 0.3:
            building = self.faker.building_name()
            street += f"\u3000{building}{rng.randint(1, 9)}0{rng.randint(1, 9)}"
        address = fullwidth(f"{self.place.prefecture}{self.place.municipality}{town.name}{street}")
        postal = f"{self.place.postal_prefix}{rng.randint(0, 1)}{rng.randint(0, 9999):04d}"
        return address, postal, f"{index + 1:04d}{chome:03d}"

    def _surname(self) -> tuple[str, str]:
        rng = self._rng
        if rng.random() < self.gaiji_share:
            if rng.random() < GAIJI_SUBSTITUTED_SHARE:
                return rng.choice(GAIJI_SURNAMES_SUBSTITUTED)
            return rng.choice(GAIJI_SURNAMES_KEPT)
        kanji, kana, _roman = self.faker.last_name_pair()
        return kanji, kana

    def _given(self, sex: str) -> tuple[str, str]:
        pair = self.faker.first_name_male_pair() if sex == "1" else self.faker.first_name_female_pair()
        return pair[0], pair[1]

    def _japanese(self, surname: tuple[str, str], sex: str, age: int, relationship: str) -> _Member:
        given, given_kana = self._given(sex)
        return _Member(f"{surname[0]}\u3000{given}", f"{surname[1]}\u3000{given_kana}", sex, age,
                       relationship)

    def _foreigner(self, nationality: str, family: tuple[str, str] | None, sex: str, age: int,
                   relationship: str, status: ForeignStatus) -> _Member:
        families, male, female = fr.NAMES[nationality]
        fam = family or self._rng.choice(families)
        given = self._rng.choice(male if sex == "1" else female)
        return _Member(fr.register_name(fam[0], given[0]), f"{fam[1]}\u3000{given[1]}", sex, age,
                       relationship, status)

    def _status(self, nationality: str, status: str | None) -> ForeignStatus:
        if status is None:
            return fr.special_permanent(nationality)
        return fr.status_with_period(self._rng, nationality, status, self.as_of)

    def _names_rng(self) -> random.Random:
        """The seeded source of 通称 and 旧氏: its own stream, so drawing them moves nothing else."""
        if self._alias_rng is None:
            self._alias_rng = random.Random(f"{self.seed}:tsusho-kyuuji")
        return self._alias_rng

    def _tsusho(self, m: _Member) -> str | None:
        """A 通称 for some foreign residents aged 16 or more: a Japanese surname and their given
        name in katakana (shares: :data:`TSUSHO_SHARE`)."""
        if m.foreign is None or m.age < 16:
            return None
        rng = self._names_rng()
        if rng.random() >= TSUSHO_SHARE[m.foreign.foreign_resident_class == fr.TOKUBETSU_EIJUSHA]:
            return None
        return f"{rng.choice(TSUSHO_SURNAMES)}\u3000{m.kana.split(chr(0x3000))[-1]}"

    def _kyuuji(self, m: _Member) -> str | None:
        """A 旧氏 for a share (:data:`KYUUJI_SHARE`) of Japanese wives (妻, 子の妻), some with a
        外字."""
        if m.foreign is not None or m.relationship not in (WIFE, CHILDS_WIFE):
            return None
        rng = self._names_rng()
        return rng.choice(KYUUJI_SURNAMES) if rng.random() < KYUUJI_SHARE else None

    def _person(self, *, setai_no: str, m: _Member, householder: str,
                address: tuple[str, str, str], since: str, birth: str | None = None) -> Resident:
        birth = birth or self._birth_date(m.age)
        self._band_counts[_BAND_OF[min(m.age, OLDEST)]] += 1
        self._foreign_count += m.foreign is not None
        jcode, kbango = self.new_codes()
        # unique across populations: a daemon serves several scenarios, each its own seed
        atena = f"{self.seed % 100_000:05d}{self._next_atena:010d}"
        self._next_atena += 1
        return Resident(
            juminhyo_code=jcode, kojin_bango=kbango, atena_no=atena, setai_no=setai_no,
            kanji_name=m.kanji, kana_name=m.kana, birth_date=birth, sex=m.sex,
            relationship=m.relationship, householder_name=householder, postal_code=address[1],
            aza_code=address[2], address=address[0], resident_since=max(since, birth),
            foreign=m.foreign, tsusho=self._tsusho(m), kyuuji=self._kyuuji(m),
        )

    # -- households -----------------------------------------------------------------------
    def _older(self, age: int, lo: int = 22, mode: int = 30, hi: int = 40) -> int:
        """The age of someone ``lo``-``hi`` years older than ``age`` (a parent), not over 100
        unless ``age`` leaves no room: the oldest ages come from the quota draws."""
        top = min(hi, 100 - age)
        if top <= lo:
            return min(OLDEST, age + max(16, top))
        return age + round(self._rng.triangular(lo, top, min(max(mode, lo), top)))

    def _partner_age(self, age: int) -> int:
        """The age of a wife whose husband is ``age`` (husbands a little older, on average)."""
        gap = round(self._rng.triangular(-3, 8, 2))
        return max(18, min(OLDEST, age - gap))

    def _children_ages(self, count: int, eldest_weights: Weights, hi: int, lo: int = 0) -> list[int]:
        """Ages of ``count`` siblings, eldest first (``lo``-``hi``), 1-4 years apart."""
        eldest = self._quota_age(max(lo, 2 * (count - 1)), hi, eldest_weights)
        ages = [eldest]
        for left in range(count - 1, 0, -1):
            room = ages[-1] - (left - 1)  # leave a year for each younger one still to come
            ages.append(ages[-1] - self._rng.randint(1, max(1, min(4, room))))
        return [max(0, a) for a in ages]

    def _family(self, couple: bool, children: int, elders: int) -> list[_Member]:
        """A couple (or a lone parent) with ``children`` children and ``elders`` of the older
        generation (the head's parents, or the wife's) — ages derived from the eldest child's."""
        rng = self._rng
        surname = self._surname()
        lone = not couple and not elders
        oldest_child = 60 if lone else 30 if elders else 45
        kids = self._children_ages(children, LONE_PARENTS_CHILD if lone else ELDEST_CHILD,
                                   oldest_child) if children else []
        mother = self._older(kids[0]) if kids else self._quota_age(25, 55, EVEN)
        father = max(18, min(100, mother + round(rng.triangular(-3, 8, 2))))
        if not couple:
            # a lone parent: mostly mothers; an elderly parent with a middle-aged child is
            # the head or not, half and half
            female = rng.random() < (0.85 if mother < 60 else _female_share(mother))
            age, sex = (mother, "2") if female else (father, "1")
            parent = self._japanese(surname, sex, age, HEAD)
            members = [parent] + [self._japanese(surname, rng.choice("12"), a, CHILD) for a in kids]
            if kids and age >= 70 and kids[0] >= 35 and rng.random() < 0.5:
                # the eldest child heads the household: the parent is 母/父, the others 弟/妹
                members[0].relationship = MOTHER if sex == "2" else FATHER
                members[1].relationship = HEAD
                for sibling in members[2:]:
                    sibling.relationship = YOUNGER_BROTHER if sibling.sex == "1" else YOUNGER_SISTER
            return members
        husband = self._japanese(surname, "1", father, HEAD)
        wife = self._japanese(surname, "2", mother, WIFE)
        if rng.random() < MIXED_COUPLE_SHARE:
            wife = self._mixed_spouse("2", mother, WIFE)
        members = [husband, wife] + [self._japanese(surname, rng.choice("12"), a, CHILD) for a in kids]
        if elders:
            wifes_side = rng.random() < 0.2 and wife.foreign is None
            base = mother if wifes_side else father
            side = self._surname() if wifes_side else surname
            grandma = self._older(base, mode=29)
            grandpa = max(18, min(100, grandma + round(rng.triangular(-3, 8, 2))))
            older = [self._japanese(side, "2", grandma, WIFES_MOTHER if wifes_side else MOTHER)]
            if elders == 2:
                older.insert(0, self._japanese(side, "1", grandpa, WIFES_FATHER if wifes_side else FATHER))
            if elders == 2 and not wifes_side and rng.random() < 0.3:
                # three generations under the grandfather: 妻, 子, 子の妻, 子の子
                older[0].relationship, older[1].relationship = HEAD, WIFE
                husband.relationship, wife.relationship = CHILD, CHILDS_WIFE
                for kid in members[2:]:
                    kid.relationship = GRANDCHILD
                return older + members
            members += older
        return members

    def _couple(self) -> list[_Member]:
        """A couple living on their own (elderly couples most of all)."""
        rng = self._rng
        surname = self._surname()
        age = self._quota_age(22, 100, COUPLE)
        husband = self._japanese(surname, "1", age, HEAD)
        wife_age = self._partner_age(age)
        wife = (self._mixed_spouse("2", wife_age, WIFE) if rng.random() < MIXED_COUPLE_SHARE
                else self._japanese(surname, "2", wife_age, WIFE))
        if rng.random() < 0.08:  # the wife is the 世帯主
            husband.relationship, wife.relationship = HUSBAND, HEAD
            return [wife, husband]
        return [husband, wife]

    def _single(self) -> list[_Member]:
        age = self._quota_age(18, OLDEST, SINGLE)
        sex = "2" if self._rng.random() < _female_share(age) else "1"
        return [self._japanese(self._surname(), sex, age, HEAD)]

    def _mixed_spouse(self, sex: str, age: int, relationship: str) -> _Member:
        """A foreign partner of a Japanese 世帯主: 日本人の配偶者等, or 永住者 after some years."""
        rng = self._rng
        nationality = rng.choices(list(fr.SPOUSE_NATIONALITIES),
                                  weights=list(fr.SPOUSE_NATIONALITIES.values()))[0]
        status = fr.EIJUSHA if age >= 35 and rng.random() < 0.6 else fr.NIHONJIN_HAIGUSHA
        return self._foreigner(nationality, None, sex, age, relationship,
                               self._status(nationality, status))

    def _japanese_household(self) -> list[_Member]:
        rng = self._rng
        size = rng.choices(list(HOUSEHOLD_SIZES), weights=list(HOUSEHOLD_SIZES.values()))[0]
        if size == 1:
            return self._single()
        if size == 2:
            roll = rng.random()
            return self._couple() if roll < 0.65 else self._family(False, 1, 0)
        if size == 3:
            roll = rng.random()
            return (self._family(True, 1, 0) if roll < 0.8 else
                    self._family(False, 2, 0) if roll < 0.9 else self._family(True, 0, 1))
        if size == 4:
            roll = rng.random()
            return (self._family(True, 2, 0) if roll < 0.8 else
                    self._family(True, 1, 1) if roll < 0.95 else self._family(False, 3, 0))
        if size == 5:
            roll = rng.random()
            return (self._family(True, 3, 0) if roll < 0.35 else
                    self._family(True, 2, 1) if roll < 0.8 else self._family(True, 1, 2))
        size = rng.choice((6, 7))
        return self._family(True, size - 4, 2) if rng.random() < 0.7 else self._family(True, size - 3, 1)

    def _foreign_household(self) -> list[_Member]:
        """A household headed by a foreign resident: its nationality, the head's status, and a
        family only where that status lets one live with the holder."""
        rng = self._rng
        nationality = rng.choices(list(_NATIONALITY_WEIGHTS),
                                  weights=list(_NATIONALITY_WEIGHTS.values()))[0]
        mix = fr.STATUS_MIX[nationality]
        status = rng.choices(list(mix), weights=list(mix.values()))[0]
        lo, hi = fr.STATUS_AGES[status]
        age = self._quota_age(lo, hi, EVEN)
        sex = "1" if rng.random() < 0.55 else "2"
        family = rng.choice(fr.NAMES[nationality][0])
        head = self._foreigner(nationality, family, sex, age, HEAD, self._status(nationality, status))
        sizes = fr.household_sizes(status)
        size = rng.choices(list(sizes), weights=list(sizes.values()))[0]
        if size == 1:
            return [head]
        # a partner keeps their own family name; children take the head's
        dependant = fr.dependant_status(status)
        spouse_sex = "2" if sex == "1" else "1"
        spouse_age = self._partner_age(age) if sex == "1" else max(18, min(OLDEST, age + 2))
        spouse = self._foreigner(nationality, None, spouse_sex, spouse_age,
                                 WIFE if spouse_sex == "2" else HUSBAND,
                                 self._status(nationality, dependant))
        # children born when their mother was 20-42, living with their parents up to 25
        mother = spouse_age if spouse_sex == "2" else age
        lo, hi = max(2 * (size - 3), mother - 42), min(25, mother - 20)
        kids = self._children_ages(size - 2, ELDEST_CHILD, hi, lo) if size > 2 and lo <= hi else []
        return [head, spouse] + [
            self._foreigner(nationality, family, rng.choice("12"), a, CHILD,
                            self._status(nationality, dependant)) for a in kids]

    def add_household(self) -> list[Resident]:
        """Draw one household at one address of the population's place and add it."""
        rng = self._rng
        setai = f"{self._next_setai:012d}"
        self._next_setai += 1
        drafts = (self._foreign_household() if rng.random() < self._foreign_household_share
                  else self._japanese_household())
        address = self._address()
        head = next(m for m in drafts if m.relationship == HEAD)
        # the household moved to this address up to 30 years ago, and after its head turned 18
        since = (self.as_of - dt.timedelta(
            days=rng.randint(0, 365 * max(0, min(30, head.age - 18))))).strftime("%Y%m%d")
        members = [self._person(setai_no=setai, m=m, householder=head.kanji, address=address,
                                since=since) for m in drafts]
        self.households[setai] = members
        self.residents.extend(members)
        return members

    @property
    def _foreign_household_share(self) -> float:
        """The chance that the next household is headed by a foreign resident: about the share
        that makes ``foreign_share`` of residents foreign (foreign households are smaller, and
        some foreign residents live in Japanese households as a partner), raised while the
        population is below that share and lowered while above, so it keeps close to it."""
        # the foreign partners of mixed couples are about 0.2 % of residents
        base = max(0.0, self.foreign_share - 0.002) * _MEAN_SIZE / _FOREIGN_MEAN_SIZE
        below = self._foreign_count < self.foreign_share * len(self.residents)
        return base * (1.5 if below else 0.5)

    # -- events ---------------------------------------------------------------------------
    def birth_parent(self) -> Resident:
        """A resident who could plausibly have a baby today: a woman of 20-44 if one turns up
        among a few random draws, else anyone aged 18-49, else anyone."""
        rng = self._rng
        fallback: Resident | None = None
        for _ in range(40):
            r = rng.choice(self.residents)
            age = age_on(r.birth_date, self.as_of)
            if r.sex == "2" and 20 <= age <= 44:
                return r
            if fallback is None and 18 <= age <= 49:
                fallback = r
        return fallback or rng.choice(self.residents)

    def newborn(self, parent: Resident) -> Resident:
        """A child born today into ``parent``'s household (not yet added); a child of a foreign
        resident is a foreign resident too (出生による経過滞在者 until a status is granted)."""
        sex = self._rng.choice("12")
        today = self.as_of.strftime("%Y%m%d")
        relationship = _child_of(parent.relationship)
        head = next((m for m in self.households.get(parent.setai_no, ())
                     if m.relationship == HEAD), None)
        # a child of the 世帯主's partner takes the 世帯主's family name, and is Japanese when
        # the 世帯主 is (a foreign partner of a Japanese 世帯主)
        partner = head if parent.relationship in (HUSBAND, WIFE) and head is not None else None
        source = partner or parent
        family = (source.kanji_name.split("\u3000")[0], source.kana_name.split("\u3000")[0])
        f = parent.foreign if partner is None or partner.foreign is not None else None
        if f is not None:
            # the family name as the register holds it (full-width letters pass unchanged)
            m = self._foreigner(f.nationality, family, sex, 0, relationship,
                                fr.born_here(f.nationality))
        else:
            m = self._japanese(family, sex, 0, relationship)
        return self._person(setai_no=parent.setai_no, m=m, householder=parent.householder_name,
                            address=(parent.address, parent.postal_code, parent.aza_code),
                            since=today, birth=today)

    def relocated(self, person: Resident) -> Resident:
        """``person`` with a new address in the population's place (for a 転居)."""
        address, postal, aza = self._address()
        return replace(person, address=address, postal_code=postal, aza_code=aza)


def build_population(
    size: int, *, seed: int, as_of: dt.date, gaiji_share: float = 0.03,
    foreign_share: float = FOREIGN_SHARE, place: Place = KANAZAWA_PLACE,
    codes: set[str] | None = None,
) -> Population:
    """At least ``size`` residents in whole households at ``place``, reproducible from
    ``seed``; ``codes``: the 住民票コード and 個人番号 already taken (shared by the populations
    of one network, so no code is drawn twice)."""
    require("faker")  # before anything is drawn: a missing 'sim' extra is one line
    pop = Population(seed=seed, as_of=as_of, gaiji_share=gaiji_share, foreign_share=foreign_share,
                     place=place)
    if codes is not None:
        pop._codes = codes
    pop._rng.seed(seed)
    while len(pop.residents) < size:
        pop.add_household()
    return pop
