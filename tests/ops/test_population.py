"""The seeded synthetic population: valid codes, households like Kanazawa's, foreign residents
with their register names and coherent 在留 items, 外字 with and without substitutes, real
町名, and records that encode."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterator

import pytest

from juki_gateway.codecs.checkdigits import JUMINHYO_CODE, KOJIN_BANGO
from juki_gateway.codecs.gaiji import JIS_X0208, SUBSTITUTES
from juki_gateway.codecs.record import get_codec
from juki_gateway.simulators import foreign as fr
from juki_gateway.simulators.kanazawa import AGE_BANDS, HOUSEHOLD_SIZES, TOWN_NAMES, TOWNS
from juki_gateway.simulators.population import (
    Population,
    Resident,
    age_on,
    build_population,
)

AS_OF = dt.date(2026, 4, 1)
HEAD, HUSBAND, WIFE, CHILD = "01000000", "02000000", "03000000", "06000000"
FATHER, MOTHER, GRANDCHILD = "07000000", "08000000", "06060000"
LATIN_NAME = re.compile("[Ａ-Ｚ]+(\u3000[Ａ-Ｚ]+)+")
KATAKANA = re.compile("[ァ-ヴー]+(\u3000[ァ-ヴー]+)+")
TOWN_BY_NAME = {t.name: t for t in TOWNS}
CHOME = re.compile("([０-９]+)丁目[０-９]+番[０-９]+号")
BANCHI = re.compile("[０-９]+番地[０-９]*")


@pytest.fixture(scope="module")
def kanazawa() -> Population:
    """Twenty thousand residents, the size the distribution checks are calibrated for."""
    return build_population(20_000, seed=2026, as_of=AS_OF)


def _share(part: int, whole: int) -> float:
    return 100 * part / whole


def _town_and_rest(address: str) -> tuple[str, str]:
    assert address.startswith("石川県金沢市")
    rest = address.removeprefix("石川県金沢市")
    town = max((t for t in TOWN_NAMES if rest.startswith(t)), key=len, default="")
    return town, rest[len(town):]


def _households(pop: Population) -> Iterator[list[Resident]]:
    return iter(pop.households.values())


def test_same_seed_same_population() -> None:
    """Two builds with one seed give identical residents; another seed gives different ones."""
    a = build_population(150, seed=5, as_of=AS_OF)
    b = build_population(150, seed=5, as_of=AS_OF)
    c = build_population(150, seed=6, as_of=AS_OF)
    assert a.residents == b.residents
    assert [r.juminhyo_code for r in a] != [r.juminhyo_code for r in c]


def test_codes_are_valid_and_unique() -> None:
    """Every 住民票コード and 個人番号 passes its check digit and no code repeats."""
    pop = build_population(1000, seed=1, as_of=AS_OF)
    jcodes = [r.juminhyo_code for r in pop]
    kbango = [r.kojin_bango for r in pop]
    assert all(JUMINHYO_CODE.is_valid(c) for c in jcodes)
    assert all(KOJIN_BANGO.is_valid(c) for c in kbango)
    assert len(set(jcodes)) == len(jcodes) and len(set(kbango)) == len(kbango)
    assert len({r.atena_no for r in pop}) == len(pop)


def test_age_structure_follows_kanazawa(kanazawa: Population) -> None:
    """Every age band is within half a point of the census share; under 15 about 12 %, 65
    and over about 26 %, and some residents are over 100 but none over 105."""
    ages = [age_on(r.birth_date, AS_OF) for r in kanazawa]
    for lo, hi, share in AGE_BANDS:
        got = _share(sum(lo <= a <= hi for a in ages), len(ages))
        assert abs(got - share) <= 0.5, f"{lo}-{hi}: {got:.2f} % for {share} %"
    assert 11.5 <= _share(sum(a < 15 for a in ages), len(ages)) <= 13.5
    assert 25.0 <= _share(sum(a >= 65 for a in ages), len(ages)) <= 28.0
    assert max(ages) <= 105 and sum(a >= 100 for a in ages) >= 3


def test_household_sizes_follow_kanazawa(kanazawa: Population) -> None:
    """About 40 % of households have one person, and every size is within two points of the
    census share (6 standing for 6 and more)."""
    sizes = Counter(min(len(m), 6) for m in _households(kanazawa))
    total = sum(sizes.values())
    assert 38.5 <= _share(sizes[1], total) <= 43.0
    for size, share in HOUSEHOLD_SIZES.items():
        assert abs(_share(sizes[size], total) - share) <= 2.0, size


def test_household_members_ages_fit_together(kanazawa: Population) -> None:
    """One 世帯主 per household at one address; children are at least 16 years younger than
    the head, parents at least 16 years older, grandchildren younger than every 子; partners
    are adults and nobody under 18 lives alone."""
    for members in _households(kanazawa):
        heads = [m for m in members if m.relationship == HEAD]
        assert len(heads) == 1
        head = heads[0]
        assert all(m.householder_name == head.kanji_name for m in members)
        assert len({m.address for m in members}) == 1
        age = {m.juminhyo_code: age_on(m.birth_date, AS_OF) for m in members}
        head_age = age[head.juminhyo_code]
        if len(members) == 1:
            assert head_age >= 18
        for m in members:
            a = age[m.juminhyo_code]
            if m.relationship == CHILD:
                assert head_age - a >= 16, (head_age, a)
            elif m.relationship in (FATHER, MOTHER):
                assert a - head_age >= 16, (head_age, a)
            elif m.relationship in (HUSBAND, WIFE):
                assert a >= 18
            elif m.relationship == GRANDCHILD:
                assert all(a < age[c.juminhyo_code] for c in members if c.relationship == CHILD)
            assert m.resident_since >= m.birth_date


def test_foreign_residents_share_and_register_names(kanazawa: Population) -> None:
    """About 1.3 % of residents are foreign residents (1-2 %), of several nationalities; each
    name is the register's Latin name, family name first, in full-width capitals, with a
    katakana reading."""
    foreign = [r for r in kanazawa if r.foreign is not None]
    assert 1.0 <= _share(len(foreign), len(kanazawa)) <= 1.8
    assert len({r.foreign.nationality for r in foreign if r.foreign}) >= 8
    for r in foreign:
        assert LATIN_NAME.fullmatch(r.kanji_name), r.kanji_name
        assert KATAKANA.fullmatch(r.kana_name), r.kana_name
        assert not any(ch not in JIS_X0208 for ch in r.kanji_name)  # full-width Latin: no 外字


def test_foreign_residents_status_is_coherent(kanazawa: Population) -> None:
    """Every foreign resident's 区分, 在留資格, 在留期間 and 満了日 fit together: 特別永住者 and
    永住者 have no 在留期間 or expiry, every other status a period it may be granted for and an
    expiry within it; a 家族滞在 lives with a holder of a status that sponsors one."""
    foreign = [r for r in kanazawa if r.foreign is not None]
    problems = [(r.foreign, fr.incoherence(r.foreign, AS_OF)) for r in foreign if r.foreign
                and fr.incoherence(r.foreign, AS_OF)]
    assert not problems, problems[:5]
    statuses = Counter(r.foreign.residence_status for r in foreign if r.foreign)
    classes = Counter(r.foreign.foreign_resident_class for r in foreign if r.foreign)
    assert classes[fr.TOKUBETSU_EIJUSHA] > 0 and statuses[fr.EIJUSHA] > 0
    for status in (fr.GINO_JISSHU, fr.TOKUTEI_GINO, fr.RYUGAKU, fr.KAZOKU_TAIZAI):
        assert statuses[status] > 0, status
    for r in foreign:
        if r.foreign and r.foreign.residence_status == fr.KAZOKU_TAIZAI:
            household = kanazawa.households[r.setai_no]
            assert any(m.foreign and m.foreign.residence_status in fr.SPONSORS_KAZOKU_TAIZAI
                       for m in household)


def test_gaiji_with_and_without_substitute(kanazawa: Population) -> None:
    """About 3 % of names hold 外字: some have a substitute (代替文字変換結果 1) and some have none
    (代替文字変換結果 2), and those records still encode, keeping the 外字 as is."""
    sk = get_codec("soufusaki")
    gaiji = [r for r in kanazawa if r.has_gaiji]
    assert 1.5 <= _share(len(gaiji), len(kanazawa)) <= 4.5
    results: Counter[str] = Counter()
    for i, r in enumerate(gaiji):
        back = sk.decode(sk.encode(r.soufusaki(i, "20260401")))
        results[back["substitute_result"]] += 1
        assert back["kanji_name"] == r.kanji_name
        if back["substitute_result"] == "2":
            assert any(ch not in JIS_X0208 and ch not in SUBSTITUTES for ch in r.kanji_name)
    assert results["1"] > 0 and results["2"] > 0 and set(results) <= {"1", "2"}


def test_addresses_use_official_town_names(kanazawa: Population) -> None:
    """Every address names a real 町 of the official list, with a 丁目 it has (丁目・番・号) or,
    where it has none, a 番地; no address holds 外字 (the official forms are 崎, 高 …)."""
    for r in kanazawa:
        town, rest = _town_and_rest(r.address)
        assert town, r.address
        street = rest.split("\u3000")[0]
        chome = CHOME.fullmatch(street)
        if TOWN_BY_NAME[town].chome:
            assert chome and 1 <= int(chome.group(1)) <= TOWN_BY_NAME[town].chome, r.address
        else:
            assert BANCHI.fullmatch(street), r.address
        assert all(ch in JIS_X0208 for ch in r.address), r.address
    assert not any(ch in "﨑髙" for t in TOWN_NAMES for ch in t)


def test_every_record_encodes(kanazawa: Population) -> None:
    """Each resident's 本人確認情報, 副本 and 送付先情報 records encode and decode with the codec."""
    hk = get_codec("honnin-kakunin")
    fk = get_codec("fukuhon-juminhyo", "intermediate")
    sk = get_codec("soufusaki")
    for i, r in enumerate(kanazawa):
        rec = r.honnin_kakunin(change_reason="10", change_date="20260401", seq=i + 1,
                               request_no=i, timestamp="20260401093000")
        assert hk.decode(hk.encode(rec))["juminhyo_code"] == r.juminhyo_code
        back = fk.decode(fk.encode(r.fukuhon()))
        assert back["kanji_name"] == r.kanji_name
        assert (back["nationality"] is not None) == (r.foreign is not None)
        assert sk.decode(sk.encode(r.soufusaki(i, "20260401")))["kojin_bango"] == r.kojin_bango


