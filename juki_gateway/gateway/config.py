"""``gateway.toml``: the daemon's configuration, validated against a schema and parsed once into
typed frozen dataclasses.

The file is data: endpoints (role, org, address, certificate, the allow-list of peer roles),
outbound links, the PKI and log paths, the metrics/admin listeners, timeouts and the store,
``[jukinet.<endpoint>]`` tables for the Juki-net nodes the daemon hosts (one per municipal-cs,
prefecture and kiko endpoint, each with its own store), and the ``[retention]`` policy its
stores are purged by.
Relative paths are resolved against the directory holding the file. :func:`default_topology`
is the brief's default (Kanazawa CS 172014, Ishikawa 17, 機構, Kanazawa's intermediate server)
and is what ``juki-gateway init`` writes; other topologies (``init --topology``) are data files
read by :mod:`juki_gateway.gateway.topology`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import msgspec

from juki_gateway.certs.identity import ROLES
from juki_gateway.errors import UsageError
from juki_gateway.protocols.jukinet.search import DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT
from juki_gateway.registry_store.engine import DEFAULT_SQLITE_NAME, config_store_url
from juki_gateway.registry_store.retention import DEFAULT_POLICY, RetentionPolicy
from juki_gateway.workdir import read_toml

DEFAULT_PORT_BASE = 7100
LOOPBACK = "127.0.0.1"
#: Endpoint roles the daemon serves with a hosted Juki-net node (CS → prefecture → 機構).
JUKINET_ROLES = frozenset({"municipal-cs", "prefecture", "kiko"})


@dataclass(frozen=True, slots=True)
class AllowRule:
    """One allowed peer: a role, and an exact org code or an org prefix (or any org)."""

    role: str
    org: str | None = None
    org_prefix: str | None = None

    def org_matches(self, org: str) -> bool:
        """Whether ``org`` satisfies this rule's organisation condition."""
        if self.org is not None and org != self.org:
            return False
        return self.org_prefix is None or org.startswith(self.org_prefix)


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """One listening endpoint role of the daemon."""

    name: str
    role: str
    org: str
    host: str
    port: int
    cert: Path
    key: Path
    allow: tuple[AllowRule, ...]


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """One outbound link: a local node (whose certificate is used) to a peer endpoint."""

    name: str
    local: str
    peer: str
    host: str
    port: int
    ping_interval: float
    backoff_initial: float
    backoff_max: float
    #: the peer's role and organisation (checked against its certificate); needed only when the
    #: peer is not an endpoint of this file (a deployment hosting one role links to other hosts)
    peer_role: str | None = None
    peer_org: str | None = None


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    """A plain listener (metrics, admin)."""

    host: str
    port: int


