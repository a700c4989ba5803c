"""A moving season over a whole topology (scenario table ``[season]``; docs/moves.md, "A moving
season over hokuriku").

Every municipality of the working directory's topology gets a population in proportion to its
real size (the topology's ``population``, scaled to the scenario's total, at least
``min_per_municipality`` each) at addresses of its own, and its own existing system: a
:class:`~juki_gateway.simulators.drivers.KizonJuki` under ``kizon-<code>`` connected to
``cs-<code>``. :func:`run_season`:

1. records every resident's 個人番号 at 機構 as generated there, then has each existing system
   send the residents it holds (職権記載, dated the day before the season, in frames of
   :data:`LOAD_FRAME` records, all municipalities at once);
2. for the scenario's duration draws events at its rate across the network (the municipality
   in proportion to its residents, the kind by the mix), at most ``concurrency`` in flight,
   never two about one person: 転居; 出生 (機構 first learns the baby's 個人番号); 死亡; moves to
   another municipality of the same prefecture or of the other one, each run to its end —
   特例転出 at the old municipality (転出証明書情報 to its CS), 特例転入 at the new one (the
   転出証明書情報 fetched through the chain), 転入 and 転入通知; meanwhile every old
   municipality's existing system fetches the 転入通知 that reached its CS, records 転出確定
   and sends the 消除;
3. settles the moves, has each system resend a few frames its CS had acknowledged (R4),
   closes the systems, waits for every daemon's outboxes to drain, and
   checks the invariants (below) and the per-hop figures of every daemon's ``/metrics``.

Every record of steps 2 and 3 carries a タイムスタンプ of the network's one clock
(:class:`Clock`, from 00:00:01 of the season's first day), so updates about one person from two
municipalities compare in the order they were made wherever they meet (a prefecture, 機構). The
職権記載 records of step 1 carry their change date's 09:00:00 (the day before the season),
earlier than every event's.

The resends of step 3 are :data:`DUPLICATES_PER_SYSTEM` frames per system, drawn among those
acknowledged, sent as they were.

Invariants: nothing lost (R4, over all existing systems); nothing duplicated (R4: every resend
acknowledged as a duplicate, none advancing an acknowledgement, the CSs counting their records
``duplicate``); every acknowledged update applied at 機構 exactly once; every 特例転入 got its
転出証明書情報; every 転入通知 reached the old CS and was followed by its 消除 (the old CS's file
holds the person as a 消除者); 機構 holds each person once, at their newest address, and every
dead person as a 消除者 (its store read directly); and every node's file agrees with 機構's: the
consistency check (整合性確認, CONSISTENCY_CHUNK) of every CS against its prefecture and against
機構, run at the end over the CS's own mutual-TLS identity, each comparing every current
resident of the CS's file, and each file's size equal to the sum of its municipalities'.
"""

from __future__ import annotations

import datetime as dt
import operator
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from twisted.internet.defer import Deferred, DeferredSemaphore, gatherResults
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from juki_gateway.errors import JukiError, error_label
from juki_gateway.gateway.jukinet.requests import RemoteError
from juki_gateway.gateway.topology import Municipality, Topology
from juki_gateway.simulators.drivers import Endpoints, KizonJuki, update_record
from juki_gateway.simulators.kiko_numbers import Held, KikoNumbers
from juki_gateway.simulators.population import (
    GENERIC_TOWNS,
    KANAZAWA,
    KANAZAWA_PLACE,
    Place,
    Population,
    Resident,
    build_population,
)
from juki_gateway.simulators.scenario import KizonJuki as KizonConfig
from juki_gateway.simulators.scenario import Scenario
from juki_gateway.simulators.summary import RunSummary

