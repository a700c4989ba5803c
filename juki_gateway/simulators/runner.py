"""Running a scenario against a live daemon: population, simulated systems, progress, summary.

:func:`run_scenario` builds the seeded population, starts each simulated system the scenario
names (:mod:`juki_gateway.simulators.drivers`) against the daemon's endpoints, shows a progress
bar, and returns the :class:`RunSummary` with every invariant checked. It takes the reactor as a
parameter; the CLI (``juki-gateway simulate``) is the one place that imports the global one.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import gatherResults

from juki_gateway.errors import JukiError
from juki_gateway.gateway.config import GatewayConfig
from juki_gateway.simulators.drivers import BadPeers, Endpoints, KizonJuki
from juki_gateway.simulators.population import build_population
from juki_gateway.simulators.scenario import KizonJuki as KizonConfig
from juki_gateway.simulators.scenario import Scenario, WrongTopology
from juki_gateway.simulators.summary import RunSummary

if TYPE_CHECKING:
    from juki_gateway.simulators.moves import MoveRun


def endpoints_from_config(config: GatewayConfig, overrides: Mapping[str, int] | None = None,
                          host: str | None = None) -> Endpoints:
    """The daemon's endpoints as its gateway.toml says, with per-name port overrides."""
    return endpoints_from_configs([config], overrides, host)


def endpoints_from_configs(configs: Sequence[GatewayConfig],
                           overrides: Mapping[str, int] | None = None,
                           host: str | None = None) -> Endpoints:
    """The endpoints of one daemon, or of the daemons of a split working directory (each
    ``gateway.toml`` hosting part of one topology, sharing one PKI), with per-name port
    overrides. ``admin`` and ``metrics`` are the first daemon's that has them; every daemon's
    metrics URL is kept."""
    first = configs[0]
    ports: dict[str, int] = {}
    metrics_urls = []
    stores: dict[str, str] = {}
    overrides = dict(overrides or {})
    for i, config in enumerate(configs):
        ports.update({ep.name: ep.port for ep in config.endpoints})
        if config.intermediate_endpoint() is not None or "admin" not in ports:
            ports["admin"] = config.admin.port
        ports.setdefault("metrics", config.metrics.port)
        # --endpoint metrics=PORT names the first daemon's metrics listener
        port = overrides["metrics"] if i == 0 and "metrics" in overrides else config.metrics.port
        metrics_urls.append(f"http://{host or _reachable(config.metrics.host)}:{port}/metrics")
        stores.update({name: node.store_url for name, node in config.jukinet.items()})
    ports.update(overrides)
    first_host = first.endpoints[0].host if first.endpoints else "127.0.0.1"
    owner = next((c for c in configs for ep in c.endpoints
                  if ep.role == "kiko" and ep.name in c.jukinet), None)
    kiko = next((ep.name for ep in owner.endpoints if ep.role == "kiko"
                 and ep.name in owner.jukinet), None) if owner is not None else None
    return Endpoints(host=host or first_host, ports=ports, pki=first.pki_dir,
                     workdir=first.workdir, kiko=kiko,
                     kiko_store=stores[kiko] if kiko is not None else None,
                     links=frozenset(lk.name for c in configs for lk in c.links),
                     metrics_urls=tuple(metrics_urls), stores=stores)


def _reachable(listen: str) -> str:
    """The address a listener bound to ``listen`` is reached at from this machine, as a URL
    writes it (a wildcard bind is reached on loopback; an IPv6 address in brackets)."""
    address = "127.0.0.1" if listen in ("", "0.0.0.0") else "::1" if listen == "::" else listen
    return f"[{address}]" if ":" in address else address


def _progress(total: int, enabled: bool, label: str) -> tuple[Callable[[int], None], Any]:
    if not enabled:
        return (lambda n: None), None
    from tqdm import tqdm

    bar = tqdm(total=total, desc=label, unit="msg", file=sys.stderr, leave=False,
               dynamic_ncols=True, disable=None)  # None: no bar when stderr is not a terminal
    return bar.update, bar


