"""``simulate moving-season-hokuriku`` end to end: the moving season over 石川県 and 富山県.

``init --topology hokuriku``, real ``serve`` subprocesses on loopback, then the real
``juki-gateway simulate moving-season-hokuriku --duration short`` against them: every
municipality's existing system drives its own CS, people move within a city, within a
prefecture and across the two, are born and die; the run exits 0 only when every invariant held
(nothing lost; every existing system's resends of acknowledged frames acknowledged as
duplicates, never applied again; every 転入通知 followed by its 消除 at the old CS, 機構 holding each
person once at their newest address, every CS's file agreeing with its prefecture's and 機構's
in the consistency check). Also: ``simulate`` refuses a scenario of another topology than the
working directory's.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from juki_gateway.cli import main
from juki_gateway.gateway.initdir import init_workdir
from juki_gateway.gateway.topology import load_topology
from juki_gateway.simulators.season import scaled_sizes
from tests.gateway_support import Daemon, free_port_base, start_daemon, stop_all, wait_healthy
from tests.topology.test_hokuriku_split import DAEMONS, init_argv

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

#: every invariant the season checks, by name
INVARIANTS = {
    "every event ran to its end", "nothing lost (R4)", "nothing duplicated (R4)",
    "every acknowledged update reached 機構 exactly once (R4)",
    "every 特例転入 got its 転出証明書情報 through the chain",
    "every 転入通知 reached the old CS and was followed by its 消除",
    "機構 holds each person once, at their newest address",
    "every node's file agrees with 機構's (整合性確認)",
}


def simulate(config: Path, scenario: str, *extra: str, timeout: float = 240) -> \
        subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "juki_gateway", "simulate", scenario, "--config", str(config),
         "--no-progress", *extra], capture_output=True, text=True, timeout=timeout, check=False)


def check_season(summary: dict[str, Any], hops: set[str]) -> None:
    """The JSON summary of a season: every invariant held, with the figures behind them."""
    assert {i["name"] for i in summary["invariants"]} == INVARIANTS
    assert all(i["held"] for i in summary["invariants"]), summary["invariants"]
    assert summary["ok"] is True
    moves = summary["moves"]
    # moves ran to their end: 特例転入 fetched, 転入通知 delivered, 転出確定 and 消除 sent
    assert moves["tenshutsu_shomei_fetched"] >= 5
    assert (moves["tenshutsu_shomei_fetched"] == moves["move_in_notices_sent"]
            == moves["move_in_notices_delivered"] == moves["tenshutsu_kakutei"]
            == moves["shojo_sent"])
    details = {i["name"]: i["detail"] for i in summary["invariants"]}
    moved = details["every 転入通知 reached the old CS and was followed by its 消除"]
    within, across = (int(moved.split(" within")[0].split("(")[-1]),
                      int(moved.split(" across")[0].split(", ")[-1]))
    assert within > 0 and across > 0
    events = next(n for n in summary["notes"] if n.startswith("events: "))
    for kind in ("tenkyo", "shussei", "shibou"):
        assert f"{kind}=" in events
    assert "34 CSs checked against their prefecture and 機構" in \
        details["every node's file agrees with 機構's (整合性確認)"]
    # every existing system resent 2 acknowledged frames: each acknowledged as a duplicate
    assert details["nothing duplicated (R4)"].startswith(
        "68 resends of acknowledged frames"), details["nothing duplicated (R4)"]
    assert ": 68 acknowledged, 0 of them advancing" in details["nothing duplicated (R4)"]
    assert set(summary["hops"]) == hops
    for hop in ("pref-16", "pref-17", "kiko"):
        assert summary["hops"][hop]["applied"] > 0
        assert summary["hops"][hop]["refused"] == 0
    assert summary["hops"]["pref-17"]["acked"] > 0 and summary["hops"]["kiko"]["acked"] > 0


def test_population_follows_the_real_sizes() -> None:
    """3,000 residents over the 34 municipalities in proportion to the 2020 census, at least 12
    each: 金沢市 and 富山市 the largest, 舟橋村 raised to the minimum."""
    topo = load_topology("hokuriku")
    sizes = scaled_sizes(topo.municipalities, 3000, 12)
    assert len(sizes) == 34 and min(sizes.values()) == 12 == sizes["163210"]
    assert sizes["172014"] == round(3000 * 463254 / 2167340) == 641
    assert sorted(sizes, key=sizes.__getitem__)[-2:] == ["162019", "172014"]
    assert 3000 <= sum(sizes.values()) <= 3100


def test_simulate_refuses_a_scenario_of_another_topology(tmp_path: Path) -> None:
    """A kanazawa scenario against hokuriku's working directory, and the hokuriku season
    against kanazawa's: one line naming both topologies and the init to run, exit 2, before
    any connection is tried."""
    now = dt.datetime.now(dt.UTC)
    init_workdir(tmp_path / "hk", now, port_base=7100, topology=load_topology("hokuriku"))
    init_workdir(tmp_path / "kz", now, port_base=7100)
    out = simulate(tmp_path / "hk", "quickstart", timeout=60)
    assert out.returncode == 2
    assert ("error [wrong_topology]: scenario quickstart drives topology kanazawa, but "
            f"{tmp_path / 'hk' / 'gateway.toml'} has topology hokuriku's endpoints") in out.stderr
    out = simulate(tmp_path / "kz" / "gateway.toml", "moving-season-hokuriku", timeout=60)
    assert out.returncode == 2
    assert "has topology kanazawa's endpoints: run it on a working directory made by " \
        "'juki-gateway init DIR --topology hokuriku'" in out.stderr


def test_the_season_on_one_daemon_hosting_all_of_hokuriku(tmp_path: Path) -> None:
    """init --topology hokuriku, serve, simulate moving-season-hokuriku --duration short: exit
    0, every invariant held; a second season on the same 機構 is refused (its population is
    already there)."""
    root = tmp_path / "hk"
    topo = load_topology("hokuriku")
    init_workdir(root, dt.datetime.now(dt.UTC), port_base=free_port_base(topo.max_offset()),
                 topology=topo)
    daemon = start_daemon(root, timeout=90)
    try:
        out = simulate(root, "moving-season-hokuriku", "--duration", "short", "--json",
                       str(tmp_path / "season.json"))
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        assert "RESULT: all invariants held" in out.stdout
        check_season(json.loads((tmp_path / "season.json").read_text()),
                     {"pref-17", "pref-16", "kiko", "cs (34)"})
        again = simulate(root, "moving-season-hokuriku", "--duration", "short", timeout=120)
        assert again.returncode == 1
        assert "機構 already holds residents of this season's population" in again.stderr
    finally:
        assert daemon.stop(timeout=30) == 0



def test_the_season_on_three_daemons_with_kiko_on_postgresql(tmp_path: Path,
                                                             pg_schema_url: str) -> None:
    """init --topology hokuriku --daemon kiko=… --daemon ishikawa=… --daemon toyama=…
    --store-url kiko=<PostgreSQL>, three serve, then simulate moving-season-hokuriku --config
    DIR --duration short over all three (their gateway.toml read together): exit 0, every
    invariant held, 機構's file read from PostgreSQL (a fresh schema: an earlier test's 機構
    state is not this one's)."""
    root = tmp_path / "hk"
    assert main(init_argv(root, pg_schema_url)) == 0
    daemons: dict[str, Daemon] = {}
    try:
        for name in DAEMONS:
            daemons[name] = start_daemon(root / name, timeout=90)
        for name, daemon in daemons.items():
            code, body = wait_healthy(daemon.metrics_url, 90.0)
            assert code == 200, (name, body["reasons"])
        out = simulate(root, "moving-season-hokuriku", "--duration", "short", "--json",
                       str(tmp_path / "season.json"))
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        summary = json.loads((tmp_path / "season.json").read_text())
        check_season(summary, {"pref-17", "pref-16", "kiko", "cs (34)"})
        assert summary["target"] == "127.0.0.1 (40 endpoints)"
    finally:
        assert stop_all(daemons, timeout=30) == dict.fromkeys(daemons, 0)