@dataclass(frozen=True, slots=True)
class TimeoutConfig:
    """Connection timeouts in seconds."""

    handshake: float = 10.0
    idle: float = 300.0
    drain: float = 10.0


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Where the registry store lives (an SQLAlchemy URL; SQLite paths made absolute)."""

    url: str


@dataclass(frozen=True, slots=True)
class JukinetSettings:
    """``[jukinet.<endpoint>]``: how the daemon hosts the Juki-net node of one endpoint."""

    store_url: str
    window: int = 40_000
    commit_delay: float = 0.002
    commit_records: int = 3000
    #: records one 本人確認情報 search answer carries at most (it says how many matched in all)
    search_limit: int = DEFAULT_SEARCH_LIMIT
    #: several daemons (``instance`` names each) share this node's PostgreSQL store; each
    #: outbound link is driven by the daemon holding its lease (``lease_ttl``, ``link_poll``)
    shared_store: bool = False
    instance: str = ""
    lease_ttl: float = 3.0
    link_poll: float = 0.1


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """``[retention]``: whether the daemon runs its stores' retention jobs, at which JST hour,
    and the periods (docs/store.md, "Retention")."""

    enabled: bool = True
    hour: int = 3
    policy: RetentionPolicy = DEFAULT_POLICY


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """The whole parsed ``gateway.toml``."""

    path: Path
    workdir: Path
    ca: Path
    crl: Path
    handshake_log: Path
    endpoints: tuple[EndpointConfig, ...]
    links: tuple[LinkConfig, ...]
    metrics: ListenerConfig
    admin: ListenerConfig
    timeouts: TimeoutConfig
    store: StoreConfig
    pki_dir: Path
    #: ``[logs] flush_delay``: seconds a handshake-log record may stay buffered (0: none)
    handshake_log_flush: float = 0.2
    #: ``[jukinet] host``: serve municipal-cs/prefecture/kiko endpoints with hosted Juki-net nodes
    host_jukinet: bool = True
    #: ``[limits] connections_per_peer``: authenticated connections one peer certificate may hold
    #: to one endpoint at once (more are refused with ERROR 3003 after the handshake)
    connections_per_peer: int = 8
    #: per hosted endpoint name (every endpoint of a Juki-net role when ``host_jukinet``)
    jukinet: Mapping[str, JukinetSettings] = field(default_factory=dict)
    #: ``[retention]``: the retention jobs of the registry store and of every node store
    retention: RetentionSettings = RetentionSettings()

    def stores(self) -> dict[str, str]:
        """Every store of this configuration by name: ``registry`` (``[store] url``), then each
        hosted Juki-net node's (named by its endpoint)."""
        return {"registry": self.store.url,
                **{name: node.store_url for name, node in self.jukinet.items()}}

    def endpoint(self, name: str) -> EndpointConfig:
        """The endpoint called ``name``."""
        for ep in self.endpoints:
            if ep.name == name:
                return ep
        raise UsageError(f"{self.path}: no endpoint named {name!r}")

    def intermediate_endpoint(self) -> EndpointConfig | None:
        """The intermediate server's endpoint, if the file has one."""
        return next((ep for ep in self.endpoints if ep.role == "intermediate"), None)


# -- the default topology ---------------------------------------------------------------------


def default_topology(port_base: int = DEFAULT_PORT_BASE, listen: str = LOOPBACK) -> dict[str, Any]:
    """The default ``gateway.toml`` content (the shipped ``kanazawa`` topology,
    ``juki_gateway/topologies/kanazawa.toml``) as a TOML-ready dict; the endpoints and the
    metrics listener bind ``listen``."""
    from juki_gateway.gateway.topology import DEFAULT_TOPOLOGY, load_topology

    return load_topology(DEFAULT_TOPOLOGY).gateway_toml(port_base, listen=listen)


# -- parsing ----------------------------------------------------------------------------------
#
# The file's shape is a msgspec schema: msgspec validates a decoded TOML document against typed
# structs in one pass, refuses unknown keys anywhere (``forbid_unknown_fields``), checks ranges
# from ``Meta`` constraints (NaN fails every one of them), and says where it failed
# (``$.timeouts.handshake``), so every error is one line naming the key. It is small, has no
# dependencies and is well kept; the structs below are the file's contract, and what is
# checked across tables (roles, names, links) follows them.

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Text = Annotated[str, msgspec.Meta(min_length=1)]


#: A duration: positive, finite, at most a week.
Seconds = Annotated[float, msgspec.Meta(gt=0, le=7 * 86400)]
#: A batching delay, where 0 means none.
FlushDelay = Annotated[float, msgspec.Meta(ge=0, le=60)]
CommitDelay = Annotated[float, msgspec.Meta(ge=0, le=1)]


