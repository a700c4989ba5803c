"""Scenario files as data: the six shipped scenarios parse, and bad files get precise errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from juki_gateway.simulators.scenario import (
    SCENARIO_DIR,
    ScenarioError,
    load_scenario,
    parse_scenario,
)

SHIPPED = ("quickstart", "moving-season", "dv-protection", "link-outage", "bad-peers",
           "moving-season-hokuriku")


def test_shipped_scenarios_parse() -> None:
    """Every shipped scenario loads, and each one exercises what its name promises."""
    assert sorted(p.stem for p in SCENARIO_DIR.glob("*.toml")) == sorted(SHIPPED)
    s = {name: load_scenario(name) for name in SHIPPED}
    q = s["quickstart"]
    assert q.kizon_juki and q.bango_renkei and q.ipnw and q.dv.flagged > 0
    assert 30 <= q.duration <= 90
    assert q.moves.out_to_neighbour > 0 and q.moves.in_from_neighbour > 0
    assert s["moving-season"].moves.total > q.moves.total
    ms = s["moving-season"].kizon_juki
    assert ms is not None and ms.month in ms.peak_months
    assert ms.effective_rate() == ms.rate * ms.peak_factor
    assert s["dv-protection"].dv.flagged > 0 and s["dv-protection"].dv.query_share > 0
    assert {o.link for o in s["link-outage"].outages} == {
        "kizon-172014->cs-172014", "cs-172014->pref-17", "pref-17->kiko"}
    bp = s["bad-peers"].bad_peers
    assert min(bp.wrong_certificates, bp.malformed_frames, bp.broad_searches,
               bp.forged_permits, bp.replayed_permits) > 0
    assert {sc.topology for n, sc in s.items() if n != "moving-season-hokuriku"} == {"kanazawa"}
    hk = s["moving-season-hokuriku"]
    assert hk.topology == "hokuriku" and hk.season is not None and hk.kizon_juki is None
    assert 1000 <= hk.population <= 10_000 and hk.short_duration < hk.duration
    assert all(hk.season.mix[k] > 0 for k in ("tenkyo", "within_prefecture",
                                              "across_prefectures", "shussei", "shibou"))


def test_off_peak_month_uses_base_rate() -> None:
    """Outside March–April the existing system sends at its base rate."""
    s = parse_scenario({"scenario": {"name": "x"}, "kizon_juki": {"rate": 4, "month": 9}},
                       Path("x.toml"))
    assert s.kizon_juki is not None and s.kizon_juki.effective_rate() == 4.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "missing [scenario]"),
        ({"scenario": {"name": "x"}}, "drives nothing"),
        ({"scenario": {"name": "x", "topology": "kanto"}, "kizon_juki": {}},
         "'topology' must name a shipped topology (hokuriku, kanazawa), got 'kanto'"),
        ({"scenario": {"name": "x"}, "season": {"mix": {"marriage": 1}}},
         "unknown event 'marriage'"),
        ({"scenario": {"name": "x"}, "season": {}, "kizon_juki": {}},
         "[season] drives the whole topology alone"),
        ({"scenario": {"name": "x", "duration": 5, "short_duration": 9}, "season": {}},
         "'short_duration' must be at most 5.0"),
        ({"scenario": {"name": "x", "speed": 1}, "kizon_juki": {}}, "unknown keys ['speed']"),
        ({"scenario": {"name": "x", "duration": -1}, "kizon_juki": {}}, "'duration' must be at least"),
        ({"scenario": {"name": "x"}, "kizon_juki": {"rate": "fast"}}, "'rate' must be a float"),
        ({"scenario": {"name": "x"}, "kizon_juki": {"mix": {"marriage": 1}}}, "unknown event 'marriage'"),
        ({"scenario": {"name": "x"}, "kizon_juki": {"mix": {"tennyu": 0}}}, "positive weight"),
        ({"scenario": {"name": "x"}, "kizon_juki": {"peak_months": [13]}}, "integers 1..12"),
        ({"scenario": {"name": "x", "as_of": "April"}, "kizon_juki": {}}, "YYYY-MM-DD"),
        ({"scenario": {"name": "x", "population": 5}, "ipnw": {}, "dv": {"flagged": 9}}, "exceeds"),
        ({"scenario": {"name": "x", "duration": 10}, "kizon_juki": {},
          "outage": [{"link": "a", "at": 5, "duration": 9}]}, "ends after the run"),
        ({"scenario": {"name": "x"}, "ipnw": {"kouban": []}}, "at least one 項番"),
        ({"scenario": {"name": "x"}, "bad_peers": {"forged_permits": True}}, "must be a int"),
    ],
)
def test_bad_scenarios_are_refused(data: dict[str, object], message: str) -> None:
    """Each malformed scenario raises ScenarioError naming the problem."""
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, Path("bad.toml"))
    assert message in info.value.message
    assert info.value.message.startswith("bad.toml")


def test_unknown_scenario_lists_known_ones() -> None:
    """Asking for a scenario that does not exist names the shipped ones."""
    with pytest.raises(ScenarioError, match="quickstart"):
        load_scenario("no-such-scenario")