#: residents per frame of the initial load (the first frame of each system is one record: it
#: learns where its CS's numbering stands)
LOAD_FRAME = 200
#: acknowledged frames each existing system resends at the end of the events (R4: acknowledged
#: as duplicates, never applied twice)
DUPLICATES_PER_SYSTEM = 2
#: the first two digits of the postal codes of each prefecture (石川 92x, 富山 93x)
POSTAL_PREFIX: Mapping[str, str] = {"17": "92", "16": "93"}
#: metric names the per-hop figures read
MESSAGES = "juki_gateway_jukinet_messages_total"
ERRORS = "juki_gateway_jukinet_errors_total"
LATENCY = "juki_gateway_jukinet_ack_latency_seconds"
DEPTH = "juki_gateway_jukinet_outbox_depth"


class SeasonError(JukiError):
    """The moving season cannot start against this working directory."""

    code = "season"


@dataclass
class Clock:
    """The network's one clock of タイムスタンプ: each record one second after the last, from
    the start of ``day``."""

    day: dt.date
    ticks: int = 0

    def __call__(self) -> str:
        self.ticks += 1
        when = dt.datetime.combine(self.day, dt.time()) + dt.timedelta(seconds=self.ticks)
        return when.strftime("%Y%m%d%H%M%S")


def scaled_sizes(municipalities: Iterable[Municipality], total: int,
                 minimum: int) -> dict[str, int]:
    """Residents per municipality: ``total`` shared in proportion to the real populations, at
    least ``minimum`` each."""
    towns = list(municipalities)
    whole = sum(m.population for m in towns)
    return {m.code: max(minimum, round(total * m.population / whole)) for m in towns}


def place_of(topology: Topology, m: Municipality) -> Place:
    """Where ``m``'s residents live: 金沢市 with its real 町名, another municipality with
    generic ones."""
    if m.code == KANAZAWA:
        return KANAZAWA_PLACE
    prefecture = next(p for p in topology.prefectures if p.number == m.prefecture)
    return Place(m.code, prefecture.name, m.name, GENERIC_TOWNS,
                 POSTAL_PREFIX.get(m.prefecture, "10"))


@dataclass
class Move:
    """One person's move between municipalities, and how far it got."""

    code: str
    old: str
    new: str
    across: bool


def _sum(samples: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
         match: Callable[[dict[str, str]], bool]) -> float:
    return sum(v for (n, labels), v in samples.items() if n == name and match(dict(labels)))


@dataclass
class Hops:
    """Per-hop figures from the daemons' metrics: what each prefecture, 機構 and the CSs
    applied, had acknowledged by the next hop, refused, and the latency of those ACKs."""

    urls: tuple[str, ...]
    groups: Mapping[str, Callable[[str], bool]]
    before: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)

    async def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every daemon's samples (node labels are unique across daemons)."""
        from juki_gateway.gateway.metrics import scrape_metrics

        out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for url in self.urls:
            out.update(await deferToThread(scrape_metrics, url))
        return out

    async def start(self) -> None:
        self.before = await self.scrape()

    def delta(self, after: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
              match: Callable[[dict[str, str]], bool]) -> float:
        return _sum(after, name, match) - _sum(self.before, name, match)

    def figures(self, after: Mapping[tuple[str, tuple[tuple[str, str], ...]], float]
                ) -> dict[str, dict[str, float]]:
        """Per group: records applied (received and committed), acknowledged by the next hop,
        refusals sent, and the mean ACK latency with the upper bound of the bucket holding its
        99th percentile (ms)."""
        out = {}
        for group, member in self.groups.items():
            def at(result: str | None = None, le: str | None = None,
                   member: Callable[[str], bool] = member) -> Callable[[dict[str, str]], bool]:
                return _labels(member, result, le)

            count = self.delta(after, f"{LATENCY}_count", at())
            total = self.delta(after, f"{LATENCY}_sum", at())
            bounds = sorted({float(dict(lb)["le"]) for n, lb in after
                             if n == f"{LATENCY}_bucket" and member(dict(lb).get("node", ""))})
            p99 = next((b for b in bounds if self.delta(
                after, f"{LATENCY}_bucket", at(le=_le(b))) >= 0.99 * count), float("inf"))
            out[group] = {
                "applied": self.delta(after, MESSAGES, at("applied")),
                "acked": self.delta(after, MESSAGES, at("acked")),
                "refused": self.delta(after, ERRORS, at()),
                "ack_mean_ms": round(total / count * 1000, 2) if count else 0.0,
                "ack_p99_ms_at_most": p99 * 1000 if count else 0.0,
            }
        return out


