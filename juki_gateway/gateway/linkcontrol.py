"""Operator switch for the daemon's Juki-net links: hold (cut) a link and release (restore) it.

The held links are a small JSON file in the working directory (``links-held.json``), like the
maintenance flag: ``juki-gateway link hold|release`` writes it whether or not the daemon runs,
and a running daemon polls it every :data:`POLL_SECONDS` (a held link's connection is dropped at
once and not re-opened; its node keeps queueing in the outbox and resends on release). The
link-outage scenario uses the same functions to cut the daemon's own links mid-run.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from juki_gateway.gateway.health import OperatorSwitch, write_json_atomic

HELD_FILE = "links-held.json"
POLL_SECONDS = 0.25


#: Who held a link, when and why.
HeldLink = OperatorSwitch


def held_path(workdir: Path) -> Path:
    """Where the held links of a working directory are recorded."""
    return workdir / HELD_FILE


def read_held(workdir: Path) -> dict[str, HeldLink]:
    """The links currently held (a missing or unreadable file holds nothing)."""
    try:
        data = json.loads(held_path(workdir).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError, OSError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(name): OperatorSwitch.from_json(rec) for name, rec in data.items()}


def set_held(workdir: Path, link: str, held: bool, *, now: dt.datetime, reason: str = "",
             operator: str = "") -> dict[str, HeldLink]:
    """Hold or release ``link``; returns the new set (written atomically)."""
    current = read_held(workdir)
    if held:
        current[link] = OperatorSwitch.made(now, reason, operator)
    else:
        current.pop(link, None)
    write_json_atomic(held_path(workdir), {k: v.to_json() for k, v in sorted(current.items())})
    return current
