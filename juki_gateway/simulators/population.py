"""The seeded synthetic population of Kanazawa (市町村コード 172014) that the simulators drive.

Names, kana and building names come from faker's ``ja_JP`` locale; addresses use real 町名 of
Kanazawa with the 丁目 they have (:data:`.kanazawa.TOWNS`).
Every 住民票コード and 個人番号 is drawn with the codec's check-digit helpers, so each one is
valid and the records encode with the codec's layouts (``honnin-kakunin``, ``soufusaki``,
``fukuhon-juminhyo``). Residents live in households (世帯主, 妻/夫, 子 …); a share are foreign
residents with 在留 items; a share of surnames hold 外字, some with a substitute in the codec's
table (髙, 﨑, 𠮷, 德 …) and some without (栁, 槗, 𣘺, 桒, 杦, 淸), which the encoder counts and
keeps as is (代替文字変換結果 2). The same seed gives the same population, byte for byte:
nothing here reads the clock (dates are relative to the ``as_of`` date the caller passes).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from faker import Faker

from juki_gateway.codecs.checkdigits import generate_juminhyo_code, generate_kojin_bango
from juki_gateway.codecs.gaiji import JUKINET
from juki_gateway.codecs.samples import KANAZAWA_CARD_OFFICE
from juki_gateway.simulators.kanazawa import TOWNS

KANAZAWA = "172014"
KANAZAWA_NAME = "金沢市"
PREFECTURE_NAME = "石川県"

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

#: Foreign residents' names (katakana family, given) and nationality (ISO 3166-1 alpha-3).
FOREIGN_NAMES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("グエン", ("ヴァン\u3000アン", "ティ\u3000ラン", "ミン\u3000ドゥック"), "VNM"),
    ("チャン", ("ヴァン\u3000フン", "ティ\u3000ホア"), "VNM"),
    ("サントス", ("マリア", "ジョアン"), "PHL"),
    ("リ", ("ウェイ", "ナ"), "CHN"),
    ("キム", ("ミンジュン", "ソヨン"), "KOR"),
    ("シャルマ", ("ラフル", "プリヤ"), "IND"),
    ("スミス", ("ジョン", "エミリー"), "USA"),
    ("シルバ", ("ルーカス", "アナ"), "BRA"),
)

_FULLWIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")


def fullwidth(text: str) -> str:
    """ASCII digits and '-' as their double-byte forms (wire text is double-byte)."""
    return text.translate(_FULLWIDTH)


@dataclass(frozen=True, slots=True)
class ForeignStatus:
    """The 在留 items of a foreign resident."""

    nationality: str
    residence_status: str
    residence_period: str
    residence_expiry_date: str
    foreign_resident_class: str


@dataclass(frozen=True, slots=True)
class Resident:
    """One synthetic resident with everything the three record layouts need."""

    juminhyo_code: str
    kojin_bango: str
    atena_no: str
    setai_no: str
    kanji_name: str
    kana_name: str
    birth_date: str
    sex: str
    relationship: str
    householder_name: str
    postal_code: str
    aza_code: str
    address: str
    resident_since: str
    foreign: ForeignStatus | None = None

    @property
    def has_gaiji(self) -> bool:
        """Whether the name or address holds a 外字 of Juki-net links (outside JIS X 0208)."""
        return JUKINET.gaiji_count(self.kanji_name + self.address) > 0

    def honnin_kakunin(
        self, *, change_reason: str, change_date: str, seq: int, request_no: int,
        timestamp: str, operator_id: str = "OP0001", terminal_id: str = "TERM001",
        previous_lg_code: str | None = None, previous_address: str | None = None,
        record_status_flag: str = "0",
    ) -> dict[str, Any]:
        """This resident's 本人確認情報 record (primary items) for one change."""
        return {
            "juminhyo_code": self.juminhyo_code,
            "kanji_name": self.kanji_name,
            "kana_name": self.kana_name,
            "birth_date": self.birth_date,
            "sex": self.sex,
            "lg_code": KANAZAWA,
            "aza_code": self.aza_code,
            "postal_code": self.postal_code,
            "address": self.address,
            "kojin_bango": self.kojin_bango,
            "resident_since": self.resident_since,
            "address_since": self.resident_since,
            "notification_date": change_date,
            "previous_lg_code": previous_lg_code,
            "previous_address": previous_address,
            "relationship": self.relationship,
            "change_reason": change_reason,
            "change_date": change_date,
            "change_reason_detail": "01",
            "old_juminhyo_code": None,
            "juminhyo_code_since": self.resident_since,
            "request_no": f"{request_no:016d}",
            "operator_id": operator_id,
            "terminal_id": terminal_id,
            "seq": seq,
            "recovery_seq": 0,
            "update_lock_flag": "0",
            "scheduled_flag": "0",
            "exclusive_flag": "0",
            "record_status_flag": record_status_flag,
            "timestamp": timestamp,
        }

    def fukuhon(self) -> dict[str, Any]:
        """This resident's 住民票関係情報 副本 record (primary items)."""
        f = self.foreign
        return {
            "atena_no": self.atena_no,
            "setai_no": self.setai_no,
            "kanji_name": self.kanji_name,
            "birth_date": self.birth_date,
            "sex": self.sex,
            "relationship": self.relationship,
            "address": self.address,
            "resident_since": self.resident_since,
            "householder_name": self.householder_name,
            "resident_class": "2" if f else "1",
            "nationality": f.nationality if f else None,
            "residence_status": f.residence_status if f else None,
            "residence_period": f.residence_period if f else None,
            "residence_expiry_date": f.residence_expiry_date if f else None,
            "foreign_resident_class": f.foreign_resident_class if f else None,
        }

    def soufusaki(self, soufusaki_no: int, processing_date: str) -> dict[str, Any]:
        """This resident's 送付先情報 record (primary items), sent to card management."""
        f = self.foreign
        return {
            "soufusaki_no": f"{soufusaki_no:012d}",
            "dest_postal_code": self.postal_code,
            "dest_address": self.address,
            "dest_name": self.kanji_name,
            **KANAZAWA_CARD_OFFICE,
            "processing_date": processing_date,
            "operator_id": "OP0001",
            "terminal_id": "TERM001",
            "print_class": "0",
            "juminhyo_code": self.juminhyo_code,
            "kanji_name": self.kanji_name,
            "kana_name": self.kana_name,
            "postal_code": self.postal_code,
            "address": self.address,
            "birth_date": self.birth_date,
            "sex": self.sex,
            "kojin_bango": self.kojin_bango,
            "foreign_resident_class": f.foreign_resident_class if f else None,
            "residence_expiry_date": f.residence_expiry_date if f else None,
        }