async def run_scenario(
    reactor: Any, scenario: Scenario, endpoints: Endpoints, *,
    duration: float | None = None, progress: bool = True,
    on_start: Callable[[RunSummary], None] | None = None,
) -> RunSummary:
    """Drive the daemon through ``scenario``; returns the summary (invariants checked).
    ``on_start`` gets the summary as the run starts (to print it, partial, if interrupted)."""
    run_for = duration if duration is not None else scenario.duration
    summary = RunSummary(scenario.name, target=f"{endpoints.host} ({len(endpoints.ports)} endpoints)")
    if on_start is not None:
        on_start(summary)
    if scenario.season is not None:
        return await _season(reactor, scenario, endpoints, summary, run_for, progress)
    population = build_population(scenario.population, seed=scenario.seed, as_of=scenario.as_of)
    initial = list(population.residents)  # what --prepare gave 符号 (events add residents later)
    expected = int((scenario.kizon_juki.effective_rate() if scenario.kizon_juki else 0) * run_for)
    expected += scenario.bad_peers.total
    expected += int((scenario.ipnw.rate if scenario.ipnw else 0) * run_for)
    expected += scenario.population if scenario.bango_renkei else 0
    tick, bar = _progress(expected, progress, scenario.name)
    summary.started = reactor.seconds()
    tasks = []
    kizon = None
    numbers = None
    moves = None
    if scenario.kizon_juki is not None:
        kizon = KizonJuki(reactor, scenario.kizon_juki, population, endpoints, summary,
                          outages=scenario.outages)
        if endpoints.kiko_store is not None:
            from juki_gateway.simulators.kiko_numbers import KikoNumbers

            numbers = KikoNumbers(endpoints.kiko_store)
            numbers.register(population.residents)
            kizon.on_new_person = numbers.register_one
        else:
            summary.notes.append("no 機構 store in this working directory: the population's "
                                 "個人番号 are unknown to 機構, which refuses them (5114)")
        moves = _moves(reactor, scenario, kizon, endpoints, summary)
        tasks.append(_events_then_moves(reactor, scenario, kizon, moves, run_for, tick))
    bad = None
    if scenario.bad_peers.total:
        bad = BadPeers(reactor, scenario.bad_peers, population, endpoints, summary)
        tasks.append(bad.run(tick))
    daemon_outages = [o for o in scenario.outages if kizon is None or o.link != kizon.link]
    cuts = None
    if daemon_outages and endpoints.workdir is not None:
        from juki_gateway.simulators.daemon_links import DaemonLinkOutages

        cuts = DaemonLinkOutages(reactor, endpoints.workdir, daemon_outages, summary)
        tasks.append(cuts.run(run_for))
    elif daemon_outages:
        summary.notes.append("daemon link outages not injected: no working directory to switch")
    probe = None
    if kizon is not None and endpoints.kiko is not None and "metrics" in endpoints.ports:
        from juki_gateway.simulators.daemon_links import ChainProbe

        probe = ChainProbe(reactor, f"http://{endpoints.host}:{endpoints.port('metrics')}/metrics",
                           endpoints.kiko)
        await probe.start()
    ims_task = None
    ipnw = None
    if scenario.bango_renkei is not None or scenario.ipnw is not None:
        from juki_gateway.simulators.intermediate import (
            BangoRenkei,
            Ipnw,
            flag_residents,
            obtain_fugos,
        )

        renkei = (BangoRenkei(reactor, scenario.bango_renkei, population, endpoints, summary,
                              people=initial)
                  if scenario.bango_renkei is not None else None)
        if scenario.ipnw is not None:
            ipnw = Ipnw(reactor, scenario.ipnw, scenario.dv, scenario.bad_peers, population,
                        endpoints, summary, registered=set())

        async def intermediate() -> None:
            if renkei is not None:
                # the municipality's 既存住基 sends the 住民票コード of each 処理通番 (the run's
                # own KizonJuki, in its one numbering, or one for this alone)
                sender = kizon or KizonJuki(reactor, KizonConfig(), population, endpoints,
                                            summary)
                try:
                    fugos = await obtain_fugos(reactor, endpoints, renkei.people, summary,
                                               sender)
                finally:
                    if kizon is None:
                        await sender.disconnect()
                if ipnw is not None:
                    ipnw.fugos = fugos
                await renkei.run(tick)
            if ipnw is None:
                return
            ipnw.registered = (renkei.registered if renkei is not None
                               else {r.atena_no for r in population})
            chosen = [r for r in population.residents if r.atena_no in ipnw.registered]
            chosen = chosen[: scenario.dv.flagged]
            if chosen:
                review = (scenario.as_of + dt.timedelta(days=365)).strftime("%Y%m%d")
                await flag_residents(reactor, endpoints, endpoints.port("admin"), chosen, review)
                ipnw.flagged = {r.atena_no for r in chosen}
                summary.notes.append(f"{len(chosen)} residents flagged by op-alice, "
                                     "confirmed by op-bob")
            left = run_for - (reactor.seconds() - summary.started)
            await ipnw.run(max(left, 1.0), tick)

        ims_task = intermediate()
        tasks.append(ims_task)
    from twisted.internet.defer import Deferred

    async def guarded(name: str, task: Any) -> None:
        try:
            await task
        except JukiError as exc:
            summary.check(f"{name} ran to the end", False, f"stopped: [{exc.code}] {exc.message}")

    names = ((["kizon-juki"] if kizon else []) + (["bad-peers"] if bad else [])
             + (["daemon link outages"] if cuts else [])
             + (["bango-renkei/ipnw"] if ims_task is not None else []))
    try:
        await gatherResults([Deferred.fromCoroutine(guarded(n, t)) for n, t in zip(names, tasks, strict=True)],
                            consumeErrors=True)
    finally:
        if bar is not None:
            bar.close()
        summary.finished = reactor.seconds()
        if kizon is not None:
            await kizon.close()
            if moves is not None:
                await moves.neighbour.disconnect()
            if probe is not None:
                sent = kizon.updates_acked + (moves.neighbour.updates_acked if moves else 0)
                await probe.check(summary, sent, kizon.cs)
            if moves is not None:
                from juki_gateway.simulators.moves import check_moves

                await check_moves(reactor, moves, kizon, summary, numbers)
        if cuts is not None:
            summary.check("daemon links restored", not cuts.still_held(),
                          f"held after the run: {', '.join(cuts.still_held()) or 'none'}")
        if bad is not None:
            bad.finish()
        if ipnw is not None:
            ipnw.finish()
        if numbers is not None:
            numbers.close()
    return summary


