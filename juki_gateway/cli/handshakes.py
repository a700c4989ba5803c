"""``juki-gateway handshakes [--failed] [--since TS]``: the handshake log as a table."""

from __future__ import annotations

import argparse
from typing import Any

from juki_gateway.gateway.config import load_config
from juki_gateway.gateway.handshake_log import filter_records, format_table, read_records
from juki_gateway.workdir import add_config_argument, config_path_from


def register(sub: Any) -> None:
    """Add the ``handshakes`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser("handshakes", help="print the TLS handshake log")
    p.add_argument("--failed", action="store_true", help="only refused/failed handshakes")
    p.add_argument("--since", metavar="TS", help="only at or after TS (ISO 8601 prefix, UTC)")
    add_config_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the selected records."""
    config = load_config(config_path_from(args))
    records = filter_records(read_records(config.handshake_log), failed=args.failed, since=args.since)
    print(format_table(records) if records else "none")
    return 0