def test_tsusho_and_kyuuji_are_drawn_and_carried_in_the_fukuhon(kanazawa: Population) -> None:
    """Some foreign residents aged 16+ hold a 通称 (more often 特別永住者), some Japanese wives a
    旧氏 (some with 外字); nobody else holds either; the 副本 carries them with their 外字数."""
    fk = get_codec("fukuhon-juminhyo", "intermediate")
    tsusho = [r for r in kanazawa if r.tsusho]
    kyuuji = [r for r in kanazawa if r.kyuuji]
    assert tsusho and kyuuji
    assert all(r.foreign and age_on(r.birth_date, AS_OF) >= 16 for r in tsusho)
    special = [r for r in kanazawa if r.foreign and r.foreign.foreign_resident_class == "2"]
    assert _share(sum(1 for r in special if r.tsusho), len(special)) > 20
    assert all(r.foreign is None and r.sex == "2" and r.relationship in (WIFE, "06030000")
               for r in kyuuji)
    wives = [r for r in kanazawa if r.foreign is None and r.relationship in (WIFE, "06030000")]
    assert 2 <= _share(len(kyuuji), len(wives)) <= 9
    for r in tsusho + kyuuji:
        back = fk.decode(fk.encode(r.fukuhon()))
        assert (back["alias_name"], back["former_surname"]) == (r.tsusho, r.kyuuji)
    assert any(fk.decode(fk.encode(r.fukuhon()))["former_surname_gaiji_count"] for r in kyuuji)


def test_newborn_and_relocation() -> None:
    """A newborn joins a plausible parent's household with fresh codes (a foreign resident's
    child is an 出生による経過滞在者); a relocation keeps the codes."""
    pop = build_population(300, seed=4, as_of=AS_OF, foreign_share=0.2)
    parent = pop.birth_parent()
    assert parent.sex == "2" and 20 <= age_on(parent.birth_date, AS_OF) <= 44
    baby = pop.newborn(parent)
    assert baby.setai_no == parent.setai_no and baby.birth_date == "20260401"
    assert baby.juminhyo_code not in {r.juminhyo_code for r in pop}
    moved = pop.relocated(parent)
    assert moved.juminhyo_code == parent.juminhyo_code and moved.address != parent.address
    foreign_head = next(r for r in pop if r.foreign and r.relationship == HEAD)
    child = pop.newborn(foreign_head)
    assert child.foreign == fr.born_here(foreign_head.foreign.nationality)  # type: ignore[union-attr]
    assert fr.incoherence(child.foreign, AS_OF) is None  # type: ignore[arg-type]
    assert child.kanji_name.split("\u3000")[0] == foreign_head.kanji_name.split("\u3000")[0]
