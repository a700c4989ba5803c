"""``gateway.toml``: the daemon's configuration, parsed once into typed frozen dataclasses.

The file is data: endpoints (role, org, address, certificate, the allow-list of peer roles),
outbound links, the PKI and log paths, the metrics/admin listeners, timeouts and the store, and
``[jukinet.<endpoint>]`` tables for the Juki-net nodes the daemon hosts (one per municipal-cs,
prefecture and kiko endpoint, each with its own store).
Relative paths are resolved against the directory holding the file. :func:`default_topology`
is the brief's default (Kanazawa CS 172014, Ishikawa 17, 機構, Kanazawa's intermediate server)
and is what ``juki-gateway init`` writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from juki_gateway.certs.identity import ROLES, PeerIdentity
from juki_gateway.errors import UsageError
from juki_gateway.registry_store.engine import config_store_url, resolve_store_url
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

    def endpoint(self, name: str) -> EndpointConfig:
        """The endpoint called ``name``."""
        for ep in self.endpoints:
            if ep.name == name:
                return ep
        raise UsageError(f"{self.path}: no endpoint named {name!r}")


# -- the default topology ---------------------------------------------------------------------

#: Endpoint identities of the default topology, in port order (N+1 … N+4).
DEFAULT_ENDPOINTS: tuple[PeerIdentity, ...] = (
    PeerIdentity("cs-172014", "municipal-cs", "172014"),
    PeerIdentity("pref-17", "prefecture", "17"),
    PeerIdentity("kiko", "kiko", "jlis"),
    PeerIdentity("ims-172014", "intermediate", "172014"),
)

#: Client identities: simulators, test peers and operators.
DEFAULT_CLIENTS: tuple[PeerIdentity, ...] = (
    PeerIdentity("kizon-172014", "kizon-juki", "172014"),
    PeerIdentity("renkei-172014", "bango-renkei", "172014"),
    PeerIdentity("ipnw", "ipnw", "ipnw"),
    PeerIdentity("cs-172031", "municipal-cs", "172031"),
    PeerIdentity("cs-162019", "municipal-cs", "162019"),
    PeerIdentity("op-alice", "operator", "172014", ("flag-operator", "reviewer")),
    PeerIdentity("op-bob", "operator", "172014", ("flag-operator", "reviewer")),
    PeerIdentity("op-carol", "operator", "172014", ("auditor",)),
)

#: Who each endpoint accepts (brief R2), as data.
DEFAULT_ALLOW: Mapping[str, tuple[dict[str, str], ...]] = {
    "cs-172014": (
        {"role": "kizon-juki", "org": "172014"},
        {"role": "prefecture", "org": "17"},
        {"role": "kiko"},
    ),
    "pref-17": ({"role": "municipal-cs", "org_prefix": "17"}, {"role": "kiko"}),
    "kiko": ({"role": "prefecture"},),
    "ims-172014": ({"role": "bango-renkei", "org": "172014"}, {"role": "ipnw"}),
}

#: Outbound links of the default topology: CS → prefecture → 機構.
DEFAULT_LINKS: tuple[tuple[str, str], ...] = (("cs-172014", "pref-17"), ("pref-17", "kiko"))


def default_topology(port_base: int = DEFAULT_PORT_BASE) -> dict[str, Any]:
    """The default ``gateway.toml`` content as a TOML-ready dict."""
    ports = {ident.name: port_base + 1 + i for i, ident in enumerate(DEFAULT_ENDPOINTS)}
    return {
        "pki": {"dir": "pki", "ca": "pki/ca.pem", "crl": "pki/crl.pem"},
        "logs": {"handshakes": "logs/handshakes.jsonl"},
        "metrics": {"host": LOOPBACK, "port": port_base + 20},
        "admin": {"host": LOOPBACK, "port": port_base + 10},
        "timeouts": {"handshake": 10.0, "idle": 300.0, "drain": 10.0},
        "store": {"url": "sqlite:///registry.sqlite3"},
        "jukinet": {
            "host": True,
            **{
                ident.name: {"store_url": f"sqlite:///jukinet-{ident.name}.sqlite3"}
                for ident in DEFAULT_ENDPOINTS
                if ident.role in JUKINET_ROLES
            },
        },
        "endpoints": [
            {
                "name": ident.name,
                "role": ident.role,
                "org": ident.org,
                "host": LOOPBACK,
                "port": ports[ident.name],
                "cert": f"pki/{ident.name}.pem",
                "key": f"pki/{ident.name}.key",
                "allow": [dict(rule) for rule in DEFAULT_ALLOW[ident.name]],
            }
            for ident in DEFAULT_ENDPOINTS
        ],
        "links": [
            {
                "name": f"{local}->{peer}",
                "local": local,
                "peer": peer,
                "host": LOOPBACK,
                "port": ports[peer],
                "ping_interval": 30.0,
                "backoff_initial": 0.2,
                "backoff_max": 5.0,
            }
            for local, peer in DEFAULT_LINKS
        ],
    }


# -- parsing ----------------------------------------------------------------------------------


def _need(table: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in table:
        raise UsageError(f"{where}: missing '{key}'")
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise UsageError(f"{where}: '{key}' must be a {kind.__name__}, got {value!r}")
    return value


def _port(table: Mapping[str, Any], where: str) -> int:
    port: int = _need(table, "port", int, where)
    if not 0 <= port <= 65535:
        raise UsageError(f"{where}: port {port} out of range")
    return port


def _rule(raw: Any, where: str) -> AllowRule:
    if not isinstance(raw, Mapping):
        raise UsageError(f"{where}: allow entries must be tables")
    role = _need(raw, "role", str, where)
    if role not in ROLES:
        raise UsageError(f"{where}: unknown role {role!r}")
    unknown = set(raw) - {"role", "org", "org_prefix"}
    if unknown:
        raise UsageError(f"{where}: unknown keys {sorted(unknown)}")
    return AllowRule(role=role, org=raw.get("org"), org_prefix=raw.get("org_prefix"))


def _jukinet_tables(
    raw: Mapping[str, Any], endpoints: list[EndpointConfig], base: Path, where: str
) -> tuple[bool, dict[str, JukinetSettings]]:
    """``[jukinet]``: ``host`` and one sub-table per hosted endpoint (all optional)."""
    host = raw.get("host", True)
    if not isinstance(host, bool):
        raise UsageError(f"{where}: [jukinet] host must be true or false")
    names = {e.name for e in endpoints if e.role in JUKINET_ROLES}
    for key, value in raw.items():
        if key == "host":
            continue
        if key not in names or not isinstance(value, Mapping):
            raise UsageError(f"{where}: [jukinet.{key}] names no municipal-cs, prefecture or "
                             "kiko endpoint of this file")
        unknown = set(value) - {"store_url", "window", "commit_delay", "commit_records"}
        if unknown:
            raise UsageError(f"{where}: [jukinet.{key}] unknown keys {sorted(unknown)}")
    out: dict[str, JukinetSettings] = {}
    for name in sorted(names) if host else ():
        t: Mapping[str, Any] = raw.get(name, {})
        w = f"{where}: [jukinet.{name}]"
        url = t.get("store_url", f"sqlite:///jukinet-{name}.sqlite3")
        if not isinstance(url, str) or not url:
            raise UsageError(f"{w}: store_url must be a non-empty string")
        window, records = t.get("window", 40_000), t.get("commit_records", 3000)
        for key, number in (("window", window), ("commit_records", records)):
            if isinstance(number, bool) or not isinstance(number, int) or number < 1:
                raise UsageError(f"{w}: {key} must be a positive integer")
        delay = t.get("commit_delay", 0.002)
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= 1:
            raise UsageError(f"{w}: commit_delay must be seconds between 0 and 1")
        out[name] = JukinetSettings(config_store_url(url, base), window, float(delay), records)
    return host, out


def parse_config(data: Mapping[str, Any], path: Path) -> GatewayConfig:
    """Turn the parsed TOML of ``path`` into a :class:`GatewayConfig` (paths made absolute)."""
    base = path.parent.resolve()
    where = str(path)

    def table(name: str) -> Mapping[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, Mapping):
            raise UsageError(f"{where}: [{name}] must be a table")
        return value

    pki = table("pki")
    logs = table("logs")
    endpoints: list[EndpointConfig] = []
    for i, raw in enumerate(data.get("endpoints", [])):
        w = f"{where}: endpoints[{i}]"
        role = _need(raw, "role", str, w)
        if role not in ROLES:
            raise UsageError(f"{w}: unknown role {role!r}")
        endpoints.append(
            EndpointConfig(
                name=_need(raw, "name", str, w),
                role=role,
                org=_need(raw, "org", str, w),
                host=raw.get("host", LOOPBACK),
                port=_port(raw, w),
                cert=base / _need(raw, "cert", str, w),
                key=base / _need(raw, "key", str, w),
                allow=tuple(_rule(r, w) for r in raw.get("allow", [])),
            )
        )
    names = [e.name for e in endpoints]
    if len(set(names)) != len(names):
        raise UsageError(f"{where}: endpoint names must be unique")
    links: list[LinkConfig] = []
    for i, raw in enumerate(data.get("links", [])):
        w = f"{where}: links[{i}]"
        local = _need(raw, "local", str, w)
        if local not in names:
            raise UsageError(f"{w}: local node {local!r} is not an endpoint of this file")
        peer = _need(raw, "peer", str, w)
        links.append(
            LinkConfig(
                name=raw.get("name", f"{local}->{peer}"),
                local=local,
                peer=peer,
                host=raw.get("host", LOOPBACK),
                port=_port(raw, w),
                ping_interval=float(raw.get("ping_interval", 30.0)),
                backoff_initial=float(raw.get("backoff_initial", 1.0)),
                backoff_max=float(raw.get("backoff_max", 60.0)),
                peer_role=raw.get("peer_role"),
                peer_org=raw.get("peer_org"),
            )
        )
        if links[-1].peer_role is not None and links[-1].peer_role not in ROLES:
            raise UsageError(f"{w}: unknown peer_role {links[-1].peer_role!r}")
    flush_delay = logs.get("flush_delay", 0.2)
    if isinstance(flush_delay, bool) or not isinstance(flush_delay, int | float) or not (
        0 <= flush_delay <= 60
    ):
        raise UsageError(f"{where}: [logs] flush_delay must be seconds between 0 and 60")
    host_jukinet, jukinet = _jukinet_tables(table("jukinet"), endpoints, base, where)
    metrics = table("metrics")
    admin = table("admin")
    timeouts = table("timeouts")
    store = table("store")
    limits = table("limits")
    unknown_limits = set(limits) - {"connections_per_peer"}
    if unknown_limits:
        raise UsageError(f"{where}: [limits] has unknown keys {sorted(unknown_limits)}")
    per_peer = limits.get("connections_per_peer", 8)
    if isinstance(per_peer, bool) or not isinstance(per_peer, int) or not 1 <= per_peer <= 10_000:
        raise UsageError(f"{where}: [limits] connections_per_peer must be a whole number from 1 to 10000")
    return GatewayConfig(
        path=path.resolve(),
        workdir=base,
        pki_dir=base / pki.get("dir", "pki"),
        ca=base / pki.get("ca", "pki/ca.pem"),
        crl=base / pki.get("crl", "pki/crl.pem"),
        handshake_log=base / logs.get("handshakes", "logs/handshakes.jsonl"),
        endpoints=tuple(endpoints),
        links=tuple(links),
        metrics=ListenerConfig(metrics.get("host", LOOPBACK), _port({"port": 0, **metrics}, where)),
        admin=ListenerConfig(admin.get("host", LOOPBACK), _port({"port": 0, **admin}, where)),
        timeouts=TimeoutConfig(
            handshake=float(timeouts.get("handshake", 10.0)),
            idle=float(timeouts.get("idle", 300.0)),
            drain=float(timeouts.get("drain", 10.0)),
        ),
        store=StoreConfig(url=resolve_store_url(None, path, config={"store": store})),
        handshake_log_flush=float(flush_delay),
        host_jukinet=host_jukinet,
        jukinet=jukinet,
        connections_per_peer=per_peer,
    )


def load_config(path: Path) -> GatewayConfig:
    """Read and parse ``gateway.toml`` at ``path``."""
    return parse_config(read_toml(path), path)