def _labels(member: Callable[[str], bool], result: str | None,
            le: str | None) -> Callable[[dict[str, str]], bool]:
    """A sample filter: a node of the group, with that result and bucket when given."""
    def match(lb: dict[str, str]) -> bool:
        return (member(lb.get("node", "")) and (result is None or lb.get("result") == result)
                and (le is None or lb.get("le") == le))
    return match


def _le(bound: float) -> str:
    """A histogram bucket's ``le`` label as the exposition writes it."""
    return "+Inf" if bound == float("inf") else repr(bound)


@dataclass
class SeasonRun:
    """One moving season: the populations, the existing systems and what happened."""

    reactor: Any
    scenario: Scenario
    endpoints: Endpoints
    summary: RunSummary
    topology: Topology
    numbers: KikoNumbers
    clock: Clock
    rng: random.Random
    pops: dict[str, Population] = field(default_factory=dict)
    systems: dict[str, KizonJuki] = field(default_factory=dict)
    #: each living resident's newest (市町村コード, 住所)
    where: dict[str, tuple[str, str]] = field(default_factory=dict)
    dead: set[str] = field(default_factory=set)
    moves: list[Move] = field(default_factory=list)
    failed_moves: list[str] = field(default_factory=list)
    #: events that stopped on an error (kind: code)
    errors: list[str] = field(default_factory=list)
    #: fetches of 転入通知 that failed, by system and error code (tried again next round)
    settle_errors: Counter[str] = field(default_factory=Counter)
    busy: set[str] = field(default_factory=set)
    events: Counter[str] = field(default_factory=Counter)

    @property
    def day(self) -> str:
        return self.scenario.as_of.strftime("%Y%m%d")

    # -- set-up ---------------------------------------------------------------------------
    def build(self) -> None:
        """The populations and the existing systems, one per municipality."""
        assert self.scenario.season is not None
        sizes = scaled_sizes(self.topology.municipalities, self.scenario.population,
                             self.scenario.season.min_per_municipality)
        codes: set[str] = set()
        for i, m in enumerate(self.topology.municipalities):
            pop = build_population(sizes[m.code], seed=self.scenario.seed * 100 + i,
                                   as_of=self.scenario.as_of, place=place_of(self.topology, m),
                                   codes=codes)
            self.pops[m.code] = pop
            self.systems[m.code] = KizonJuki(
                self.reactor, KizonConfig(), pop, self.endpoints, self.summary, name=m.kizon,
                cs=m.node, org=m.code, home=None, stamp=self.clock)
            for r in pop.residents:
                self.where[r.juminhyo_code] = (m.code, r.address)

    async def load(self, tick: Callable[[int], None]) -> None:
        """Each existing system sends the residents it holds (職権記載), all at once."""
        before = (self.scenario.as_of - dt.timedelta(days=1)).strftime("%Y%m%d")

        async def one(code: str) -> None:
            system, residents = self.systems[code], self.pops[code].residents
            records = [update_record(r, "shokken_kisai", before, lg_code=code)
                       for r in residents]
            for start in [0, *range(1, len(records), LOAD_FRAME)]:
                end = 1 if start == 0 else min(start + LOAD_FRAME, len(records))
                await system.send_updates(records[start:end])
                tick(end - start)

        await gatherResults([_deferred(one(code)) for code in self.systems], consumeErrors=True)
        self.events["loaded"] = sum(len(p.residents) for p in self.pops.values())

    # -- events ---------------------------------------------------------------------------
    def _town(self, exclude: str | None = None, prefecture: str | None = None,
              across: bool = False) -> str | None:
        """A municipality in proportion to its residents (``exclude`` left out; with
        ``prefecture``, one of it, or with ``across`` one of another)."""
        towns = [m for m in self.topology.municipalities if m.code != exclude and (
            prefecture is None or (m.prefecture != prefecture) == across)]
        weights = [len(self.pops[m.code].residents) for m in towns]
        if not towns or not any(weights):
            return None
        return self.rng.choices(towns, weights=weights)[0].code

    def _pick(self, code: str) -> Resident | None:
        """A resident of ``code`` no event is about right now (None after a few tries)."""
        residents = self.pops[code].residents
        for _ in range(20):
            if not residents:
                return None
            person = self.rng.choice(residents)
            if person.juminhyo_code not in self.busy:
                self.busy.add(person.juminhyo_code)
                return person
        return None

    def _leave(self, code: str, person: Resident) -> None:
        self.pops[code].residents.remove(person)

    async def tenkyo(self, code: str, person: Resident) -> None:
        pop = self.pops[code]
        moved = pop.relocated(person)
        pop.residents[pop.residents.index(person)] = moved
        self.where[person.juminhyo_code] = (code, moved.address)
        await self.systems[code].send_updates([update_record(
            moved, "tenkyo", self.day, lg_code=code, timestamp=self.clock())])

    async def shussei(self, code: str, parent: Resident) -> None:
        pop = self.pops[code]
        baby = pop.newborn(parent)
        # 機構 generated the baby's 個人番号 (its store written off the reactor thread); the
        # baby joins the population only then, so no other event is about it before its 出生
        await deferToThread(self.numbers.register_one, baby)
        pop.residents.append(baby)
        self.where[baby.juminhyo_code] = (code, baby.address)
        await self.systems[code].send_updates([update_record(
            baby, "shussei", self.day, lg_code=code, timestamp=self.clock())])

    async def shibou(self, code: str, person: Resident) -> None:
        self._leave(code, person)
        del self.where[person.juminhyo_code]
        self.dead.add(person.juminhyo_code)
        await self.systems[code].send_updates([update_record(
            person, "shibou", self.day, lg_code=code, timestamp=self.clock())])

    async def move(self, old: str, person: Resident, across: bool) -> None:
        """特例転出 at ``old``, 特例転入 at a municipality of the same prefecture (or, with
        ``across``, of the other), 転入 and 転入通知 there."""
        new = self._town(exclude=old, prefecture=old[:2], across=across)
        if new is None:
            return
        target = self.pops[new].relocated(person)
        code = person.juminhyo_code
        await self.systems[old].tokurei_tenshutsu(person, new, target.address, self.day)
        try:
            shomei = await self.systems[new].request_tenshutsu_shomei(code, person.birth_date, old)
        except RemoteError as exc:
            self.failed_moves.append(f"{old}->{new}: {exc.remote_name}")
            return
        if shomei["old_address"] != person.address or shomei["new_lg_code"] != new:
            self.failed_moves.append(f"{old}->{new}: the 転出証明書情報 was not the person's")
            return
        arrived = replace(target, address=str(shomei["new_address"]))
        self._leave(old, person)
        self.where[code] = (new, arrived.address)
        self.moves.append(Move(code, old, new, across))
        await self.systems[new].move_in(arrived, old, str(shomei["old_address"]), self.day)

    async def event(self) -> None:
        """One event drawn by the mix (nothing when no resident is free for it)."""
        assert self.scenario.season is not None
        mix = self.scenario.season.mix
        kind = self.rng.choices(list(mix), weights=list(mix.values()))[0]
        code = self._town()
        person = self._pick(code) if code is not None else None
        if code is None or person is None:
            self.events["skipped"] += 1
            return
        try:
            if kind == "tenkyo":
                await self.tenkyo(code, person)
            elif kind == "shussei":
                await self.shussei(code, person)
            elif kind == "shibou":
                await self.shibou(code, person)
            else:
                await self.move(code, person, across=kind == "across_prefectures")
            self.events[kind] += 1
        except JukiError as exc:
            self.errors.append(f"{kind}: {exc.code}")
        finally:
            if kind not in ("within_prefecture", "across_prefectures"):
                self.busy.discard(person.juminhyo_code)  # a mover stays out of later events

    async def events_for(self, duration: float, tick: Callable[[int], None]) -> None:
        """Events at the season's rate for ``duration`` seconds, at most ``concurrency`` at once."""
        assert self.scenario.season is not None
        season = self.scenario.season
        gate = DeferredSemaphore(season.concurrency)
        running: list[Any] = []
        start = self.reactor.seconds()
        n = 0
        while self.reactor.seconds() - start < duration:
            await gate.acquire()
            d = _deferred(self.event())
            d.addBoth(_released, gate, tick)
            running.append(d)
            n += 1
            wait = start + n / season.rate - self.reactor.seconds()
            if wait > 0:
                await deferLater(self.reactor, wait, lambda: None)
        await gatherResults(running, consumeErrors=True)

    async def settle(self, until: Callable[[], bool], poll: float = 0.5) -> None:
        """Every old municipality's existing system fetches the 転入通知 its CS holds (転出確定,
        消除), again and again until ``until()``. A system whose fetch fails (no answer in
        time, refused) is counted in :attr:`settle_errors` and tries again at the next round;
        the others go on."""
        while True:
            pending = [s for s in self.systems.values() if s.moves.moving_out]
            await gatherResults([_deferred(self._settle_one(s)) for s in pending],
                                consumeErrors=True)
            if until():
                return
            await deferLater(self.reactor, poll, lambda: None)

    async def _settle_one(self, system: KizonJuki) -> None:
        try:
            await system.settle_move_ins()
        except JukiError as exc:  # its name and the error's code: no resident data
            self.settle_errors[f"{system.name}: {exc.code}"] += 1

    async def resend_acknowledged(self, per_system: int = DUPLICATES_PER_SYSTEM) -> None:
        """Each existing system resends ``per_system`` of its acknowledged frames (R4: each is
        acknowledged as a duplicate, not applied again; :class:`KizonJuki` counts them)."""
        async def one(system: KizonJuki) -> None:
            acked = system.acknowledged()
            for seq in sorted(self.rng.sample(acked, min(per_system, len(acked)))):
                await system.resend_acknowledged(seq)

        await gatherResults([_deferred(one(s)) for s in self.systems.values()],
                            consumeErrors=True)

    def all_confirmed(self) -> bool:
        return all(m.code in self.systems[m.old].moves.confirmed for m in self.moves)


