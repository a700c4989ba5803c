"""The summary of a simulator run: messages by type and outcome, latency, refusals, invariants.

The simulators record every exchange here (:meth:`RunSummary.record`); at the end the summary
renders as a text table (:meth:`RunSummary.render`) or as JSON (:meth:`RunSummary.to_json`,
what ``--json FILE`` writes). Latencies are kept exactly (a run is bounded in time), so p50/p99
are true percentiles, not bucket estimates. An invariant is a named check with its evidence;
the run passes only when every invariant held.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Invariant:
    """One property the run checked, whether it held, and the evidence."""

    name: str
    held: bool
    detail: str


def percentile(values: list[float], q: float) -> float:
    """The ``q`` percentile (0-100) of ``values`` by the nearest-rank method (0.0 if empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class RunSummary:
    """Everything a run observed; filled by the simulators, rendered at the end."""

    scenario: str
    target: str = ""
    started: float = 0.0
    finished: float = 0.0
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    held_queries: int = 0
    flagged_auto_answers: int = 0
    invariants: list[Invariant] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: moves between municipalities (docs/moves.md), by step: 転入通知 delivered to Kanazawa's
    #: existing system, 転出確定 recorded, 消除 sent (and acknowledged), 転出証明書情報
    #: registered and fetched, 転入通知 delivered to the other municipality
    moves: Counter[str] = field(default_factory=Counter)
    #: per-hop figures of the daemons' metrics (a season over a topology): by node or group of
    #: nodes, records applied, acknowledged by the next hop, refusals sent, ACK latency
    hops: dict[str, dict[str, float]] = field(default_factory=dict)
    #: the signal that stopped the run before its end (SIGINT, SIGTERM): a partial summary
    interrupted: str | None = None

    def record(self, msg_type: str, outcome: str, latency: float | None = None,
               code: str | None = None) -> None:
        """One exchange: its message type, outcome (answered, acked, refused …), latency, code."""
        self.outcomes[(msg_type, outcome)] += 1
        if code is not None:
            self.refusals[code] += 1
        if latency is not None:
            self.latencies.setdefault(msg_type, []).append(latency)

    def check(self, name: str, held: bool, detail: str) -> None:
        """Add an invariant's result."""
        self.invariants.append(Invariant(name, held, detail))

    @property
    def total(self) -> int:
        """Messages exchanged."""
        return sum(self.outcomes.values())

    @property
    def elapsed(self) -> float:
        """Wall seconds the run took."""
        return max(self.finished - self.started, 0.0)

    @property
    def throughput(self) -> float:
        """Messages per second over the run."""
        return self.total / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def ok(self) -> bool:
        """Whether the run ended, and every invariant held (at least one was checked)."""
        return (self.interrupted is None and bool(self.invariants)
                and all(i.held for i in self.invariants))

    def all_latencies(self) -> list[float]:
        """Every latency observed, across message types."""
        return [v for vs in self.latencies.values() for v in vs]

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready data."""
        by_type: dict[str, dict[str, int]] = {}
        for (mt, outcome), n in sorted(self.outcomes.items()):
            by_type.setdefault(mt, {})[outcome] = n
        lat = self.all_latencies()
        return {
            "scenario": self.scenario,
            "target": self.target,
            "elapsed_seconds": round(self.elapsed, 3),
            "messages_total": self.total,
            "throughput_per_second": round(self.throughput, 2),
            "messages": by_type,
            "latency_ms": {
                "p50": round(percentile(lat, 50) * 1000, 3),
                "p99": round(percentile(lat, 99) * 1000, 3),
                "by_type": {
                    mt: {"p50": round(percentile(v, 50) * 1000, 3),
                         "p99": round(percentile(v, 99) * 1000, 3), "n": len(v)}
                    for mt, v in sorted(self.latencies.items())
                },
            },
            "refusals": dict(sorted(self.refusals.items())),
            "held_queries": self.held_queries,
            "flagged_auto_answers": self.flagged_auto_answers,
            "moves": {k: self.moves[k] for k in sorted(self.moves)},
            **({"hops": self.hops} if self.hops else {}),
            "invariants": [
                {"name": i.name, "held": i.held, "detail": i.detail} for i in self.invariants
            ],
            "ok": self.ok,
            "interrupted": self.interrupted,
            "notes": list(self.notes),
        }

    def to_json(self) -> str:
        """The summary as a JSON document."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"

    def render(self) -> str:
        """The summary as the text table printed at the end of a run."""
        d = self.to_dict()
        lines = [
            f"scenario {self.scenario} against {self.target or '-'}: {d['messages_total']} messages "
            f"in {d['elapsed_seconds']:.1f}s ({d['throughput_per_second']:.1f}/s), "
            f"latency p50 {d['latency_ms']['p50']:.1f} ms, p99 {d['latency_ms']['p99']:.1f} ms",
            "",
            f"  {'message type':<36} {'outcome':<16} {'count':>7}",
        ]
        for (mt, outcome), n in sorted(self.outcomes.items()):
            lines.append(f"  {mt:<36} {outcome:<16} {n:>7}")
        lines.append("")
        if self.refusals:
            lines.append("  refusals by code: " + ", ".join(
                f"{code}={n}" for code, n in sorted(self.refusals.items())))
        else:
            lines.append("  refusals by code: none")
        lines.append(f"  held queries: {self.held_queries}; automatic answers about flagged "
                     f"residents: {self.flagged_auto_answers}")
        if self.moves:
            lines.append("  moves: " + ", ".join(f"{k}={n}" for k, n in sorted(self.moves.items())))
        if self.hops:
            lines += ["", f"  {'hop':<12} {'applied':>9} {'acked':>9} {'refused':>8} "
                      f"{'ACK mean ms':>12} {'ACK p99 ms ≤':>13}"]
            for hop, f in self.hops.items():
                lines.append(f"  {hop:<12} {f['applied']:>9.0f} {f['acked']:>9.0f} "
                             f"{f['refused']:>8.0f} {f['ack_mean_ms']:>12.1f} "
                             f"{f['ack_p99_ms_at_most']:>13.0f}")
        lines.append("")
        lines.append("  invariants:" + ("" if self.invariants else " none checked"))
        for inv in self.invariants:
            lines.append(f"    [{'held' if inv.held else 'BROKEN'}] {inv.name}: {inv.detail}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        lines.append("")
        if self.interrupted is not None:
            lines.append(f"RESULT: INTERRUPTED by {self.interrupted} after {self.elapsed:.1f}s: a "
                         "partial summary, the run's invariants were not checked")
        else:
            lines.append("RESULT: " + ("all invariants held" if self.ok else "INVARIANT BROKEN"))
        return "\n".join(lines)
