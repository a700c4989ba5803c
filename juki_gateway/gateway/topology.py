"""Topologies as data: which nodes a working directory has, who they accept, how they link.

A topology file (TOML, format in docs/topology.md) names 機構, the prefectures and the
municipalities (全国地方公共団体コード, name, population), the extra client identities, the link
kinds to generate and any extra links and allow rules. :func:`load_topology` reads a shipped
one by name (``juki_gateway/topologies/NAME.toml``, through :mod:`importlib.resources`) or any
file by path, validates it (every code's check digit by the codec, prefectures present, names
unique) and returns a :class:`Topology`, which generates from it:

* the endpoints, in port order: each municipality's CS (``cs-<code>``), each prefecture's server
  (``pref-<PP>``), 機構, and the intermediate server of the municipality that runs one
  (``ims-<code>``);
* the clients: each municipality's existing system (``kizon-<code>``), the linkage system
  (``renkei-<code>``) of the one with the intermediate server, the network (``ipnw``), then the
  file's ``[[clients]]``;
* the allow-lists (brief R2) and the outbound links;
* :meth:`Topology.gateway_toml`: the ``gateway.toml`` content ``juki-gateway init`` writes;
* :meth:`Topology.split` and :meth:`Topology.daemon_toml`: the topology cut over several daemons
  (``init --daemon NAME=PATTERNS``), one ``gateway.toml`` each, links to another daemon's
  endpoints naming its host and the peer's role and organisation.

Ports are offsets from the base N: endpoints take N+1, N+2, … in order, skipping the admin and
metrics offsets (``[ports]``, 10 and 20 by default), so the one-city topology keeps N+1…N+4,
N+10 and N+20 and a large one grows past them.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import msgspec

from juki_gateway.certs.identity import ROLES, IdentityError, PeerIdentity, validate_identity
from juki_gateway.codecs.checkdigits import LG_CODE
from juki_gateway.errors import UsageError
from juki_gateway.gateway.config import JUKINET_ROLES, LOOPBACK, AllowRule, convert_table
from juki_gateway.workdir import read_toml

#: The topology ``juki-gateway init`` writes when given none.
DEFAULT_TOPOLOGY = "kanazawa"
#: The highest port offset a topology may use (the base N is at least 1).
MAX_OFFSET = 1000

#: Generated link kinds: (local role, peer role) and what each carries.
LINK_KINDS: dict[str, str] = {
    "cs-prefecture": "each CS → its prefecture (update notifications, 転入通知, 個人番号 requests)",
    "prefecture-kiko": "each prefecture → 機構 (update notifications, 転入通知, relayed requests)",
    "kiko-prefecture": "機構 → each prefecture (転入通知 on their way to the old CS)",
    "prefecture-cs": "each prefecture → each of its CSs (転入通知 reaching the old CS)",
    "cs-kiko": "each CS → 機構 (送付先情報, 住民票コード pools); 機構 then accepts CSs",
}

Code6 = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Offset = Annotated[int, msgspec.Meta(ge=1, le=MAX_OFFSET)]


class _Table(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A table of the file: unknown keys are refused."""


class HeadTable(_Table, frozen=True):
    name: Name
    description: str = ""


class PortsTable(_Table, frozen=True):
    admin: Offset = 10
    metrics: Offset = 20


class KikoTable(_Table, frozen=True):
    name: Name = "kiko"
    org: Name = "jlis"


class PrefectureTable(_Table, frozen=True):
    code: Code6
    name: Name


class MunicipalityTable(_Table, frozen=True):
    code: Code6
    name: Name
    population: Annotated[int, msgspec.Meta(ge=1, le=100_000_000)]
    intermediate: bool = False


class ClientTable(_Table, frozen=True):
    name: Name
    role: Name
    org: Name
    operator_roles: tuple[str, ...] = ()


class ExtraLinkTable(_Table, frozen=True):
    local: Name
    peer: Name


class LinksTable(_Table, frozen=True):
    generate: tuple[str, ...] = ("cs-prefecture", "prefecture-kiko")
    extra: tuple[ExtraLinkTable, ...] = ()