def _deferred(coro: Any) -> Deferred[Any]:
    return Deferred.fromCoroutine(coro)


def _released(result: Any, gate: DeferredSemaphore, tick: Callable[[int], None]) -> Any:
    """An event ended (whatever its result): its place in the gate is free, one more done."""
    gate.release()
    tick(1)
    return result


def _checked(check: Callable[[Municipality], Any], m: Municipality) -> Deferred[Any]:
    return _deferred(check(m))


def _groups(topology: Topology, kiko: str) -> dict[str, Callable[[str], bool]]:
    out: dict[str, Callable[[str], bool]] = {
        p.node: partial(operator.eq, p.node) for p in topology.prefectures}
    out[kiko] = lambda n: n == kiko
    out[f"cs ({len(topology.municipalities)})"] = lambda n: n.startswith("cs-")
    return out


async def run_season(reactor: Any, scenario: Scenario, endpoints: Endpoints, topology: Topology,
                     summary: RunSummary, duration: float, tick: Callable[[int], None]) -> None:
    """The whole season against the daemon(s) of ``endpoints`` (see the module docstring)."""
    if endpoints.kiko is None or endpoints.kiko_store is None:
        raise SeasonError("the moving season reads 機構's store: no daemon of this working "
                          "directory hosts 機構")
    numbers = KikoNumbers(endpoints.kiko_store)
    run = SeasonRun(reactor, scenario, endpoints, summary, topology, numbers,
                    Clock(scenario.as_of), random.Random(scenario.seed))
    # the settling ends once the events are over and every move is confirmed (or 60 s more
    # have passed), or at once when the run stops on an error
    done, stop = [False], [False]
    deadline = [float("inf")]
    settling: Deferred[Any] | None = None
    try:
        run.build()
        held = await deferToThread(numbers.places, sorted(run.where)[:500])
        earlier = [c for c, place in held.items() if place]
        if earlier:
            raise SeasonError(
                f"機構 already holds residents of this season's population (an "
                f"earlier run): run {scenario.name} on a fresh working directory (init --topology "
                f"{topology.name})")
        await deferToThread(numbers.register,
                            [r for p in run.pops.values() for r in p.residents])
        hops = Hops(endpoints.metrics_urls, _groups(topology, endpoints.kiko))
        await hops.start()
        await run.load(tick)
        summary.notes.append(
            f"{len(run.pops)} municipalities, {run.events['loaded']} residents (from "
            f"{min(len(p.residents) for p in run.pops.values())} to "
            f"{max(len(p.residents) for p in run.pops.values())}), each municipality's existing "
            "system (kizon-<code>) sent its own (職権記載)")
        settling = _deferred(run.settle(lambda: stop[0] or (done[0] and (
            run.all_confirmed() or reactor.seconds() > deadline[0]))))
        await run.events_for(duration, tick)
        done[0] = True
        deadline[0] = reactor.seconds() + 60.0
        await settling
        await run.resend_acknowledged()
        for system in run.systems.values():
            await system.close(check=False)
        await _check(run, hops)
    finally:
        if settling is not None:  # its round in progress ends, no other begins
            stop[0] = True
            await settling
        for system in run.systems.values():
            await system.disconnect()
        numbers.close()


