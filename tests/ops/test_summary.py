"""The run summary: counts, percentiles, refusals, invariants, text and JSON forms."""

from __future__ import annotations

import json

from juki_gateway.simulators.summary import RunSummary, percentile


def test_percentile_nearest_rank() -> None:
    """p50 and p99 follow the nearest-rank method; an empty list gives 0."""
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0], 99) == 3.0
    assert percentile([], 50) == 0.0


def test_summary_counts_and_json() -> None:
    """Recorded exchanges show up by type and outcome, refusals by code, in text and JSON."""
    s = RunSummary("quickstart", target="127.0.0.1")
    s.started, s.finished = 100.0, 110.0
    for i in range(8):
        s.record("UPDATE_NOTIFY", "acked", latency=0.001 * (i + 1))
    s.record("SEARCH_REQUEST", "refused", latency=0.002, code="search_too_broad")
    s.record("INFO_QUERY", "held", latency=0.003)
    s.held_queries = 1
    s.check("nothing lost", True, "8 of 8 acknowledged")
    data = json.loads(s.to_json())
    assert data["messages"]["UPDATE_NOTIFY"] == {"acked": 8}
    assert data["refusals"] == {"search_too_broad": 1}
    assert data["messages_total"] == 10 and data["throughput_per_second"] == 1.0
    assert data["latency_ms"]["by_type"]["UPDATE_NOTIFY"]["p50"] == 4.0
    assert data["ok"] is True
    text = s.render()
    assert "search_too_broad=1" in text and "RESULT: all invariants held" in text


def test_broken_invariant_fails_the_run() -> None:
    """One broken invariant makes the run fail, and a run that checked nothing is not ok."""
    s = RunSummary("x")
    assert not s.ok
    s.check("nothing lost", True, "ok")
    s.check("no automatic answer about a flagged person", False, "1 answered")
    assert not s.ok and "INVARIANT BROKEN" in s.render()