class ExtraAllowTable(_Table, frozen=True):
    node: Name
    role: Name
    org: Name | None = None
    org_prefix: Name | None = None


class TopologyFile(_Table, frozen=True):
    topology: HeadTable
    prefectures: tuple[PrefectureTable, ...]
    municipalities: tuple[MunicipalityTable, ...]
    ports: PortsTable = PortsTable()
    kiko: KikoTable = KikoTable()
    links: LinksTable = LinksTable()
    clients: tuple[ClientTable, ...] = ()
    allow: tuple[ExtraAllowTable, ...] = ()


# -- the model --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prefecture:
    """A prefecture: its 全国地方公共団体コード (``170003``), number (``17``) and name."""

    code: str
    name: str

    @property
    def number(self) -> str:
        return self.code[:2]

    @property
    def node(self) -> str:
        return f"pref-{self.number}"


@dataclass(frozen=True, slots=True)
class Municipality:
    """A municipality with a CS: its 全国地方公共団体コード, name and 2020 census population."""

    code: str
    name: str
    population: int
    intermediate: bool = False

    @property
    def prefecture(self) -> str:
        return self.code[:2]

    @property
    def node(self) -> str:
        return f"cs-{self.code}"

    @property
    def kizon(self) -> str:
        return f"kizon-{self.code}"