async def _check(run: SeasonRun, hops: Hops) -> None:
    """The season's invariants and figures (see the module docstring)."""
    summary, systems = run.summary, run.systems.values()
    summary.check("every event ran to its end", not run.errors,
                  f"{sum(n for k, n in run.events.items() if k not in ('loaded', 'skipped'))} "
                  f"events; stopped on an error: {', '.join(run.errors[:5]) or 'none'}")
    last = sum(s.last_sent for s in systems)
    acked = sum(s.acked_upto for s in systems)
    summary.check("nothing lost (R4)", acked == last,
                  f"{acked} of {last} numbers acknowledged by the {len(systems)} CSs")
    # drained: every daemon's outboxes empty and 機構 applied every acknowledged update
    updates = sum(s.updates_acked for s in systems)
    kiko = run.endpoints.kiko
    deadline = run.reactor.seconds() + 60.0
    while True:
        after = await hops.scrape()
        applied = hops.delta(after, MESSAGES, lambda lb: lb.get("node") == kiko
                             and lb.get("msg_type") == "UPDATE_NOTIFY"
                             and lb.get("result") == "applied")
        depth = _sum(after, DEPTH, lambda lb: True)
        if (applied >= updates and depth == 0) or run.reactor.seconds() > deadline:
            break
        await deferLater(run.reactor, 0.25, lambda: None)
    dup_sent = sum(s.duplicates_sent for s in systems)
    dup_acked = sum(s.duplicates_acked for s in systems)
    dup_records = sum(s.duplicate_records for s in systems)
    advanced = sum(s.duplicate_advanced for s in systems)
    at_cs = hops.delta(after, MESSAGES, lambda lb: lb.get("node", "").startswith("cs-")
                       and lb.get("peer", "").startswith("kizon-")
                       and lb.get("result") == "duplicate")
    summary.check(
        "nothing duplicated (R4)",
        dup_sent > 0 and dup_acked == dup_sent and not advanced and at_cs >= dup_records,
        f"{dup_sent} resends of acknowledged frames ({dup_records} records) by the "
        f"{len(systems)} existing systems: {dup_acked} acknowledged, {advanced} of them "
        f"advancing an acknowledgement; {int(at_cs)} records counted duplicate at the CSs (none "
        "applied again: 機構's count below)")
    summary.check("every acknowledged update reached 機構 exactly once (R4)",
                  applied == updates and depth == 0,
                  f"{updates} update notifications acknowledged by the CSs, {int(applied)} "
                  f"applied at {kiko}; {int(depth)} records still queued in the outboxes")
    summary.hops = hops.figures(after)
    moved = len(run.moves)
    across = sum(1 for m in run.moves if m.across)
    summary.check("every 特例転入 got its 転出証明書情報 through the chain", not run.failed_moves,
                  f"{moved} fetched ({across} across the prefectures); refused or wrong: "
                  f"{'; '.join(run.failed_moves[:5]) or 'none'}")
    missing = [m for m in run.moves if m.code not in run.systems[m.old].moves.confirmed]
    deleted = await deferToThread(_deleted_at_old_cs, run)
    not_deleted = [m for m in run.moves if m.code not in deleted.get(m.old, set())]
    summary.check(
        "every 転入通知 reached the old CS and was followed by its 消除",
        not missing and not not_deleted,
        f"{moved} moves ({moved - across} within a prefecture, {across} across); "
        f"{moved - len(missing)} 転入通知 fetched by the old municipality's existing system with "
        f"their 消除 acknowledged; {moved - len(not_deleted)} 消除者 in the old CS's file; "
        f"fetches that failed (tried again): "
        f"{', '.join(f'{k} ×{n}' for k, n in sorted(run.settle_errors.items())) or 'none'}")
    places = await deferToThread(_places, run.numbers, sorted(run.where) + sorted(run.dead))
    wrong = [c for c, w in run.where.items() if places.get(c) != w]
    not_gone = [c for c in run.dead if places.get(c) is not Held.DELETED]
    summary.check(
        "機構 holds each person once, at their newest address", not wrong and not not_gone,
        f"{len(run.where) - len(wrong)} of {len(run.where)} living residents current at 機構 in "
        f"their newest 市町村 at their newest 住所 ({moved} of them moved); "
        f"{len(run.dead) - len(not_gone)} of {len(run.dead)} dead residents 消除者 there")
    await consistency(run)
    summary.notes.append("events: " + ", ".join(
        f"{k}={n}" for k, n in sorted(run.events.items()) if k != "loaded"))