async def _season(reactor: Any, scenario: Scenario, endpoints: Endpoints, summary: RunSummary,
                  run_for: float, progress: bool) -> RunSummary:
    """A moving season over the whole topology (:mod:`juki_gateway.simulators.season`)."""
    from juki_gateway.gateway.topology import load_topology
    from juki_gateway.simulators.season import run_season

    assert scenario.season is not None
    topology = load_topology(scenario.topology)
    expected = scenario.population + int(scenario.season.rate * run_for)
    tick, bar = _progress(expected, progress, scenario.name)
    summary.started = reactor.seconds()
    try:
        await run_season(reactor, scenario, endpoints, topology, summary, run_for, tick)
    finally:
        if bar is not None:
            bar.close()
        summary.finished = reactor.seconds()
    return summary


def workdir_topology(endpoint_names: Iterable[str]) -> str | None:
    """The shipped topology whose endpoints a working directory (one daemon's or the daemons'
    of a split one together) has, exactly; None for any other."""
    from juki_gateway.gateway.topology import builtin_topologies, load_topology

    names = set(endpoint_names)
    return next((t for t in builtin_topologies()
                 if {e.name for e in load_topology(t).endpoints} == names), None)


def check_topology(scenario: Scenario, endpoint_names: Iterable[str], where: str) -> None:
    """Refuse a scenario made for another topology than the working directory's: a scenario
    of a topology other than ``kanazawa`` needs exactly that topology's endpoints; a
    ``kanazawa`` scenario runs anywhere but against another shipped topology."""
    found = workdir_topology(endpoint_names)
    if scenario.topology == found:
        return
    if scenario.topology == "kanazawa" and found is None:
        return  # a working directory of its own making: the kanazawa scenarios as before
    what = f"topology {found}'s" if found is not None else "not a shipped topology's"
    raise WrongTopology(
        f"scenario {scenario.name} drives topology {scenario.topology}, but {where} has "
        f"{what} endpoints: run it on a working directory made by 'juki-gateway init DIR"
        + ("" if scenario.topology == "kanazawa" else f" --topology {scenario.topology}") + "'")


def _moves(reactor: Any, scenario: Scenario, kizon: KizonJuki, endpoints: Endpoints,
           summary: RunSummary) -> MoveRun | None:
    """The run's moves with 野々市市, when the scenario asks for some and the daemon's topology
    carries 転入通知 to Kanazawa's CS (docs/moves.md)."""
    from juki_gateway.simulators.moves import NEEDED_LINKS, MoveRun, neighbour_cs

    if not scenario.moves.total:
        return None
    missing = sorted(NEEDED_LINKS - endpoints.links)
    if missing:
        summary.notes.append(f"moves with 野々市市 not run: the daemon has no link {', '.join(missing)}")
        return None
    return MoveRun(neighbour_cs(reactor, kizon.population, kizon, summary))


async def _events_then_moves(reactor: Any, scenario: Scenario, kizon: KizonJuki,
                             moves: MoveRun | None, run_for: float,
                             tick: Callable[[int], None]) -> None:
    """The existing system's resident events, then the moves (one exchange at a time on its
    link)."""
    await kizon.run(run_for, tick)
    if moves is not None:
        from juki_gateway.simulators.moves import run_moves

        await run_moves(reactor, scenario.moves, kizon, moves, tick)


def write_json(summary: RunSummary, path: Path) -> None:
    """Write the summary as JSON (``--json FILE``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(summary.to_json(), encoding="utf-8")