@dataclass(frozen=True, slots=True)
class Topology:
    """A validated topology and everything generated from it (see the module docstring)."""

    name: str
    description: str
    source: str
    prefectures: tuple[Prefecture, ...]
    municipalities: tuple[Municipality, ...]
    kiko: PeerIdentity
    #: listening identities, in port order
    endpoints: tuple[PeerIdentity, ...]
    #: identities that only connect: existing systems, linkage system, network, the file's clients
    clients: tuple[PeerIdentity, ...]
    allow: Mapping[str, tuple[AllowRule, ...]]
    #: outbound links as (local, peer) endpoint names
    links: tuple[tuple[str, str], ...]
    #: port offset of each endpoint, of ``admin`` and of ``metrics``
    offsets: Mapping[str, int]

    def identities(self) -> tuple[PeerIdentity, ...]:
        """Every identity ``init`` issues a certificate for: endpoints, then clients."""
        return (*self.endpoints, *self.clients)

    def max_offset(self) -> int:
        return max(self.offsets.values())

    def municipality(self, code: str) -> Municipality:
        """The municipality of ``code`` (UsageError when the topology has none)."""
        for m in self.municipalities:
            if m.code == code:
                return m
        raise UsageError(f"topology {self.name}: no municipality {code}")

    def gateway_toml(self, port_base: int, store_urls: Mapping[str, str] | None = None, *,
                     listen: str = LOOPBACK) -> dict[str, Any]:
        """The ``gateway.toml`` content for this topology on ports from ``port_base``, as a
        TOML-ready dict (every endpoint hosted by one daemon). The endpoints and the metrics
        listener bind ``listen`` (the admin port and the daemon's own links stay on loopback);
        ``store_urls`` replaces the default SQLite store of the named Juki-net nodes."""
        ports = {name: port_base + off for name, off in self.offsets.items()}
        links = [(local, peer, LOOPBACK, None) for local, peer in self.links]
        return self._daemon_toml(ports, self.endpoints, listen, links, "pki", store_urls)

    def split(self, daemons: Sequence[tuple[str, str]],
              hosts: Mapping[str, str] | None = None) -> Split:
        """Cut this topology over several daemons: ``daemons`` is (name, selection) pairs, a
        selection being comma-separated endpoint names or glob patterns (``pref-17,cs-17*``);
        ``hosts`` gives a daemon's address (default 127.0.0.1). Refused, one line each: a bad or
        repeated daemon name, a pattern matching no endpoint, an endpoint selected twice, a host
        for no daemon, a link of a hosted node whose peer no daemon hosts."""
        hosts = dict(hosts or {})
        names = [e.name for e in self.endpoints]
        owner: dict[str, str] = {}
        plans: list[DaemonPlan] = []
        for name, selection in daemons:
            if name in _RESERVED_DIRS:
                raise UsageError(f"--daemon {name}: {name!r} is the shared directory "
                                 f"DIR/{name} of every daemon; name the daemon otherwise")
            if not _DAEMON_NAME.fullmatch(name):
                raise UsageError(f"--daemon {name!r}: a daemon's name is its directory's: "
                                 "letters, digits, - and _ (at most 32)")
            if any(p.name == name for p in plans):
                raise UsageError(f"--daemon {name}: named twice")
            patterns = [p.strip() for p in selection.split(",") if p.strip()]
            if not patterns:
                raise UsageError(f"--daemon {name}: selects nothing (give NAME=PATTERN[,PATTERN…])")
            for pattern in patterns:
                if not fnmatch.filter(names, pattern):
                    raise UsageError(f"--daemon {name}: {pattern!r} matches no endpoint of "
                                     f"topology {self.name} (its endpoints: {_brief(names)})")
            nodes = tuple(n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns))
            for node in nodes:
                if node in owner:
                    raise UsageError(f"--daemon {name}: endpoint {node} is already hosted by "
                                     f"daemon {owner[node]}")
                owner[node] = name
            plans.append(DaemonPlan(name, nodes, hosts.pop(name, LOOPBACK), len(plans)))
        if hosts:
            raise UsageError(f"--host {next(iter(hosts))}: no --daemon of that name")
        for local, peer in self.links:
            if local in owner and peer not in owner:
                raise UsageError(f"link {local}->{peer}: its peer {peer} is hosted by no daemon, "
                                 f"so {owner[local]} has no host to reach it at (select {peer} "
                                 "in a --daemon)")
        return Split(tuple(plans), owner, self.max_offset())

    def daemon_toml(self, split: Split, daemon: str, port_base: int,
                    store_urls: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The ``gateway.toml`` of one daemon of ``split``, which lives in a sub-directory of
        the working directory (its PKI is the parent's ``pki/``): its endpoints on the ports
        they have in the whole topology, its own admin and metrics ports, its nodes' links (to
        a peer hosted elsewhere with that peer's role, organisation and daemon's host)."""
        plan = split.plan(daemon)
        ports = {name: port_base + off for name, off in self.offsets.items()}
        ports["admin"], ports["metrics"] = (port_base + off for off in split.offsets(plan))
        by_name = {e.name: e for e in self.endpoints}
        hosts = {p.name: p.host for p in split.daemons}
        links = [(local, peer, hosts[split.owner[peer]],
                  None if split.owner[peer] == daemon else by_name[peer])
                 for local, peer in self.links if split.owner.get(local) == daemon]
        return self._daemon_toml(ports, [by_name[n] for n in plan.nodes], plan.host, links,
                                 "../pki", store_urls)

    def _daemon_toml(self, ports: Mapping[str, int], endpoints: Sequence[PeerIdentity],
                     host: str, links: Sequence[tuple[str, str, str, PeerIdentity | None]],
                     pki: str, store_urls: Mapping[str, str] | None) -> dict[str, Any]:
        """One daemon's file: ``endpoints`` listening on ``host``; ``links`` as (local, peer,
        peer host, the peer's identity when another daemon hosts it)."""
        urls = dict(store_urls or {})
        jukinet = [e.name for e in endpoints if e.role in JUKINET_ROLES]
        for node in urls:
            if node not in jukinet:
                raise UsageError(f"--store-url {node}: not a municipal-cs, prefecture or kiko "
                                 f"endpoint hosted here (hosted: {_brief(jukinet)})")
        return {
            "pki": {"dir": pki, "ca": f"{pki}/ca.pem", "crl": f"{pki}/crl.pem"},
            "logs": {"handshakes": "logs/handshakes.jsonl"},
            "metrics": {"host": host, "port": ports["metrics"]},
            "admin": {"host": LOOPBACK, "port": ports["admin"]},
            "timeouts": {"handshake": 10.0, "idle": 300.0, "drain": 10.0},
            "store": {"url": "sqlite:///registry.sqlite3"},
            "retention": {"enabled": True, "hour": 3, "honnin_kakunin_years": 5,
                          "provision_years": 7, "soufusaki_provision_years": 5, "audit_years": 7},
            "jukinet": {
                "host": True,
                **{name: {"store_url": urls.get(name, f"sqlite:///jukinet-{name}.sqlite3")}
                   for name in jukinet},
            },
            "endpoints": [
                {"name": ident.name, "role": ident.role, "org": ident.org, "host": host,
                 "port": ports[ident.name], "cert": f"{pki}/{ident.name}.pem",
                 "key": f"{pki}/{ident.name}.key",
                 "allow": [_rule_dict(rule) for rule in self.allow[ident.name]]}
                for ident in endpoints
            ],
            "links": [
                {"name": f"{local}->{peer}", "local": local, "peer": peer,
                 **({} if remote is None else {"peer_role": remote.role, "peer_org": remote.org}),
                 "host": peer_host, "port": ports[peer], "ping_interval": 30.0,
                 "backoff_initial": 0.2, "backoff_max": 5.0}
                for local, peer, peer_host, remote in links
            ],
        }


#: A daemon's name: the sub-directory of the working directory it runs in.
_DAEMON_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
#: directories of a split working directory that every daemon shares (not a daemon's own)
_RESERVED_DIRS = frozenset({"pki"})


def _brief(names: Sequence[str], most: int = 8) -> str:
    """``names`` listed, cut after ``most``."""
    shown = ", ".join(names[:most])
    return shown + (f" … ({len(names)} in all)" if len(names) > most else "") if names else "none"


@dataclass(frozen=True, slots=True)
class DaemonPlan:
    """One daemon of a split: its name (and directory), the endpoints it hosts (in port
    order), the address they listen on and others reach them at, and its place in the split."""

    name: str
    nodes: tuple[str, ...]
    host: str
    index: int


@dataclass(frozen=True, slots=True)
class Split:
    """A topology cut over several daemons (:meth:`Topology.split`)."""

    daemons: tuple[DaemonPlan, ...]
    #: endpoint name → the daemon hosting it (endpoints no daemon selected are absent)
    owner: Mapping[str, str]
    #: the topology's highest port offset; the daemons' admin and metrics ports follow it
    top: int

    def plan(self, daemon: str) -> DaemonPlan:
        return next(p for p in self.daemons if p.name == daemon)

    def offsets(self, plan: DaemonPlan) -> tuple[int, int]:
        """The admin and metrics port offsets of ``plan``'s daemon: the k-th daemon (from 0)
        has top+2k+1 and top+2k+2, so daemons sharing one address never collide."""
        return self.top + 2 * plan.index + 1, self.top + 2 * plan.index + 2

    def max_offset(self) -> int:
        return self.top + 2 * len(self.daemons)

def _rule_dict(rule: AllowRule) -> dict[str, str]:
    out = {"role": rule.role}
    if rule.org is not None:
        out["org"] = rule.org
    if rule.org_prefix is not None:
        out["org_prefix"] = rule.org_prefix
    return out


# -- loading ----------------------------------------------------------------------------------


def builtin_topologies() -> list[str]:
    """The names of the topologies shipped in the package."""
    root = resources.files("juki_gateway") / "topologies"
    return sorted(p.name.removesuffix(".toml") for p in root.iterdir() if p.name.endswith(".toml"))


def load_topology(name_or_path: str | Path) -> Topology:
    """A shipped topology by name (``kanazawa``, ``hokuriku``) or a topology file by path."""
    text = str(name_or_path)
    if isinstance(name_or_path, str) and "/" not in text and not text.endswith(".toml"):
        if text not in builtin_topologies():
            raise UsageError(f"no topology named {text!r} (shipped: "
                             f"{', '.join(builtin_topologies())}; or give a path to a .toml file)")
        resource = resources.files("juki_gateway") / "topologies" / f"{text}.toml"
        with resources.as_file(resource) as path:
            return parse_topology(read_toml(path), f"topology {text}")
    path = Path(name_or_path)
    if not path.exists():
        raise UsageError(f"no topology file at {path}")
    return parse_topology(read_toml(path), str(path))


def _lg_code(code: str, where: str, key: str, what: str) -> None:
    """Refuse a code whose check digit is wrong (the codec's 地方公共団体コード scheme)."""
    if not LG_CODE.is_valid(code):
        right = LG_CODE.check_digit(code[:5])
        raise UsageError(f"{where}: {key}: {code} is not a valid {what} 全国地方公共団体コード "
                         f"(its check digit should be {right}, not {code[5]})")


def parse_topology(data: Mapping[str, Any], where: str) -> Topology:
    """Validate a decoded topology file and generate its nodes, allow-lists and links."""
    f: TopologyFile = convert_table(data, TopologyFile, where)
    prefectures, municipalities = _places(f, where)
    ims = [m for m in municipalities if m.intermediate]
    unknown = [k for k in f.links.generate if k not in LINK_KINDS]
    if unknown:
        raise UsageError(f"{where}: links.generate: unknown kind {unknown[0]!r} "
                         f"(known: {', '.join(LINK_KINDS)})")
    if f.ports.admin == f.ports.metrics:
        raise UsageError(f"{where}: ports: admin and metrics need different offsets")
    kiko = PeerIdentity(f.kiko.name, "kiko", f.kiko.org)
    endpoints = (
        *(PeerIdentity(m.node, "municipal-cs", m.code) for m in municipalities),
        *(PeerIdentity(p.node, "prefecture", p.number) for p in prefectures),
        kiko,
        *(PeerIdentity(f"ims-{m.code}", "intermediate", m.code) for m in ims),
    )
    clients = (
        *(PeerIdentity(m.kizon, "kizon-juki", m.code) for m in municipalities),
        *(PeerIdentity(f"renkei-{m.code}", "bango-renkei", m.code) for m in ims),
        PeerIdentity("ipnw", "ipnw", "ipnw"),
        *(PeerIdentity(c.name, c.role, c.org, c.operator_roles) for c in f.clients),
    )
    for ident in (*endpoints, *clients):
        try:
            validate_identity(ident)
        except IdentityError as exc:
            raise UsageError(f"{where}: identity {ident.name}: {exc.message}") from None
    names = [i.name for i in (*endpoints, *clients)]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UsageError(f"{where}: identity names must be unique: {', '.join(dup)} twice")
    kinds = frozenset(f.links.generate)
    allow = _allow(f, where, prefectures, municipalities, kiko.name, kinds)
    return Topology(
        name=f.topology.name, description=f.topology.description, source=where,
        prefectures=prefectures, municipalities=municipalities, kiko=kiko,
        endpoints=endpoints, clients=clients, allow=allow,
        links=_links(f, where, prefectures, municipalities, kiko.name, kinds, allow),
        offsets=_offsets([e.name for e in endpoints], f.ports.admin, f.ports.metrics))


def _places(f: TopologyFile, where: str) -> tuple[tuple[Prefecture, ...], tuple[Municipality, ...]]:
    """The prefectures and municipalities, every code checked (check digit, kind, prefecture)."""
    prefectures: list[Prefecture] = []
    for i, pt in enumerate(f.prefectures):
        _lg_code(pt.code, where, f"prefectures[{i}].code", "prefecture")
        if pt.code[2:5] != "000":
            raise UsageError(f"{where}: prefectures[{i}].code: {pt.code} is a municipality's "
                             "code; a prefecture's is PP000C")
        prefectures.append(Prefecture(pt.code, pt.name))
    numbers = [p.number for p in prefectures]
    if not prefectures or len(set(numbers)) != len(numbers):
        raise UsageError(f"{where}: prefectures: at least one, each listed once")
    municipalities: list[Municipality] = []
    for i, mt in enumerate(f.municipalities):
        key = f"municipalities[{i}].code"
        _lg_code(mt.code, where, key, "municipality")
        if mt.code[2:5] == "000":
            raise UsageError(f"{where}: {key}: {mt.code} is a prefecture's code")
        if mt.code[:2] not in numbers:
            raise UsageError(f"{where}: {key}: {mt.code} ({mt.name}) is in prefecture "
                             f"{mt.code[:2]}, which [[prefectures]] does not list")
        municipalities.append(Municipality(mt.code, mt.name, mt.population, mt.intermediate))
    codes = [m.code for m in municipalities]
    if not municipalities or len(set(codes)) != len(codes):
        raise UsageError(f"{where}: municipalities: at least one, each code listed once")
    if sum(m.intermediate for m in municipalities) > 1:
        raise UsageError(f"{where}: municipalities: intermediate = true on more than one "
                         "municipality; a daemon hosts one intermediate server")
    return tuple(prefectures), tuple(municipalities)


def _allow(f: TopologyFile, where: str, prefectures: Sequence[Prefecture],
           municipalities: Sequence[Municipality], kiko: str,
           kinds: frozenset[str]) -> dict[str, tuple[AllowRule, ...]]:
    """Who each endpoint accepts (brief R2), then the file's extra ``[[allow]]`` rules."""
    allow: dict[str, list[AllowRule]] = {}
    for m in municipalities:
        allow[m.node] = [AllowRule("kizon-juki", org=m.code),
                         AllowRule("prefecture", org=m.prefecture), AllowRule("kiko")]
    for p in prefectures:
        allow[p.node] = [AllowRule("municipal-cs", org_prefix=p.number), AllowRule("kiko")]
    allow[kiko] = [AllowRule("prefecture"), AllowRule("ipnw")]
    if "cs-kiko" in kinds:
        allow[kiko].append(AllowRule("municipal-cs"))
    for m in municipalities:
        if m.intermediate:
            allow[f"ims-{m.code}"] = [AllowRule("bango-renkei", org=m.code), AllowRule("ipnw")]
    for i, a in enumerate(f.allow):
        if a.node not in allow:
            raise UsageError(f"{where}: allow[{i}].node: {a.node!r} is not an endpoint of this "
                             "topology")
        if a.role not in ROLES:
            raise UsageError(f"{where}: allow[{i}].role: unknown role {a.role!r}")
        allow[a.node].append(AllowRule(a.role, org=a.org, org_prefix=a.org_prefix))
    return {k: tuple(v) for k, v in allow.items()}


def _links(f: TopologyFile, where: str, prefectures: Sequence[Prefecture],
           municipalities: Sequence[Municipality], kiko: str, kinds: frozenset[str],
           endpoints: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    """The generated links of each kind asked for, then the file's ``[[links.extra]]``."""
    pref_of = {p.number: p for p in prefectures}
    links: list[tuple[str, str]] = []
    for m in municipalities:
        if "cs-prefecture" in kinds:
            links.append((m.node, pref_of[m.prefecture].node))
        if "cs-kiko" in kinds:
            links.append((m.node, kiko))
    if "prefecture-kiko" in kinds:
        links.extend((p.node, kiko) for p in prefectures)
    # the way back down: 機構 → each prefecture, then each prefecture → its CSs
    if "kiko-prefecture" in kinds:
        links.extend((kiko, p.node) for p in prefectures)
    if "prefecture-cs" in kinds:
        for p in prefectures:
            links.extend((p.node, m.node) for m in municipalities if m.prefecture == p.number)
    for i, lk in enumerate(f.links.extra):
        for key, node in (("local", lk.local), ("peer", lk.peer)):
            if node not in endpoints:
                raise UsageError(f"{where}: links.extra[{i}].{key}: {node!r} is not an endpoint "
                                 "of this topology")
        links.append((lk.local, lk.peer))
    if len(set(links)) != len(links):
        raise UsageError(f"{where}: links: a link is generated or listed twice")
    return tuple(links)


def _offsets(endpoints: Sequence[str], admin: int, metrics: int) -> dict[str, int]:
    """Endpoints on 1, 2, … in order, skipping the admin and metrics offsets."""
    out: dict[str, int] = {"admin": admin, "metrics": metrics}
    offset = 0
    for name in endpoints:
        offset += 1
        while offset in (admin, metrics):
            offset += 1
        out[name] = offset
    if max(out.values()) > MAX_OFFSET:
        raise UsageError(f"{len(endpoints)} endpoints need port offsets beyond {MAX_OFFSET}")
    return out
