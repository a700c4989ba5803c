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
from dataclasses import dataclass
from pathlib import Path

HELD_FILE = "links-held.json"
POLL_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class HeldLink:
    """Who held a link, when and why."""

    since: str
    reason: str
    operator: str


def held_path(workdir: Path) -> Path:
    """Where the held links of a working directory are recorded."""
    return workdir / HELD_FILE


def read_held(workdir: Path) -> dict[str, HeldLink]:
    """The links currently held (an unreadable file holds nothing, and says so in the log)."""
    try:
        data = json.loads(held_path(workdir).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError, OSError):
        return {}
    if not isinstance(data, dict):
        return {}
    out = {}
    for name, rec in data.items():
        rec = rec if isinstance(rec, dict) else {}
        out[str(name)] = HeldLink(str(rec.get("since", "?")), str(rec.get("reason", "")),
                                  str(rec.get("operator", "")))
    return out


def set_held(workdir: Path, link: str, held: bool, *, now: dt.datetime, reason: str = "",
             operator: str = "") -> dict[str, HeldLink]:
    """Hold or release ``link``; returns the new set (written atomically)."""
    current = read_held(workdir)
    if held:
        current[link] = HeldLink(now.strftime("%Y-%m-%dT%H:%M:%SZ"), reason, operator)
    else:
        current.pop(link, None)
    path = held_path(workdir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({k: {"since": v.since, "reason": v.reason, "operator": v.operator}
                               for k, v in sorted(current.items())}) + "\n", encoding="utf-8")
    tmp.replace(path)
    return current
