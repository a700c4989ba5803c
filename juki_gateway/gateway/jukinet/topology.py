"""A small Juki-net topology as data: identities, allow-lists and links of a CS → prefecture →
機構 chain (plus the existing system's client), for tests, benchmarks and the node runner.

:func:`make_chain` issues certificates with the project's development CA into a directory and
returns one :class:`NodeConfig` per node. Ports default to 0 (ephemeral); a node's peers get
their ports when :meth:`JukinetNode.connect` is called.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import msgspec

from juki_gateway.certs.identity import PeerIdentity
from juki_gateway.certs.pki import CRL_FILE, CertificateAuthority
from juki_gateway.errors import UsageError
from juki_gateway.gateway.config import AllowRule
from juki_gateway.gateway.jukinet.node import NodeConfig, PeerAddress
from juki_gateway.protocols.jukinet.search import MAX_SEARCH_LIMIT

#: Identities of the chain: Kanazawa's existing system and CS, Ishikawa prefecture, 機構, and a
#: second municipality (千代田区, prefecture 13) for cross-prefecture 転入通知.
IDENTITIES: dict[str, PeerIdentity] = {
    i.name: i
    for i in (
        PeerIdentity("kizon-172014", "kizon-juki", "172014"),
        PeerIdentity("cs-172014", "municipal-cs", "172014"),
        PeerIdentity("pref-17", "prefecture", "17"),
        PeerIdentity("kiko", "kiko", "jlis"),
        PeerIdentity("pref-13", "prefecture", "13"),
        PeerIdentity("cs-131016", "municipal-cs", "131016"),
        PeerIdentity("kizon-131016", "kizon-juki", "131016"),
        PeerIdentity("cs-162019", "municipal-cs", "162019"),  # a CS of another prefecture (富山)
        # a CS of 石川 pref-17 has no link to: it fetches its 転入通知 from the prefecture
        PeerIdentity("cs-172031", "municipal-cs", "172031"),
        PeerIdentity("ipnw", "ipnw", "ipnw"),  # the network: takes 機構's 処理通番 pairs
    )
}

#: Who each endpoint accepts (R2).
ALLOW: dict[str, tuple[AllowRule, ...]] = {
    "cs-172014": (AllowRule("kizon-juki", org="172014"), AllowRule("prefecture", org="17")),
    "pref-17": (AllowRule("municipal-cs", org_prefix="17"), AllowRule("kiko")),
    "kiko": (AllowRule("prefecture"), AllowRule("municipal-cs"), AllowRule("ipnw")),
    "pref-13": (AllowRule("municipal-cs", org_prefix="13"), AllowRule("kiko")),
    "cs-131016": (AllowRule("kizon-juki", org="131016"), AllowRule("prefecture", org="13")),
}

#: Outbound links: node → peers.
LINKS: dict[str, tuple[str, ...]] = {
    "kizon-172014": ("cs-172014",),
    "cs-172014": ("pref-17", "kiko"),
    "pref-17": ("kiko", "cs-172014"),
    "kiko": ("pref-17", "pref-13"),
    "pref-13": ("kiko", "cs-131016"),
    "cs-131016": ("pref-13", "kiko"),
    "kizon-131016": ("cs-131016",),
    "cs-172031": ("pref-17",),
}

LISTENS = frozenset(ALLOW)


def make_pki(directory: Path, now: dt.datetime, names: list[str] | None = None) -> CertificateAuthority:
    """A development CA in ``directory`` with a certificate for every named identity."""
    ca = CertificateAuthority.create(directory, now, overwrite=True)
    for name in names or list(IDENTITIES):
        ca.issue(IDENTITIES[name], now)
    return ca


def make_chain(
    directory: Path,
    now: dt.datetime,
    *,
    nodes: tuple[str, ...] = ("kizon-172014", "cs-172014", "pref-17", "kiko"),
    store_urls: dict[str, str] | None = None,
    **overrides: Any,
) -> dict[str, NodeConfig]:
    """Certificates and node configurations for ``nodes`` (links only among them)."""
    pki = directory / "pki"
    make_pki(pki, now, list(nodes))
    out: dict[str, NodeConfig] = {}
    for name in nodes:
        ident = IDENTITIES[name]
        peers = tuple(
            PeerAddress(p, IDENTITIES[p].role, IDENTITIES[p].org, "127.0.0.1", 0)
            for p in LINKS.get(name, ()) if p in nodes
        )
        url = (store_urls or {}).get(name) or f"sqlite:///{directory / (name + '.sqlite3')}"
        out[name] = NodeConfig(
            node_id=name, role=ident.role, org=ident.org, store_url=url,
            cert=pki / f"{name}.pem", key=pki / f"{name}.key", ca=pki / "ca.pem", crl=pki / CRL_FILE,
            port=0 if name in LISTENS else None, allow=ALLOW.get(name, ()), peers=peers, **overrides,
        )
    return out


def config_to_json(cfg: NodeConfig) -> str:
    """A node configuration as JSON (for the node runner)."""
    data = asdict(cfg)
    for k in ("cert", "key", "ca", "crl"):
        data[k] = str(data[k])
    return json.dumps(data)


def _decode_path(kind: type, value: Any) -> Any:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError


def config_from_json(text: str, where: str = "node configuration") -> NodeConfig:
    """The inverse of :func:`config_to_json`, validated: an unknown key, a missing one or a
    wrong type is one :class:`UsageError` naming it (docs/configuration.md lists the keys)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{where}: must be a JSON object")
    unknown = sorted(set(data) - {f.name for f in fields(NodeConfig)})
    if unknown:
        raise UsageError(f"{where}: unknown keys {unknown}")
    try:
        cfg = msgspec.convert(data, NodeConfig, dec_hook=_decode_path)
    except msgspec.ValidationError as exc:
        raise UsageError(f"{where}: {exc}") from None
    if not 1 <= cfg.search_limit <= MAX_SEARCH_LIMIT:
        raise UsageError(f"{where}: search_limit must be 1–{MAX_SEARCH_LIMIT}, got {cfg.search_limit}")
    return cfg
