"""The seeded synthetic population: valid codes, households, foreign residents, 外字, encodable records."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

from juki_gateway.codecs.checkdigits import JUMINHYO_CODE, KOJIN_BANGO
from juki_gateway.codecs.gaiji import JIS_X0208, SUBSTITUTES
from juki_gateway.codecs.record import get_codec
from juki_gateway.simulators.kanazawa import TOWN_NAMES, TOWNS
from juki_gateway.simulators.population import build_population

AS_OF = dt.date(2026, 4, 1)
TOWN_BY_NAME = {t.name: t for t in TOWNS}
CHOME = re.compile("([０-９]+)丁目[０-９]+番[０-９]+号")
BANCHI = re.compile("[０-９]+番地[０-９]*")


def _town_and_rest(address: str) -> tuple[str, str]:
    assert address.startswith("石川県金沢市")
    rest = address.removeprefix("石川県金沢市")
    town = max((t for t in TOWN_NAMES if rest.startswith(t)), key=len, default="")
    return town, rest[len(town):]


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


def test_households_foreign_residents_and_gaiji() -> None:
    """Residents live in households with one 世帯主 each; some are foreign, some names hold 外字."""
    pop = build_population(2000, seed=2, as_of=AS_OF, gaiji_share=0.1, foreign_share=0.05)
    for members in pop.households.values():
        heads = [m for m in members if m.relationship == "01000000"]
        assert len(heads) == 1
        assert all(m.householder_name == heads[0].kanji_name for m in members)
        assert len({m.address for m in members}) == 1
    foreign = [r for r in pop if r.foreign is not None]
    # foreign_share is the share of households headed by a foreign resident
    assert 0.02 * len(pop.households) < len(foreign) < 0.1 * len(pop.households)
    assert all(len(r.foreign.nationality) == 3 for r in foreign if r.foreign)
    gaiji_names = [r for r in pop if any(ch in "髙﨑𠮷德" for ch in r.kanji_name)]
    assert len(gaiji_names) > 0.03 * len(pop)
    assert all(r.address.startswith("石川県金沢市") for r in pop)


def test_records_encode_with_the_codec_layouts() -> None:
    """Each resident's 本人確認情報, 副本 and 送付先 records encode and decode with the codec."""
    pop = build_population(300, seed=3, as_of=AS_OF, gaiji_share=0.2, foreign_share=0.1)
    hk = get_codec("honnin-kakunin")
    fk = get_codec("fukuhon-juminhyo", "intermediate")
    sk = get_codec("soufusaki")
    for i, r in enumerate(pop):
        rec = r.honnin_kakunin(change_reason="10", change_date="20260401", seq=i + 1,
                               request_no=i, timestamp="20260401093000")
        assert hk.decode(hk.encode(rec))["juminhyo_code"] == r.juminhyo_code
        back = fk.decode(fk.encode(r.fukuhon()))
        assert back["kanji_name"] == r.kanji_name
        assert (back["nationality"] is not None) == (r.foreign is not None)
        assert sk.decode(sk.encode(r.soufusaki(i, "20260401")))["kojin_bango"] == r.kojin_bango
    gaiji = [r for r in pop if "髙" in r.kanji_name]
    if gaiji:
        rec = hk.decode(hk.encode(gaiji[0].honnin_kakunin(
            change_reason="10", change_date="20260401", seq=1, request_no=1,
            timestamp="20260401093000")))
        assert rec["kanji_name_gaiji_count"] >= 1 and rec["gaiji_flag"] == "1"


def test_gaiji_with_and_without_substitute() -> None:
    """Some names hold 外字: some have a substitute (代替文字変換結果 1) and some have none
    (代替文字変換結果 2), and those records still encode, keeping the 外字 as is."""
    sk = get_codec("soufusaki")
    pop = build_population(3000, seed=9, as_of=AS_OF, gaiji_share=0.1)
    gaiji = [r for r in pop if r.has_gaiji]
    assert 0.05 * len(pop) <= len(gaiji) <= 0.15 * len(pop)
    results: Counter[str] = Counter()
    for i, r in enumerate(gaiji):
        back = sk.decode(sk.encode(r.soufusaki(i, "20260401")))
        results[back["substitute_result"]] += 1
        assert back["kanji_name"] == r.kanji_name
        if back["substitute_result"] == "2":
            assert any(ch not in JIS_X0208 and ch not in SUBSTITUTES for ch in r.kanji_name)
    assert results["1"] > 0 and results["2"] > 0 and set(results) <= {"1", "2"}


def test_addresses_use_official_town_names() -> None:
    """Every address names a real 町 of the official list, with a 丁目 it has (丁目・番・号) or,
    where it has none, a 番地; no address holds 外字 (the official forms are 崎, 高 …)."""
    for r in build_population(3000, seed=8, as_of=AS_OF):
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


def test_newborn_and_relocation() -> None:
    """A newborn joins the parent's household with fresh codes; a relocation keeps the codes."""
    pop = build_population(50, seed=4, as_of=AS_OF)
    parent = pop.residents[0]
    baby = pop.newborn(parent)
    assert baby.setai_no == parent.setai_no and baby.birth_date == "20260401"
    assert baby.juminhyo_code not in {r.juminhyo_code for r in pop}
    moved = pop.relocated(parent)
    assert moved.juminhyo_code == parent.juminhyo_code
