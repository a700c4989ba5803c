"""The daemon's own Juki-net links in a scenario run: outages, and what reached 機構.

* :class:`DaemonLinkOutages` cuts and restores the daemon's internal links (``cs-172014->pref-17``,
  ``pref-17->kiko`` …) at the times the scenario's ``[[outage]]`` tables say, through the same
  operator switch as ``juki-gateway link hold|release`` (a file in the daemon's working
  directory, which the daemon polls): while a link is held the sending node queues in its
  outbox; on release it resends from the first unacknowledged 更新順番号.
* :class:`ChainProbe` reads the daemon's ``/metrics`` before and after the run and checks R4 end
  to end: every update the existing system got acknowledged by the CS was applied at 機構
  exactly once (no more, no fewer), once the daemon's outboxes have drained.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from juki_gateway.gateway.linkcontrol import read_held, set_held
from juki_gateway.gateway.metrics import scrape_metrics
from juki_gateway.simulators.scenario import Outage
from juki_gateway.simulators.summary import RunSummary

OPERATOR = "simulate"
APPLIED = "juki_gateway_jukinet_messages_total"
DEPTH = "juki_gateway_jukinet_outbox_depth"


@dataclass
class DaemonLinkOutages:
    """Holds and releases the daemon's links on the scenario's timetable."""

    reactor: Any
    workdir: Path
    outages: list[Outage]
    summary: RunSummary
    held: set[str] = field(default_factory=set)

    def _switch(self, link: str, hold: bool, t: float) -> None:
        now = dt.datetime.fromtimestamp(self.reactor.seconds(), dt.UTC)
        set_held(self.workdir, link, hold, now=now, reason=f"scenario {self.summary.scenario}",
                 operator=OPERATOR)
        (self.held.add if hold else self.held.discard)(link)
        self.summary.notes.append(f"daemon link {link} {'cut' if hold else 'restored'} at {t:.1f}s")

    async def run(self, duration: float) -> None:
        """Follow the timetable (events past ``duration`` are skipped); every cut is restored."""
        start = self.reactor.seconds()
        events = sorted([(o.at, o.link, True) for o in self.outages if o.at < duration]
                        + [(min(o.at + o.duration, duration), o.link, False)
                           for o in self.outages if o.at < duration])
        try:
            for at, link, hold in events:
                wait = start + at - self.reactor.seconds()
                if wait > 0:
                    await deferLater(self.reactor, wait, lambda: None)
                self._switch(link, hold, self.reactor.seconds() - start)
        finally:
            for link in sorted(self.held):
                self._switch(link, False, self.reactor.seconds() - start)
        skipped = [o.link for o in self.outages if o.at >= duration]
        if skipped:
            self.summary.notes.append(f"outages of {', '.join(skipped)} fall after the run's end")

    def still_held(self) -> list[str]:
        """Links the daemon's switch file still holds (none, after :meth:`run`)."""
        return sorted(read_held(self.workdir))


@dataclass
class ChainProbe:
    """Counts, from the daemon's metrics, the update notifications 機構 applied."""

    reactor: Any
    metrics_url: str
    kiko: str
    baseline: float = 0.0

    def _applied(self, samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> float:
        return sum(v for (name, labels), v in samples.items() if name == APPLIED and
                   dict(labels).get("node") == self.kiko and
                   dict(labels).get("msg_type") == "UPDATE_NOTIFY" and
                   dict(labels).get("result") == "applied")

    async def start(self) -> None:
        """Read the baseline (what 機構 had applied before this run)."""
        self.baseline = self._applied(await deferToThread(scrape_metrics, self.metrics_url))

    async def check(self, summary: RunSummary, acknowledged: int, cs: str,
                    timeout: float = 60.0) -> None:
        """Wait (bounded) for the outboxes to drain, then compare 機構's count with ``acknowledged``."""
        deadline = self.reactor.seconds() + timeout
        applied, depth = 0.0, 0.0
        while True:
            samples = await deferToThread(scrape_metrics, self.metrics_url)
            applied = self._applied(samples) - self.baseline
            depth = sum(v for (name, _), v in samples.items() if name == DEPTH)
            if (applied >= acknowledged and depth == 0) or self.reactor.seconds() > deadline:
                break
            await deferLater(self.reactor, 0.25, lambda: None)
        summary.check(
            "every acknowledged update reached 機構 exactly once (R4)",
            applied == acknowledged and depth == 0,
            f"{acknowledged} update notifications acknowledged by {cs}, {int(applied)} applied "
            f"at {self.kiko}; {int(depth)} records still queued in the daemon's outboxes")
