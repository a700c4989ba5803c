"""Creating a working directory: ``gateway.toml``, the dev CA and every identity's certificate.

What the directory holds comes from a topology (:mod:`juki_gateway.gateway.topology`; by default
the shipped ``kanazawa``): its ``gateway.toml`` and a certificate for each of its endpoints and
clients. Idempotent: an existing configuration, CA or key is kept unless ``force`` is given, so running
``juki-gateway init DIR`` twice changes nothing the second time. An existing directory whose
files others can read is repaired first (directories 0700, files 0600) and the report says so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from juki_gateway.certs.pki import CA_CERT, CA_KEY, CertificateAuthority
from juki_gateway.errors import UsageError
from juki_gateway.gateway.config import LOOPBACK
from juki_gateway.gateway.topology import DEFAULT_TOPOLOGY, Topology, load_topology
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
) -> InitReport:
    """Create (or complete) a working directory at ``directory`` for ``topology`` (the default
    one when None). An existing ``gateway.toml`` is kept, but when a topology is named and the
    file's endpoints are not that topology's the directory is refused (``force`` replaces it)."""
    topo = topology if topology is not None else load_topology(DEFAULT_TOPOLOGY)
    config = directory / CONFIG_NAME
    if topology is not None and config.exists() and not force:
        have = sorted(str(e.get("name")) for e in read_toml(config).get("endpoints", ()))
        if have != sorted(e.name for e in topo.endpoints):
            raise UsageError(f"{config} was made for other endpoints than topology {topo.name}'s; "
                             "pass --force to replace it (or init another directory)")
    report = InitReport()
    directory.mkdir(parents=True, exist_ok=True)
    report.restricted = [str(p) for p in restrict_tree(directory)]
    (directory / "logs").mkdir(exist_ok=True)
    if config.exists() and not force:
        report.kept.append(str(config))
    else:
        config.write_text(
            "# juki-gateway working directory (made by 'juki-gateway init')\n"
            + tomli_w.dumps(topo.gateway_toml(port_base, listen))
        )
        report.created.append(str(config))
    pki = directory / "pki"
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
    return report
