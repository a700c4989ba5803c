"""Scenario files (``juki_gateway/scenarios/*.toml``): what a simulator run does, parsed once into typed objects.

A scenario names its population (seed, size, reference date), how long it runs, and what each
simulated system does: the existing system's event rate and mix (with the moving season's
March–April peak), the linkage system's 副本 registration, the information provision network's
queries, the DV-flagged residents, link outages, and misbehaving peers. Every table and key is
checked here; a bad file gets a :class:`ScenarioError` naming the file, the key and the reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, cast

from juki_gateway.errors import JukiError
from juki_gateway.workdir import read_toml

#: 既存住基 event kinds and the 異動事由 each one carries.
EVENT_REASONS: dict[str, str] = {
    "tennyu": "10",  # 国内転入
    "tenshutsu": "20",  # 国内転出
    "tenkyo": "30",  # 転居
    "shussei": "12",  # 出生
    "shibou": "22",  # 死亡
    "shokken_shusei": "31",  # 職権修正
}

# shipped inside the package (``juki_gateway/scenarios``), found the same way from a wheel
SCENARIO_DIR = Path(str(resources.files("juki_gateway") / "scenarios"))


class ScenarioError(JukiError):
    """A scenario file is missing, unreadable or holds a bad value."""

    code = "scenario"
    exit_code = 2


class WrongTopology(ScenarioError):
    """A scenario made for another topology than the working directory's."""

    code = "wrong_topology"


@dataclass(frozen=True, slots=True)
class KizonJuki:
    """The existing resident-register system: resident events at a rate, with a seasonal peak."""

    rate: float = 2.0
    mix: Mapping[str, float] = field(default_factory=lambda: {k: 1.0 for k in EVENT_REASONS})
    month: int = 4
    peak_months: tuple[int, ...] = (3, 4)
    peak_factor: float = 3.0
    duplicates: float = 0.0

    def effective_rate(self) -> float:
        """Events per second in the scenario's month (peak months multiply the base rate)."""
        return self.rate * (self.peak_factor if self.month in self.peak_months else 1.0)


@dataclass(frozen=True, slots=True)
class BangoRenkei:
    """The linkage system: 副本 registration batches."""

    rate: float = 1.0
    batch: int = 10


@dataclass(frozen=True, slots=True)
class Ipnw:
    """The information provision network: queries from many requesters under the seed's 項番."""

    rate: float = 2.0
    requesters: int = 10
    kouban: tuple[int, ...] = (1, 2, 3)


@dataclass(frozen=True, slots=True)
class DvProtection:
    """Residents under an auto-response-block flag and how often queries ask about them."""

    flagged: int = 0
    query_share: float = 0.0


@dataclass(frozen=True, slots=True)
class Outage:
    """A link cut at ``at`` seconds into the run and restored ``duration`` seconds later."""

    link: str
    at: float
    duration: float


@dataclass(frozen=True, slots=True)
class BadPeers:
    """Counts of misbehaviour to inject during the run."""

    wrong_certificates: int = 0
    malformed_frames: int = 0
    broad_searches: int = 0
    forged_permits: int = 0
    replayed_permits: int = 0

    @property
    def total(self) -> int:
        """How many bad interactions the run injects."""
        return (self.wrong_certificates + self.malformed_frames + self.broad_searches
                + self.forged_permits + self.replayed_permits)


@dataclass(frozen=True, slots=True)
class Moves:
    """Moves between 金沢市 and 野々市市 (172031, played by a simulated CS) run to their end
    (docs/moves.md): residents moving out with the card (特例転出/特例転入, 転入通知, 転出確定,
    消除) and people moving in from 野々市市 (転入, 転入通知 towards the old CS)."""

    out_to_neighbour: int = 0
    in_from_neighbour: int = 0

    @property
    def total(self) -> int:
        """How many moves the run makes."""
        return self.out_to_neighbour + self.in_from_neighbour


#: what a moving season between municipalities does (table ``[season]``): the event kinds and
#: what each one is
SEASON_EVENTS: dict[str, str] = {
    "tenkyo": "転居 within a municipality",
    "within_prefecture": "a move to another municipality of the same prefecture (特例転出/特例転入)",
    "across_prefectures": "a move to a municipality of the other prefecture (特例転出/特例転入)",
    "shussei": "出生",
    "shibou": "死亡",
}


@dataclass(frozen=True, slots=True)
class Season:
    """A moving season over a whole topology (docs/moves.md, "A moving season over
    hokuriku"): a population in every municipality, in proportion to its real size, and events
    at ``rate`` per second across the network, each driven through its municipality's own
    existing system."""

    rate: float = 10.0
    #: residents of the smallest municipality at least (the population is scaled down)
    min_per_municipality: int = 10
    mix: Mapping[str, float] = field(default_factory=lambda: dict.fromkeys(SEASON_EVENTS, 1.0))
    #: events in flight at once (each on its own residents; one exchange at a time per system)
    concurrency: int = 8


