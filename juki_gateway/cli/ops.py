"""``juki-gateway ops export DIR``: write the operator's files shipped in the package.

The Prometheus alert rules (``alerts.yml``) and their unit tests (``alerts.test.yml``), the
Grafana dashboard (``grafana-dashboard.json``), an example scrape configuration
(``prometheus.yml``), a logrotate example (``logrotate.conf``) and the systemd unit
(``juki-gateway.service``, ``Type=notify``, hardened; ``docs/deployment.md``) live inside the
package (``juki_gateway/ops``), so an installed wheel has them too. ``export`` copies them into
DIR (created if missing); an existing file is kept unless
``--force``.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from juki_gateway.errors import UsageError


def ops_files() -> list[Traversable]:
    """The shipped operator files, by name."""
    root = resources.files("juki_gateway") / "ops"
    return sorted((f for f in root.iterdir() if f.is_file()), key=lambda f: f.name)


def register(subparsers: Any) -> None:
    """Add ``ops export``."""
    ops = subparsers.add_parser(
        "ops", help="operator files: Prometheus alert rules, Grafana dashboard, scrape example")
    sub = ops.add_subparsers(dest="ops_command", metavar="ACTION", required=True)
    export = sub.add_parser(
        "export", help="write the alert rules (+ their promtool tests), the dashboard, an "
        "example scrape configuration and the systemd unit into DIR")
    export.add_argument("dir", metavar="DIR", type=Path,
                        help="directory to write into (created if missing)")
    export.add_argument("--force", action="store_true",
                        help="overwrite files that already exist in DIR")
    export.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    target: Path = args.dir
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target} exists and is not a directory")
    files = ops_files()
    clashes = [f.name for f in files if (target / f.name).exists()]
    if clashes and not args.force:
        raise UsageError(f"{target} already has {', '.join(clashes)} (--force overwrites)")
    target.mkdir(parents=True, exist_ok=True)
    for f in files:
        (target / f.name).write_bytes(f.read_bytes())
        print(target / f.name)
    print(f"{len(files)} files written; check them with: promtool check rules "
          f"{target / 'alerts.yml'}", file=sys.stderr)
    return 0
