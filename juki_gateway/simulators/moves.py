"""Moves between 金沢市 and 野々市市 run to their end against the daemon (docs/moves.md).

野々市市 (172031, same prefecture) has no CS of its own in the default topology: the simulator
plays it, a :class:`~juki_gateway.simulators.drivers.KizonJuki` under the dev PKI's
``cs-172031`` identity connected to ``pref-17``, sending as a CS (its 転入, 転入通知 and 消除
in its own numbering, its 特例転入 requests, its fetches of the 転入通知 the prefecture holds
for it). Kanazawa's side is the run's own existing system. :func:`run_moves`:

* **金沢 → 野々市** (``out_to_neighbour``): Kanazawa's existing system files a 特例転出
  (転出証明書情報 to ``cs-172014``); 野々市 fetches it through ``pref-17`` (特例転入), sends the
  転入 and the 転入通知; the notice reaches ``cs-172014`` through 機構; Kanazawa's existing
  system fetches it, records 転出確定, sends the 消除 and acknowledges the delivery.
* **野々市 → 金沢** (``in_from_neighbour``): Kanazawa's existing system sends the 転入 and the
  転入通知, which ``pref-17`` holds for ``cs-172031``; 野々市 fetches it, records 転出確定 and
  sends its 消除.

The summary counts each step; its invariants: every 転入通知 delivered to Kanazawa was followed
by its 消除, every one towards 野々市 reached it, and 機構 holds each moved person once, at
their newest address.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from twisted.internet.task import deferLater

from juki_gateway.protocols.jukinet.records import fullwidth_digits
from juki_gateway.simulators.drivers import KizonJuki
from juki_gateway.simulators.kiko_numbers import KikoNumbers
from juki_gateway.simulators.population import KANAZAWA, Population
from juki_gateway.simulators.scenario import KizonJuki as KizonConfig
from juki_gateway.simulators.scenario import Moves
from juki_gateway.simulators.summary import RunSummary

#: 野々市市, the neighbour of the moves
NONOICHI = "172031"
#: the links of the daemon the moves need (機構 → 石川 → 金沢's CS, for 転入通知 to Kanazawa)
NEEDED_LINKS = frozenset({"kiko->pref-17", "pref-17->cs-172014"})


@dataclass
class MoveRun:
    """The moves of one run: who moved where (their newest 市町村 and 住所), and the neighbour."""

    neighbour: KizonJuki
    out: list[str] = field(default_factory=list)
    into: list[str] = field(default_factory=list)
    newest: dict[str, tuple[str, str]] = field(default_factory=dict)


def neighbour_cs(reactor: Any, population: Population, kizon: KizonJuki,
                 summary: RunSummary) -> KizonJuki:
    """野々市市's CS as the simulator plays it (a CS client of ``pref-17``)."""
    return KizonJuki(reactor, KizonConfig(), population, kizon.endpoints, summary,
                     name=f"cs-{NONOICHI}", cs="pref-17", org=NONOICHI)


async def run_moves(reactor: Any, moves: Moves, kizon: KizonJuki, run: MoveRun,
                    tick: Callable[[int], None], *, timeout: float = 30.0) -> None:
    """Both directions of ``moves`` (see the module docstring), then the 転入通知 settled on
    both sides (bounded by ``timeout``)."""
    population, neighbour = kizon.population, run.neighbour
    date = population.as_of.strftime("%Y%m%d")
    touched = kizon.touched_codes()
    candidates = [r for r in population.residents
                  if r.juminhyo_code not in touched and r.kojin_bango]
    for i, person in enumerate(population.rng.sample(candidates, moves.out_to_neighbour)):
        to_address = f"石川県野々市市三納一丁目{fullwidth_digits(i + 1)}番地"
        await kizon.tokurei_tenshutsu(person, NONOICHI, to_address, date)
        shomei = await neighbour.request_tenshutsu_shomei(person.juminhyo_code,
                                                          person.birth_date, KANAZAWA)
        arrived = replace(person, address=str(shomei["new_address"]))
        await neighbour.move_in(arrived, KANAZAWA, str(shomei["old_address"]), date)
        run.out.append(person.juminhyo_code)
        run.newest[person.juminhyo_code] = (NONOICHI, arrived.address)
        tick(1)
    for i in range(moves.in_from_neighbour):
        person = population.add_household()[0]
        if kizon.on_new_person is not None:
            kizon.on_new_person(person)  # 機構 gave the person their 個人番号 long ago
        from_address = f"石川県野々市市本町三丁目{fullwidth_digits(i + 1)}番地"
        neighbour.file_tenshutsu(replace(person, address=from_address), date)
        await kizon.move_in(person, NONOICHI, from_address, date)
        run.into.append(person.juminhyo_code)
        run.newest[person.juminhyo_code] = (KANAZAWA, person.address)
        tick(1)
    deadline = reactor.seconds() + timeout
    while True:
        await kizon.settle_move_ins()
        await neighbour.settle_move_ins()
        if ((set(run.out) <= set(kizon.moves.confirmed)
             and set(run.into) <= set(neighbour.moves.confirmed))
                or reactor.seconds() > deadline):
            return
        await deferLater(reactor, 0.2, lambda: None)


async def check_moves(reactor: Any, run: MoveRun, kizon: KizonJuki, summary: RunSummary,
                      kiko: KikoNumbers | None, *, timeout: float = 30.0) -> None:
    """The moves' invariants (see the module docstring); 機構's file is read from its store,
    waiting (bounded) for the last 消除 to arrive."""
    delivered = set(kizon.moves.delivered) - set(kizon.moves.unknown)
    followed = delivered <= set(kizon.moves.confirmed) and set(run.out) <= delivered
    summary.check(
        "every 転入通知 delivered to Kanazawa was followed by its 消除", followed,
        f"{len(run.out)} residents moved to 野々市市 with the card; {len(delivered)} 転入通知 "
        f"delivered to {kizon.name}, {len(kizon.moves.confirmed)} 転出確定 with their 消除 "
        "acknowledged")
    reached = set(run.into) <= set(run.neighbour.moves.confirmed)
    summary.check(
        "every 転入通知 towards 野々市市 reached it", reached,
        f"{len(run.into)} people moved in from 野々市市; {len(run.neighbour.moves.confirmed)} "
        "転入通知 fetched from pref-17 and confirmed there")
    if kiko is None:
        summary.notes.append("機構's file not checked: no 機構 store in this working directory")
        return
    deadline = reactor.seconds() + timeout
    while True:
        places = kiko.places(list(run.newest))
        wrong = sorted(c for c, where in run.newest.items() if places.get(c) != where)
        if not wrong or reactor.seconds() > deadline:
            break
        await deferLater(reactor, 0.25, lambda: None)
    summary.check(
        "機構 holds each moved person once, at their newest address", not wrong,
        f"{len(run.newest) - len(wrong)} of {len(run.newest)} moved persons current at 機構 "
        "in their new 市町村 at their new 住所, none a 消除者")


__all__ = ["NEEDED_LINKS", "NONOICHI", "MoveRun", "check_moves", "neighbour_cs", "run_moves"]