class _Table(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A table of the file: unknown keys are refused."""


class PkiTable(_Table, frozen=True):
    dir: Text = "pki"
    ca: Text = "pki/ca.pem"
    crl: Text = "pki/crl.pem"


class LogsTable(_Table, frozen=True):
    handshakes: Text = "logs/handshakes.jsonl"
    flush_delay: FlushDelay = 0.2


class ListenerTable(_Table, frozen=True):
    host: Text = LOOPBACK
    port: Port = 0


class TimeoutsTable(_Table, frozen=True):
    handshake: Seconds = 10.0
    idle: Seconds = 300.0
    drain: Seconds = 10.0


class StoreTable(_Table, frozen=True):
    url: Text | None = None


class LimitsTable(_Table, frozen=True):
    connections_per_peer: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 8


#: Retention periods in years: at least the rule's own period (5 years: R9 and 送付先 provision
#: records; 7 years: R5 and R6), at most the 150 years current law keeps the CS's 本人確認情報.
AtLeast5Years = Annotated[int, msgspec.Meta(ge=5, le=150)]
AtLeast7Years = Annotated[int, msgspec.Meta(ge=7, le=150)]


class RetentionTable(_Table, frozen=True):
    """``[retention]``: a period shorter than its rule's is refused."""

    enabled: bool = True
    hour: Annotated[int, msgspec.Meta(ge=0, le=23)] = 3
    honnin_kakunin_years: AtLeast5Years = 5
    provision_years: AtLeast7Years = 7
    soufusaki_provision_years: AtLeast5Years = 5
    audit_years: AtLeast7Years = 7


class AllowTable(_Table, frozen=True):
    role: Text
    org: Text | None = None
    org_prefix: Text | None = None


class EndpointTable(_Table, frozen=True):
    name: Text
    role: Text
    org: Text
    port: Port
    cert: Text
    key: Text
    host: Text = LOOPBACK
    allow: tuple[AllowTable, ...] = ()


class LinkTable(_Table, frozen=True):
    local: Text
    peer: Text
    port: Port
    name: Text | None = None
    host: Text = LOOPBACK
    ping_interval: Seconds = 30.0
    backoff_initial: Seconds = 1.0
    backoff_max: Seconds = 60.0
    peer_role: Text | None = None
    peer_org: Text | None = None


class NodeTable(_Table, frozen=True):
    """``[jukinet.<endpoint>]``."""

    store_url: Text | None = None
    window: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 40_000
    commit_delay: CommitDelay = 0.002
    commit_records: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 3000
    search_limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_SEARCH_LIMIT)] = DEFAULT_SEARCH_LIMIT
    shared_store: bool = False
    instance: str = ""
    lease_ttl: Seconds = 3.0
    link_poll: Seconds = 0.1


class FileSchema(_Table, frozen=True):
    """The whole file (``[jukinet]`` is checked apart: its sub-tables are named by endpoints)."""

    pki: PkiTable = PkiTable()
    logs: LogsTable = LogsTable()
    metrics: ListenerTable = ListenerTable()
    admin: ListenerTable = ListenerTable()
    timeouts: TimeoutsTable = TimeoutsTable()
    store: StoreTable = StoreTable()
    limits: LimitsTable = LimitsTable()
    retention: RetentionTable = RetentionTable()
    endpoints: tuple[EndpointTable, ...] = ()
    links: tuple[LinkTable, ...] = ()
    jukinet: dict[str, Any] = msgspec.field(default_factory=dict)


def convert_table(value: Any, kind: Any, where: str, prefix: str = "") -> Any:
    """``value`` as ``kind``, or a one-line UsageError naming the offending key."""
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        text = str(exc)
        message, _, at = text.partition(" - at `$")
        key = (prefix + at.rstrip("`")).lstrip(".")
        raise UsageError(f"{where}: {key + ': ' if key else ''}{message}") from None


def _check_role(role: str | None, where: str, key: str) -> None:
    if role is not None and role not in ROLES:
        raise UsageError(f"{where}: {key}: unknown role {role!r} (known: {', '.join(sorted(ROLES))})")


def _jukinet_tables(
    raw: Mapping[str, Any], endpoints: list[EndpointConfig], base: Path, where: str
) -> tuple[bool, dict[str, JukinetSettings]]:
    """``[jukinet]``: ``host`` and one sub-table per hosted endpoint (all optional)."""
    host = convert_table(raw.get("host", True), bool, where, "jukinet.host")
    names = {e.name for e in endpoints if e.role in JUKINET_ROLES}
    tables: dict[str, NodeTable] = {}
    for key, value in raw.items():
        if key == "host":
            continue
        if key not in names:
            raise UsageError(f"{where}: jukinet.{key}: names no municipal-cs, prefecture or kiko "
                             "endpoint of this file")
        tables[key] = convert_table(value, NodeTable, where, f"jukinet.{key}")
    out: dict[str, JukinetSettings] = {}
    for name in sorted(names) if host else ():
        t = tables.get(name, NodeTable())
        url = config_store_url(t.store_url or f"sqlite:///jukinet-{name}.sqlite3", base)
        if t.shared_store and not url.startswith("postgresql"):
            raise UsageError(f"{where}: jukinet.{name}: shared_store needs a PostgreSQL store_url "
                             "(several daemons share one store)")
        out[name] = JukinetSettings(url, t.window, t.commit_delay, t.commit_records,
                                    search_limit=t.search_limit, shared_store=t.shared_store, instance=t.instance,
                                    lease_ttl=t.lease_ttl, link_poll=t.link_poll)
    return host, out


