"""The moving season's own logic, without daemons: its settling when a fetch fails or the run
stops on an error, the 出生's write to 機構's store off the reactor thread, what 機構's file
is read to hold of a 消除者, and the stopping of several daemons when one hangs.

The end-to-end season (real daemons) is tests/topology/test_moving_season.py.
"""

from __future__ import annotations

import datetime as dt
import random
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.task import deferLater

from juki_gateway.gateway.topology import load_topology
from juki_gateway.registry_store import jukinet as st
from juki_gateway.registry_store.migrate import upgrade
from juki_gateway.simulators.client import ExchangeTimeout
from juki_gateway.simulators.drivers import Endpoints, update_record
from juki_gateway.simulators.kiko_numbers import Held, KikoNumbers
from juki_gateway.simulators.population import build_population
from juki_gateway.simulators.scenario import load_scenario
from juki_gateway.simulators.season import Clock, SeasonRun, run_season
from juki_gateway.simulators.summary import RunSummary
from tests.gateway_support import Daemon, stop_all

pytestmark = pytest.mark.timeout(60)
AS_OF = dt.date(2026, 4, 1)


def _kiko_store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'kiko.sqlite3'}"
    upgrade(url)
    return url


def _run(reactor: Any, systems: dict[str, Any], numbers: Any = None) -> SeasonRun:
    scenario = load_scenario("moving-season-hokuriku")
    return SeasonRun(reactor, scenario, None, RunSummary("moving-season-hokuriku"), load_topology("hokuriku"),  # type: ignore[arg-type]
                     numbers, Clock(scenario.as_of), random.Random(1), systems=systems)


class FakeSystem:
    """An existing system whose 転入通知 fetch is counted (and fails when told to)."""

    def __init__(self, name: str, fail: int = 0) -> None:
        self.name, self.fail, self.fetches = name, fail, 0
        self.disconnected_at: int | None = None
        self.moves = type("Ledger", (), {"moving_out": {"x": None}, "confirmed": []})()

    async def settle_move_ins(self) -> int:
        self.fetches += 1
        if self.fetches <= self.fail:
            raise ExchangeTimeout("no answer in time")
        return 0

    async def disconnect(self) -> None:
        self.disconnected_at = self.fetches


@pytest_twisted.ensureDeferred
async def test_one_systems_failed_fetch_does_not_end_the_others_settling() -> None:
    """A fetch that times out for one system is counted by system and code, and that system
    tries again at the next round while the others go on; settle itself does not fail."""
    from twisted.internet import reactor

    bad, good = FakeSystem("kizon-172014", fail=2), FakeSystem("kizon-162019")
    run = _run(reactor, {"172014": bad, "162019": good})
    await run.settle(lambda: good.fetches >= 4, poll=0.01)
    assert good.fetches == 4 and bad.fetches == 4
    assert run.settle_errors == {"kizon-172014: exchange_timeout": 2}


