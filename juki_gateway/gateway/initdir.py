"""Creating a working directory: ``gateway.toml``, the dev CA and every identity's certificate.

Idempotent: an existing configuration, CA or key is kept unless ``force`` is given, so running
``juki-gateway init DIR`` twice changes nothing the second time. An existing directory whose
files others can read is repaired first (directories 0700, files 0600) and the report says so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from juki_gateway.certs.pki import CA_CERT, CA_KEY, CertificateAuthority
from juki_gateway.gateway.config import (
    DEFAULT_CLIENTS,
    DEFAULT_ENDPOINTS,
    LOOPBACK,
    default_topology,
)
from juki_gateway.registry_store.anchor import KEY_NAME as ANCHOR_KEY_NAME
from juki_gateway.registry_store.anchor import ensure_key
from juki_gateway.workdir import CONFIG_NAME, restrict_tree


@dataclass
class InitReport:
    """What :func:`init_workdir` created and what it kept."""

    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    #: existing files and directories that others could read, now for this account only
    restricted: list[str] = field(default_factory=list)


def init_workdir(
    directory: Path, now: dt.datetime, *, port_base: int, force: bool = False,
    listen: str = LOOPBACK,
) -> InitReport:
    """Create (or complete) a working directory at ``directory``."""
    report = InitReport()
    directory.mkdir(parents=True, exist_ok=True)
    report.restricted = [str(p) for p in restrict_tree(directory)]
    (directory / "logs").mkdir(exist_ok=True)
    config = directory / CONFIG_NAME
    if config.exists() and not force:
        report.kept.append(str(config))
    else:
        config.write_text(
            "# juki-gateway working directory (made by 'juki-gateway init')\n"
            + tomli_w.dumps(default_topology(port_base, listen))
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
    for ident in (*DEFAULT_ENDPOINTS, *DEFAULT_CLIENTS):
        key = pki / f"{ident.name}.key"
        if key.exists() and (pki / f"{ident.name}.pem").exists() and not force:
            report.kept.append(str(key))
            continue
        ca.issue(ident, now, dns_names=("localhost",))
        report.created.append(str(pki / f"{ident.name}.pem"))
    return report
