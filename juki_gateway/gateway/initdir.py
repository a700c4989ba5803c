"""Creating a working directory: ``gateway.toml``, the dev CA and every identity's certificate.

What the directory holds comes from a topology (:mod:`juki_gateway.gateway.topology`; by default
the shipped ``kanazawa``): its ``gateway.toml`` and a certificate for each of its endpoints and
clients. Idempotent: an existing configuration, CA or key is kept unless ``force`` is given, so running
``juki-gateway init DIR`` twice changes nothing the second time. An existing directory whose
files others can read is repaired first (directories 0700, files 0600) and the report says so.

:func:`init_split` makes a working directory whose topology is cut over several daemons: one
PKI shared by all of them and a sub-directory (``gateway.toml``, logs, stores) per daemon.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from juki_gateway.certs.pki import CA_CERT, CA_KEY, CertificateAuthority
from juki_gateway.errors import UsageError
from juki_gateway.gateway.config import LOOPBACK
from juki_gateway.gateway.jsonlog import KEY_FILE as PSEUDONYM_KEY
from juki_gateway.gateway.jsonlog import load_or_create_key
from juki_gateway.gateway.topology import DEFAULT_TOPOLOGY, Split, Topology, load_topology
from juki_gateway.registry_store.anchor import KEY_NAME as ANCHOR_KEY_NAME
from juki_gateway.registry_store.anchor import ensure_key
from juki_gateway.workdir import CONFIG_NAME, read_toml, restrict_tree


@dataclass
class InitReport:
    """What :func:`init_workdir` created and what it kept."""

    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    #: existing files and directories that others could read, now for this account only
    restricted: list[str] = field(default_factory=list)


def init_workdir(
    directory: Path, now: dt.datetime, *, port_base: int, force: bool = False,
    topology: Topology | None = None, listen: str = LOOPBACK,
    store_urls: Mapping[str, str] | None = None,
) -> InitReport:
    """Create (or complete) a working directory at ``directory`` for ``topology`` (the default
    one when None). An existing ``gateway.toml`` is kept, but when a topology is named and the
    file's endpoints are not that topology's the directory is refused (``force`` replaces it).
    The endpoints and the metrics listener bind ``listen``; ``store_urls`` gives Juki-net
    nodes another store than their SQLite file."""
    topo = topology if topology is not None else load_topology(DEFAULT_TOPOLOGY)
    config = directory / CONFIG_NAME
    if topology is not None and not force:
        _refuse_other(config, [e.name for e in topo.endpoints], f"topology {topo.name}'s")
    content = topo.gateway_toml(port_base, store_urls, listen=listen)  # refused before anything is written
    report = InitReport()
    directory.mkdir(parents=True, exist_ok=True)
    report.restricted = [str(p) for p in restrict_tree(directory)]
    (directory / "logs").mkdir(exist_ok=True)
    _write_config(config, content, force, report)
    _issue_pki(directory / "pki", topo, now, force, report)
    return report


def init_split(
    directory: Path, now: dt.datetime, *, port_base: int, topology: Topology, split: Split,
    force: bool = False, store_urls: Mapping[str, str] | None = None,
) -> InitReport:
    """Create (or complete) a working directory split over several daemons: one PKI in
    ``directory/pki`` (every identity of the topology, and the log pseudonym key the daemons
    share), and per daemon of ``split`` a sub-directory ``directory/<daemon>`` with its own
    ``gateway.toml``, logs and stores (docs/topology.md, "Splitting a topology over several
    daemons"). A directory that holds a one-daemon ``gateway.toml`` is refused, and so is a
    daemon's existing file made for other endpoints (unless ``force``)."""
    if (directory / CONFIG_NAME).exists():
        raise UsageError(f"{directory / CONFIG_NAME} exists: {directory} is a one-daemon working "
                         "directory; split the topology into another directory")
    urls = dict(store_urls or {})
    for node in urls:
        if node not in split.owner:
            raise UsageError(f"--store-url {node}: no daemon hosts an endpoint of that name")
    if not force:
        for plan in split.daemons:
            _refuse_other(directory / plan.name / CONFIG_NAME, list(plan.nodes),
                          f"daemon {plan.name}'s selection")
    contents = {plan.name: topology.daemon_toml(
        split, plan.name, port_base, {n: u for n, u in urls.items() if split.owner[n] == plan.name})
        for plan in split.daemons}  # refused before anything is written
    report = InitReport()
    directory.mkdir(parents=True, exist_ok=True)
    report.restricted = [str(p) for p in restrict_tree(directory)]
    for name, content in contents.items():
        (directory / name / "logs").mkdir(parents=True, exist_ok=True)
        _write_config(directory / name / CONFIG_NAME, content, force, report)
    _issue_pki(directory / "pki", topology, now, force, report)
    # made here, not by the first daemon to start: daemons started together would race
    pseudonym = directory / "pki" / PSEUDONYM_KEY
    (report.kept if pseudonym.exists() else report.created).append(str(pseudonym))
    load_or_create_key(directory / "pki")
    return report


def _refuse_other(config: Path, endpoints: list[str], whose: str) -> None:
    """Refuse an existing ``config`` whose endpoints are not ``endpoints``."""
    if not config.exists():
        return
    have = sorted(str(e.get("name")) for e in read_toml(config).get("endpoints", ()))
    if have != sorted(endpoints):
        raise UsageError(f"{config} was made for other endpoints than {whose}; "
                         "pass --force to replace it (or init another directory)")


def _write_config(config: Path, content: dict[str, Any], force: bool,
                  report: InitReport) -> None:
    if config.exists() and not force:
        report.kept.append(str(config))
        return
    config.write_text("# juki-gateway working directory (made by 'juki-gateway init')\n"
                      + tomli_w.dumps(content))
    report.created.append(str(config))


def _issue_pki(pki: Path, topo: Topology, now: dt.datetime, force: bool,
               report: InitReport) -> None:
    """The CA (kept when it exists, unless ``force``), the audit anchor key and a certificate
    for every identity of ``topo``."""
    if (pki / CA_KEY).exists() and (pki / CA_CERT).exists() and not force:
        ca = CertificateAuthority.load(pki)
        report.kept.append(str(pki / CA_CERT))
    else:
        ca = CertificateAuthority.create(pki, now, overwrite=True)
        report.created.append(str(pki / CA_CERT))
    anchor = pki / ANCHOR_KEY_NAME
    (report.created if ensure_key(anchor) else report.kept).append(str(anchor))
    for ident in topo.identities():
        key = pki / f"{ident.name}.key"
        if key.exists() and (pki / f"{ident.name}.pem").exists() and not force:
            report.kept.append(str(key))
            continue
        ca.issue(ident, now, dns_names=("localhost",))
        report.created.append(str(pki / f"{ident.name}.pem"))