def _deleted_at_old_cs(run: SeasonRun) -> dict[str, set[str]]:
    """The 消除者 of each old municipality's CS among the movers (its store read directly)."""
    from sqlalchemy import select

    from juki_gateway.registry_store.engine import create_store_engine
    from juki_gateway.registry_store.models import DeletedResident, table_of

    out: dict[str, set[str]] = {}
    d = table_of(DeletedResident)
    for old in sorted({m.old for m in run.moves}):
        codes = [m.code for m in run.moves if m.old == old]
        engine = create_store_engine(run.endpoints.stores[f"cs-{old}"])
        try:
            with engine.connect() as conn:
                out[old] = {r[0] for r in conn.execute(
                    select(d.c.juminhyo_code).where(d.c.juminhyo_code.in_(codes)))}
        finally:
            engine.dispose()
    return out


def _places(numbers: KikoNumbers, codes: list[str]) -> dict[str, tuple[str, str] | Held]:
    out: dict[str, tuple[str, str] | Held] = {}
    for i in range(0, len(codes), 500):
        out.update(numbers.places(codes[i:i + 500]))
    return out


def _file_sizes(stores: Mapping[str, str]) -> dict[str, Counter[str]]:
    """Current residents per 市町村コード in each node's file (its store read directly)."""
    from sqlalchemy import func, select

    from juki_gateway.registry_store.engine import create_store_engine
    from juki_gateway.registry_store.models import HonninKakunin, table_of

    t = table_of(HonninKakunin)
    out: dict[str, Counter[str]] = {}
    for node, url in stores.items():
        engine = create_store_engine(url)
        try:
            with engine.connect() as conn:
                out[node] = Counter({str(m): int(n) for m, n in conn.execute(
                    select(t.c.municipality_code, func.count()).group_by(t.c.municipality_code))})
        finally:
            engine.dispose()
    return out