@pytest_twisted.ensureDeferred
async def test_a_run_that_fails_stops_settling_before_it_disconnects(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The events fail while the settling runs: run_season raises the events' error, and no
    system fetches again once it was disconnected (the settling was stopped and awaited)."""
    from twisted.internet import reactor

    fakes: list[FakeSystem] = []

    def build(self: SeasonRun) -> None:
        fakes.extend([FakeSystem("kizon-172014"), FakeSystem("kizon-162019")])
        self.systems = {f.name[6:]: f for f in fakes}  # type: ignore[misc]
        self.pops = {"172014": build_population(1, seed=1, as_of=AS_OF)}

    async def load(self: SeasonRun, tick: Any) -> None:
        self.events["loaded"] = 0

    async def events_for(self: SeasonRun, duration: float, tick: Any) -> None:
        await deferLater(reactor, 0.3, lambda: None)
        raise RuntimeError("the events stopped")

    monkeypatch.setattr(SeasonRun, "build", build)
    monkeypatch.setattr(SeasonRun, "load", load)
    monkeypatch.setattr(SeasonRun, "events_for", events_for)
    monkeypatch.setattr(SeasonRun, "settle", _fast_settle(SeasonRun.settle))
    ep = Endpoints("127.0.0.1", {}, tmp_path, kiko="kiko", kiko_store=_kiko_store(tmp_path))
    scenario = load_scenario("moving-season-hokuriku")
    with pytest.raises(RuntimeError, match="the events stopped"):
        await run_season(reactor, scenario, ep, load_topology("hokuriku"), RunSummary("moving-season-hokuriku"), 1.0,
                         lambda n: None)
    assert all(f.fetches > 0 and f.disconnected_at is not None for f in fakes)
    await deferLater(reactor, 0.3, lambda: None)
    assert [f.fetches for f in fakes] == [f.disconnected_at for f in fakes]


def _fast_settle(settle: Any) -> Any:
    async def fast(self: SeasonRun, until: Any, poll: float = 0.5) -> None:
        await settle(self, until, poll=0.02)
    return fast


@pytest_twisted.ensureDeferred
async def test_a_birth_is_recorded_at_kiko_off_the_reactor_thread_before_it_is_drawn(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """出生: 機構's store is written on a worker thread, and the baby joins its municipality's
    residents only once 機構 knows its 個人番号."""
    from twisted.internet import reactor

    seen: list[tuple[bool, int]] = []
    pop = build_population(5, seed=3, as_of=AS_OF)

    class Numbers:
        def register_one(self, baby: Any) -> None:
            seen.append((threading.current_thread() is threading.main_thread(),
                         len(pop.residents)))

    sent: list[bytes] = []

    class System:
        async def send_updates(self, records: list[bytes]) -> bool:
            sent.extend(records)
            return True

    run = _run(reactor, {"172014": System()}, Numbers())
    run.pops["172014"] = pop
    before = len(pop.residents)
    await run.shussei("172014", pop.residents[0])
    assert seen == [(False, before)]
    assert len(pop.residents) == before + 1 and len(sent) == 1


def test_kiko_places_name_a_deleted_person_apart_from_one_never_held(tmp_path: Path) -> None:
    """places(): a current resident's (市町村コード, 住所), a 消除者 only as Held.DELETED, and
    nothing for a code 機構 never held (so a dead person 機構 never had is not '消除者')."""
    url = _kiko_store(tmp_path)
    alive, dead, never = build_population(3, seed=7, as_of=AS_OF).residents[:3]
    numbers = KikoNumbers(url)
    try:
        numbers.register([alive, dead, never])
        records = [update_record(alive, "tenkyo", "20260401"),
                   update_record(dead, "tenkyo", "20260401"),
                   update_record(dead, "shibou", "20260402")]
        with numbers.engine.begin() as conn:
            st.apply_rows(conn, st.rows_from_records(records, 1), dt.datetime(2026, 4, 2))
        places = numbers.places([alive.juminhyo_code, dead.juminhyo_code, never.juminhyo_code])
    finally:
        numbers.close()
    assert places == {alive.juminhyo_code: ("172014", alive.address),
                      dead.juminhyo_code: Held.DELETED}


_HANGS = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', "
          "flush=True); time.sleep(60)")


def test_stop_all_stops_every_daemon_when_one_does_not_exit(tmp_path: Path) -> None:
    """One process ignores SIGTERM: it is killed after the timeout, the next one is still
    stopped, and the timeout is raised once both are gone."""
    procs = [subprocess.Popen([sys.executable, "-c", _HANGS], stdout=subprocess.PIPE),
             subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])]
    try:
        assert procs[0].stdout is not None and procs[0].stdout.readline() == b"up\n"
        daemons = {"hangs": Daemon(procs[0], tmp_path), "exits": Daemon(procs[1], tmp_path)}
        with pytest.raises(subprocess.TimeoutExpired):
            stop_all(daemons, timeout=0.5)
        assert [p.poll() for p in procs] == [-9, -15]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)