@dataclass
class Population:
    """A seeded set of residents in households, with fresh codes for births and move-ins."""

    seed: int
    as_of: dt.date
    residents: list[Resident] = field(default_factory=list)
    households: dict[str, list[Resident]] = field(default_factory=dict)
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _faker: Faker | None = field(default=None, repr=False)
    _codes: set[str] = field(default_factory=set, repr=False)
    _next_atena: int = 1
    _next_setai: int = 1
    gaiji_share: float = 0.05
    foreign_share: float = 0.03

    def __iter__(self) -> Iterator[Resident]:
        return iter(self.residents)

    def __len__(self) -> int:
        return len(self.residents)

    # -- drawing --------------------------------------------------------------------------
    @property
    def faker(self) -> Faker:
        """The seeded ja_JP faker of this population."""
        if self._faker is None:
            self._faker = Faker("ja_JP")
            self._faker.seed_instance(self.seed)
        return self._faker

    def _unique(self, draw: Any) -> str:
        while True:
            code: str = draw(self._rng)
            if code not in self._codes:
                self._codes.add(code)
                return code

    def new_codes(self) -> tuple[str, str]:
        """A fresh (住民票コード, 個人番号) pair, unique in this population."""
        return self._unique(generate_juminhyo_code), self._unique(generate_kojin_bango)

    def _date(self, years_ago_min: int, years_ago_max: int) -> str:
        days = self._rng.randint(years_ago_min * 365, years_ago_max * 365)
        return (self.as_of - dt.timedelta(days=days)).strftime("%Y%m%d")

    def _address(self) -> tuple[str, str, str]:
        """(住所, 郵便番号, 大字・字コード) at a real 町名: 丁目・番・号 where the 町 has 丁目,
        番地 where it has none. The 大字・字コード is the project's own number for the 町 and
        丁目 (not the アドレス・ベース・レジストリ's); the postal code is not matched to the 町."""
        rng = self._rng
        index = rng.randrange(len(TOWNS))
        town = TOWNS[index]
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
        address = fullwidth(f"{PREFECTURE_NAME}{KANAZAWA_NAME}{town.name}{street}")
        postal = f"92{rng.randint(0, 1)}{rng.randint(0, 9999):04d}"
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

    def _foreign_status(self, nationality: str) -> ForeignStatus:
        rng = self._rng
        expiry = self.as_of + dt.timedelta(days=rng.randint(60, 5 * 365))
        return ForeignStatus(
            nationality=nationality,
            residence_status=rng.choice(("01", "05", "06", "07", "08", "09")),
            residence_period=rng.choice(("0100", "0300", "0500", "0006")),
            residence_expiry_date=expiry.strftime("%Y%m%d"),
            foreign_resident_class=rng.choice(("1", "1", "1", "2")),
        )

    def _person(
        self, *, setai_no: str, kanji: str, kana: str, sex: str, birth: str, relationship: str,
        householder: str, address: tuple[str, str, str], since: str, foreign: ForeignStatus | None,
    ) -> Resident:
        jcode, kbango = self.new_codes()
        # unique across populations: a daemon serves several scenarios, each its own seed
        atena = f"{self.seed % 100_000:05d}{self._next_atena:010d}"
        self._next_atena += 1
        return Resident(
            juminhyo_code=jcode, kojin_bango=kbango, atena_no=atena, setai_no=setai_no,
            kanji_name=kanji, kana_name=kana, birth_date=birth, sex=sex,
            relationship=relationship, householder_name=householder, postal_code=address[1],
            aza_code=address[2], address=address[0], resident_since=since, foreign=foreign,
        )

    def add_household(self) -> list[Resident]:
        """Draw one household (1-5 people) at one Kanazawa address and add it."""
        rng = self._rng
        setai = f"{self._next_setai:012d}"
        self._next_setai += 1
        address = self._address()
        since = self._date(0, 30)
        members: list[Resident] = []
        if rng.random() < self.foreign_share:
            family, givens, nationality = rng.choice(FOREIGN_NAMES)
            given = rng.choice(givens)
            name = f"{family}\u3000{given}"
            members.append(self._person(
                setai_no=setai, kanji=name, kana=name, sex=rng.choice("12"),
                birth=self._date(20, 60), relationship="01000000", householder=name,
                address=address, since=since, foreign=self._foreign_status(nationality),
            ))
        else:
            sur, sur_kana = self._surname()
            sex = rng.choice("12")
            given, given_kana = self._given(sex)
            head = f"{sur}\u3000{given}"
            members.append(self._person(
                setai_no=setai, kanji=head, kana=f"{sur_kana}\u3000{given_kana}", sex=sex,
                birth=self._date(25, 85), relationship="01000000", householder=head,
                address=address, since=since, foreign=None,
            ))
            if rng.random() < 0.6:
                spouse_sex = "2" if sex == "1" else "1"
                g, gk = self._given(spouse_sex)
                members.append(self._person(
                    setai_no=setai, kanji=f"{sur}\u3000{g}", kana=f"{sur_kana}\u3000{gk}",
                    sex=spouse_sex, birth=self._date(25, 80),
                    relationship="03000000" if spouse_sex == "2" else "02000000",
                    householder=head, address=address, since=since, foreign=None,
                ))
            for _ in range(rng.choice((0, 0, 1, 2, 3))):
                child_sex = rng.choice("12")
                g, gk = self._given(child_sex)
                members.append(self._person(
                    setai_no=setai, kanji=f"{sur}\u3000{g}", kana=f"{sur_kana}\u3000{gk}",
                    sex=child_sex, birth=self._date(0, 20), relationship="06000000",
                    householder=head, address=address, since=since, foreign=None,
                ))
        self.households[setai] = members
        self.residents.extend(members)
        return members

    def newborn(self, parent: Resident) -> Resident:
        """A child born today into ``parent``'s household (not yet added)."""
        sex = self._rng.choice("12")
        given, given_kana = self._given(sex)
        surname = parent.kanji_name.split("\u3000")[0]
        surname_kana = parent.kana_name.split("\u3000")[0]
        today = self.as_of.strftime("%Y%m%d")
        return self._person(
            setai_no=parent.setai_no, kanji=f"{surname}\u3000{given}",
            kana=f"{surname_kana}\u3000{given_kana}", sex=sex, birth=today,
            relationship="06000000", householder=parent.householder_name,
            address=(parent.address, parent.postal_code, parent.aza_code), since=today,
            foreign=None,
        )

    def relocated(self, person: Resident) -> Resident:
        """``person`` with a new Kanazawa address (for a 転居)."""
        address, postal, aza = self._address()
        from dataclasses import replace

        return replace(person, address=address, postal_code=postal, aza_code=aza)

    @property
    def rng(self) -> random.Random:
        """The population's seeded random source (the simulators draw events from it)."""
        return self._rng


def build_population(
    size: int, *, seed: int, as_of: dt.date, gaiji_share: float = 0.05,
    foreign_share: float = 0.03,
) -> Population:
    """At least ``size`` residents in whole households, reproducible from ``seed``."""
    pop = Population(seed=seed, as_of=as_of, gaiji_share=gaiji_share, foreign_share=foreign_share)
    pop._rng.seed(seed)
    while len(pop.residents) < size:
        pop.add_household()
    return pop