def parse_config(data: Mapping[str, Any], path: Path) -> GatewayConfig:
    """Turn the parsed TOML of ``path`` into a :class:`GatewayConfig` (paths made absolute)."""
    base = path.parent.resolve()
    where = str(path)
    f: FileSchema = convert_table(data, FileSchema, where)
    endpoints: list[EndpointConfig] = []
    for i, e in enumerate(f.endpoints):
        _check_role(e.role, where, f"endpoints[{i}].role")
        for j, r in enumerate(e.allow):
            _check_role(r.role, where, f"endpoints[{i}].allow[{j}].role")
        endpoints.append(EndpointConfig(
            name=e.name, role=e.role, org=e.org, host=e.host, port=e.port, cert=base / e.cert,
            key=base / e.key,
            allow=tuple(AllowRule(role=r.role, org=r.org, org_prefix=r.org_prefix)
                        for r in e.allow)))
    names = [e.name for e in endpoints]
    if len(set(names)) != len(names):
        raise UsageError(f"{where}: endpoints: names must be unique")
    links: list[LinkConfig] = []
    for i, lk in enumerate(f.links):
        w = f"links[{i}]"
        if lk.local not in names:
            raise UsageError(f"{where}: {w}.local: {lk.local!r} is not an endpoint of this file")
        _check_role(lk.peer_role, where, f"{w}.peer_role")
        if lk.backoff_max < lk.backoff_initial:
            raise UsageError(f"{where}: {w}.backoff_max: {lk.backoff_max} is below backoff_initial "
                             f"{lk.backoff_initial}")
        links.append(LinkConfig(
            name=lk.name or f"{lk.local}->{lk.peer}", local=lk.local, peer=lk.peer, host=lk.host,
            port=lk.port, ping_interval=lk.ping_interval, backoff_initial=lk.backoff_initial,
            backoff_max=lk.backoff_max, peer_role=lk.peer_role, peer_org=lk.peer_org))
    host_jukinet, jukinet = _jukinet_tables(f.jukinet, endpoints, base, where)
    return GatewayConfig(
        path=path.resolve(),
        workdir=base,
        pki_dir=base / f.pki.dir,
        ca=base / f.pki.ca,
        crl=base / f.pki.crl,
        handshake_log=base / f.logs.handshakes,
        endpoints=tuple(endpoints),
        links=tuple(links),
        metrics=ListenerConfig(f.metrics.host, f.metrics.port),
        admin=ListenerConfig(f.admin.host, f.admin.port),
        timeouts=TimeoutConfig(f.timeouts.handshake, f.timeouts.idle, f.timeouts.drain),
        store=StoreConfig(url=config_store_url(f.store.url or f"sqlite:///{DEFAULT_SQLITE_NAME}", base)),
        handshake_log_flush=f.logs.flush_delay,
        host_jukinet=host_jukinet,
        jukinet=jukinet,
        connections_per_peer=f.limits.connections_per_peer,
        retention=RetentionSettings(
            enabled=f.retention.enabled, hour=f.retention.hour,
            policy=RetentionPolicy(
                honnin_kakunin_years=f.retention.honnin_kakunin_years,
                provision_years=f.retention.provision_years,
                soufusaki_provision_years=f.retention.soufusaki_provision_years,
                audit_years=f.retention.audit_years)),
    )


def load_config(path: Path) -> GatewayConfig:
    """Read and parse ``gateway.toml`` at ``path``."""
    return parse_config(read_toml(path), path)