@dataclass(frozen=True, slots=True)
class Scenario:
    """One parsed scenario file."""

    name: str
    description: str
    path: Path
    seed: int
    population: int
    as_of: dt.date
    duration: float
    kizon_juki: KizonJuki | None
    bango_renkei: BangoRenkei | None
    ipnw: Ipnw | None
    dv: DvProtection
    outages: tuple[Outage, ...]
    bad_peers: BadPeers
    moves: Moves = Moves()
    #: the shipped topology whose working directory the scenario drives (``simulate`` refuses
    #: another's)
    topology: str = "kanazawa"
    #: the duration of ``simulate --duration short``
    short_duration: float = 10.0
    season: Season | None = None


# -- parsing ----------------------------------------------------------------------------------


class _Table:
    """Typed access to one TOML table, with unknown-key detection."""

    def __init__(self, raw: Any, where: str) -> None:
        if not isinstance(raw, Mapping):
            raise ScenarioError(f"{where}: must be a table")
        self.raw = raw
        self.where = where
        self.used: set[str] = set()

    def get(self, key: str, kind: type, default: Any = ..., *, minimum: float | None = None,
            maximum: float | None = None) -> Any:
        self.used.add(key)
        if key not in self.raw:
            if default is ...:
                raise ScenarioError(f"{self.where}: missing '{key}'")
            return default
        value: Any = self.raw[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            raise ScenarioError(f"{self.where}: '{key}' must be a {kind.__name__}, got {value!r}")
        number = cast(float, value)
        if minimum is not None and number < minimum:
            raise ScenarioError(f"{self.where}: '{key}' must be at least {minimum}, got {value!r}")
        if maximum is not None and number > maximum:
            raise ScenarioError(f"{self.where}: '{key}' must be at most {maximum}, got {value!r}")
        return value

    def table(self, key: str) -> _Table | None:
        self.used.add(key)
        if key not in self.raw:
            return None
        return _Table(self.raw[key], f"{self.where}.{key}" if self.where else key)

    def done(self) -> None:
        unknown = sorted(set(self.raw) - self.used)
        if unknown:
            raise ScenarioError(f"{self.where or 'top level'}: unknown keys {unknown}")


def _int_list(t: _Table, key: str, default: tuple[int, ...], lo: int, hi: int) -> tuple[int, ...]:
    values = t.get(key, list, list(default))
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ScenarioError(f"{t.where}: '{key}' must hold integers {lo}..{hi}, got {v!r}")
    return tuple(values)


def _mix(t: _Table, known: Mapping[str, str]) -> dict[str, float]:
    """The table's ``[mix]``: a weight for each of the ``known`` event kinds it names, at
    least one positive (every kind at 1.0 when the table has none)."""
    mix_t = t.table("mix")
    if mix_t is None:
        return dict.fromkeys(known, 1.0)
    mix: dict[str, float] = {}
    for kind in mix_t.raw:
        if kind not in known:
            raise ScenarioError(
                f"{mix_t.where}: unknown event {kind!r}; known: {', '.join(known)}")
        mix[kind] = mix_t.get(kind, float, minimum=0.0)
    if not any(mix.values()):
        raise ScenarioError(f"{mix_t.where}: at least one event needs a positive weight")
    return mix


def _kizon(t: _Table) -> KizonJuki:
    k = KizonJuki(
        rate=t.get("rate", float, 2.0, minimum=0.0, maximum=10_000.0),
        mix=_mix(t, EVENT_REASONS),
        month=t.get("month", int, 4, minimum=1, maximum=12),
        peak_months=_int_list(t, "peak_months", (3, 4), 1, 12),
        peak_factor=t.get("peak_factor", float, 3.0, minimum=1.0, maximum=100.0),
        duplicates=t.get("duplicates", float, 0.0, minimum=0.0, maximum=1.0),
    )
    t.done()
    return k


def _season(t: _Table) -> Season:
    s = Season(rate=t.get("rate", float, 10.0, minimum=0.1, maximum=1000.0),
               min_per_municipality=t.get("min_per_municipality", int, 10, minimum=2,
                                          maximum=10_000),
               mix=_mix(t, SEASON_EVENTS),
               concurrency=t.get("concurrency", int, 8, minimum=1, maximum=64))
    t.done()
    return s


def parse_scenario(data: Mapping[str, Any], path: Path) -> Scenario:
    """Turn the parsed TOML of ``path`` into a :class:`Scenario`."""
    where = path.name
    top = _Table(data, "")
    top.where = where
    head = top.table("scenario")
    if head is None:
        raise ScenarioError(f"{where}: missing [scenario] table")
    try:
        as_of = dt.date.fromisoformat(head.get("as_of", str, "2026-04-01"))
    except ValueError as exc:
        raise ScenarioError(f"{head.where}: 'as_of' must be YYYY-MM-DD ({exc})") from None
    name = head.get("name", str)
    description = head.get("description", str, "")
    seed = head.get("seed", int, 172014, minimum=0)
    population = head.get("population", int, 200, minimum=1, maximum=1_000_000)
    duration = head.get("duration", float, 60.0, minimum=0.1, maximum=86_400.0)
    topology = head.get("topology", str, "kanazawa")
    from juki_gateway.gateway.topology import builtin_topologies

    if topology not in builtin_topologies():
        raise ScenarioError(f"{head.where}: 'topology' must name a shipped topology "
                            f"({', '.join(builtin_topologies())}), got {topology!r}")
    short = head.get("short_duration", float, min(duration, 10.0), minimum=0.1, maximum=duration)
    head.done()

    kz_t = top.table("kizon_juki")
    kizon = _kizon(kz_t) if kz_t is not None else None
    br_t = top.table("bango_renkei")
    renkei = None
    if br_t is not None:
        renkei = BangoRenkei(rate=br_t.get("rate", float, 1.0, minimum=0.0, maximum=10_000.0),
                             batch=br_t.get("batch", int, 10, minimum=1, maximum=1000))
        br_t.done()
    ip_t = top.table("ipnw")
    ipnw = None
    if ip_t is not None:
        ipnw = Ipnw(rate=ip_t.get("rate", float, 2.0, minimum=0.0, maximum=10_000.0),
                    requesters=ip_t.get("requesters", int, 10, minimum=1, maximum=10_000),
                    kouban=_int_list(ip_t, "kouban", (1, 2, 3), 1, 200))
        if not ipnw.kouban:
            raise ScenarioError(f"{ip_t.where}: 'kouban' must name at least one 項番")
        ip_t.done()
    dv_t = top.table("dv")
    dv = DvProtection()
    if dv_t is not None:
        dv = DvProtection(flagged=dv_t.get("flagged", int, 0, minimum=0),
                          query_share=dv_t.get("query_share", float, 0.0, minimum=0.0, maximum=1.0))
        dv_t.done()
        if dv.flagged > population:
            raise ScenarioError(f"{dv_t.where}: 'flagged' ({dv.flagged}) exceeds the population")
    outages: list[Outage] = []
    top.used.add("outage")
    raw_outages = data.get("outage", [])
    if not isinstance(raw_outages, list):
        raise ScenarioError(f"{where}: 'outage' must be an array of tables ([[outage]])")
    for i, raw in enumerate(raw_outages):
        o_t = _Table(raw, f"{where}: outage[{i}]")
        o = Outage(link=o_t.get("link", str), at=o_t.get("at", float, minimum=0.0),
                   duration=o_t.get("duration", float, minimum=0.1))
        o_t.done()
        if o.at + o.duration > duration:
            raise ScenarioError(f"{o_t.where}: the outage ends after the run ({duration}s)")
        outages.append(o)
    bp_t = top.table("bad_peers")
    bad = BadPeers()
    if bp_t is not None:
        bad = BadPeers(**{
            key: bp_t.get(key, int, 0, minimum=0, maximum=100_000)
            for key in ("wrong_certificates", "malformed_frames", "broad_searches",
                        "forged_permits", "replayed_permits")
        })
        bp_t.done()
    mv_t = top.table("moves")
    moves = Moves()
    if mv_t is not None:
        moves = Moves(**{key: mv_t.get(key, int, 0, minimum=0, maximum=1000)
                         for key in ("out_to_neighbour", "in_from_neighbour")})
        mv_t.done()
        if moves.total and kizon is None:
            raise ScenarioError(f"{mv_t.where}: moves need the [kizon_juki] table")
    se_t = top.table("season")
    season = _season(se_t) if se_t is not None else None
    top.done()
    if season is not None and (kizon is not None or renkei is not None or ipnw is not None
                               or bad.total or moves.total or outages):
        raise ScenarioError(f"{where}: [season] drives the whole topology alone (no other "
                            "simulator table beside it)")
    if season is None and kizon is None and renkei is None and ipnw is None and bad.total == 0:
        raise ScenarioError(f"{where}: the scenario drives nothing (no simulator table)")
    return Scenario(
        name=name, description=description, path=path, seed=seed, population=population,
        as_of=as_of, duration=duration, kizon_juki=kizon, bango_renkei=renkei, ipnw=ipnw, dv=dv,
        outages=tuple(outages), bad_peers=bad, moves=moves, topology=topology,
        short_duration=short, season=season,
    )


def scenario_path(name_or_path: str) -> Path:
    """A scenario file: a path as given, or ``NAME.toml`` of the scenarios shipped in the package."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        return p
    return SCENARIO_DIR / f"{name_or_path}.toml"


def load_scenario(name_or_path: str) -> Scenario:
    """Read and parse a scenario by name (``quickstart``) or path."""
    path = scenario_path(name_or_path)
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.toml")))
        raise ScenarioError(f"no scenario {name_or_path!r} (known: {known})")
    try:
        data = read_toml(path)
    except JukiError as exc:
        raise ScenarioError(exc.message) from None
    return parse_scenario(data, path)