async def consistency(run: SeasonRun, *, at_once: int = 4) -> None:
    """整合性確認 of every CS against its prefecture and 機構 (the CS's own identity and store,
    outbox not sent), and each file's size against its municipalities'."""
    from juki_gateway.certs.pki import CRL_FILE
    from juki_gateway.gateway.jukinet.node import JukinetNode, NodeConfig, PeerAddress
    from juki_gateway.gateway.jukinet.services import consistency_check

    ep, topo, reactor = run.endpoints, run.topology, run.reactor
    assert ep.kiko is not None
    kiko = PeerAddress(ep.kiko, topo.kiko.role, topo.kiko.org, ep.host, ep.port(ep.kiko))
    found: dict[str, list[str]] = {}
    #: records compared, by (CS, peer)
    compared: dict[tuple[str, str], int] = {}
    gate = DeferredSemaphore(at_once)

    async def check(m: Municipality) -> None:
        pref = PeerAddress(f"pref-{m.prefecture}", "prefecture", m.prefecture, ep.host,
                           ep.port(f"pref-{m.prefecture}"))
        cfg = NodeConfig(node_id=m.node, role="municipal-cs", org=m.code,
                         store_url=ep.stores[m.node], cert=ep.pki / f"{m.node}.pem",
                         key=ep.pki / f"{m.node}.key", ca=ep.pki / "ca.pem",
                         crl=ep.pki / CRL_FILE, peers=(pref, kiko), send_outbox=False)
        node = JukinetNode(cfg, reactor)
        node.startService()
        try:
            await node.ready
            node.connect()
            for peer in (pref.node_id, kiko.node_id):
                waited = 0.0
                while node.links[peer].proto is None and waited < 15.0:
                    await deferLater(reactor, 0.05, lambda: None)
                    waited += 0.05
                try:
                    report = await consistency_check(node, peer).addTimeout(60, reactor)
                except Exception as exc:  # reported as a difference, named
                    found.setdefault(m.node, []).append(f"{peer}: the check failed ({error_label(exc)})")
                    continue
                compared[m.node, peer] = report.compared
                counts = {k: n for k, n in report.counts().items() if n}
                if counts:
                    found.setdefault(m.node, []).append(f"{peer}: {counts}")
        finally:
            await node.stopService()

    await gatherResults([gate.run(_checked, check, m) for m in topo.municipalities],
                        consumeErrors=True)
    sizes = await deferToThread(_file_sizes, {n: u for n, u in ep.stores.items()
                                              if n.startswith(("cs-", "pref-")) or n == ep.kiko})
    at_cs = Counter[str]()
    for m in topo.municipalities:
        at_cs[m.code] = sizes[m.node][m.code]
        # the whole file went through each check: every current resident of the CS compared
        for peer in (f"pref-{m.prefecture}", ep.kiko):
            if (m.node, peer) in compared and compared[m.node, peer] != at_cs[m.code]:
                found.setdefault(m.node, []).append(
                    f"{peer}: {compared[m.node, peer]} records compared of the {at_cs[m.code]} "
                    "in the CS's file")
    by_kind = Counter[str]()
    for (_node, peer), n in compared.items():
        by_kind["kiko" if peer == ep.kiko else "pref"] += n
    mismatched = [n for n, c in sizes.items() if n.startswith("pref-") and +c != +Counter(
        {k: v for k, v in at_cs.items() if k[:2] == n[5:]})]
    if +sizes[ep.kiko] != +at_cs:
        mismatched.append(ep.kiko)
    run.summary.check(
        "every node's file agrees with 機構's (整合性確認)", not found and not mismatched,
        f"{len(topo.municipalities)} CSs checked against their prefecture and 機構 "
        f"(CONSISTENCY_CHUNK over each CS's identity, each CS's whole file): {by_kind['pref']} "
        f"records compared at the prefectures, {by_kind['kiko']} at 機構, differences "
        f"{'; '.join(f'{n} {d}' for n, ds in found.items() for d in ds) or 'none'}; files "
        f"sized as their CSs' together: {'all' if not mismatched else 'not ' + ', '.join(mismatched)}")


__all__ = ["Clock", "SeasonError", "SeasonRun", "consistency", "place_of", "run_season",
           "scaled_sizes"]
