"""Resident events of the existing system (既存住基システム) as Juki-net update records.

The simulator side of the CS link: it invents residents and a timeline of 転入, 転居, 出生,
死亡 and 転出, and encodes each change as an update record in the order it happened. Every
record of one run is distinct (the 住所 carries a running number), so a receiver's file can be
checked for exactly-once, in-order application.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass

from juki_gateway.protocols.jukinet.numbers import make_juminhyo_code
from juki_gateway.protocols.jukinet.records import (
    SHIBOU,
    SHUSSEI,
    TENKYO,
    TENNYU,
    TENSHUTSU,
    decode_honnin_kakunin,
    fullwidth_digits,
    honnin_kakunin_record,
)

FAMILY_NAMES = [("髙橋", "タカハシ"), ("佐藤", "サトウ"), ("鈴木", "スズキ"), ("山﨑", "ヤマサキ"),
           ("田中", "タナカ"), ("吉田", "ヨシダ"), ("中村", "ナカムラ"), ("渡辺", "ワタナベ")]
GIVEN_NAMES = [("太郎", "タロウ"), ("花子", "ハナコ"), ("次郎", "ジロウ"), ("美咲", "ミサキ"),
          ("健", "ケン"), ("陽子", "ヨウコ")]

__all__ = ["SHIBOU", "SHUSSEI", "TENKYO", "TENNYU", "TENSHUTSU", "Resident", "encode_change",
           "new_resident", "serial_of", "timeline"]


@dataclass
class Resident:
    """One simulated resident and their current items."""

    juminhyo_code: str
    name_kanji: str
    name_kana: str
    birth_date: str
    sex: str
    address: str
    kojin_bango: str = ""


def new_resident(rng: random.Random, index: int, municipality: str,
                 code_prefix: str | None = None) -> Resident:
    """A resident with a valid, run-unique 住民票コード (its first four digits ``code_prefix``,
    by default the municipality's first four: give each municipality its own when several
    share them)."""
    fam, given = FAMILY_NAMES[index % len(FAMILY_NAMES)], GIVEN_NAMES[(index // len(FAMILY_NAMES)) % len(GIVEN_NAMES)]
    code = make_juminhyo_code(f"{code_prefix or municipality[:4]}{index:06d}")
    birth = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(80 * 365))
    return Resident(code, fam[0] + "　" + given[0], fam[1] + "　" + given[1],
                    birth.strftime("%Y%m%d"), rng.choice("12"), "石川県金沢市広坂１丁目")


def encode_change(r: Resident, municipality: str, reason: str, serial: int, when: dt.date) -> bytes:
    """The 本人確認情報 of one change (``serial`` makes every record of a run distinct)."""
    return honnin_kakunin_record(
        juminhyo_code=r.juminhyo_code, kanji_name=r.name_kanji, kana_name=r.name_kana,
        birth_date=r.birth_date, sex=r.sex, lg_code=municipality,
        address=f"{r.address}{fullwidth_digits(serial)}番", kojin_bango=r.kojin_bango,
        change_reason=reason, change_date=when.strftime("%Y%m%d"), seq=serial,
    )


def serial_of(record: bytes) -> int:
    """The running number a record's 住所 carries (for exactly-once checks)."""
    address = str(decode_honnin_kakunin(record)["address"])
    return int(address.rstrip("番").split("丁目")[-1])


def timeline(rng: random.Random, municipality: str, count: int, residents: int = 200,
             start: dt.date = dt.date(2026, 4, 1), code_prefix: str | None = None) -> Iterator[bytes]:
    """``count`` update records: residents move in or are born, move house, die or move out
    (``code_prefix``: see :func:`new_resident`)."""
    people: list[Resident] = []
    gone: set[int] = set()
    serial = 0
    day = start
    while serial < count:
        serial += 1
        alive = [i for i in range(len(people)) if i not in gone]
        if len(people) < residents and (not alive or rng.random() < 0.3):
            r = new_resident(rng, len(people), municipality, code_prefix)
            people.append(r)
            yield encode_change(r, municipality, rng.choice([TENNYU, SHUSSEI]), serial, day)
            continue
        i = rng.choice(alive)
        roll = rng.random()
        if roll < 0.9:
            yield encode_change(people[i], municipality, TENKYO, serial, day)
        else:
            gone.add(i)
            reason = SHIBOU if roll < 0.95 else TENSHUTSU
            yield encode_change(people[i], municipality, reason, serial, day)
