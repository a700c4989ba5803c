"""The shipped alert rules and dashboard against a live daemon: every metric they name has
samples on ``/metrics`` after a short run, and no rule fires on a fresh, healthy daemon.

The daemon is a real ``juki-gateway serve`` hosting the Juki-net chain on loopback links; the
run is ``simulate quickstart`` shortened (without flagged residents, whose held queries rightly
wait for an operator), plus one frame of an unknown type so the frame-error series exist. Each
scrape becomes a ``promtool test rules`` file: every sample a constant input series for three
hours (longer than any rule's ``for:``), every alert of ``alerts.yml`` expected silent.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from juki_gateway.codecs.frame import encode_frame
from juki_gateway.codecs.messages import MessageType
from juki_gateway.gateway.metrics import SampleKey
from juki_gateway.workdir import read_toml
from tests.gateway_support import (
    REPO,
    Daemon,
    attempt,
    decode_frames,
    make_workdir,
    now_ts,
    start_daemon,
)

from .test_ops import OPS, promtool

pytestmark = pytest.mark.timeout(180)
#: Minutes each scraped sample is held constant: past the longest ``for:`` of the rules (1 h).
HOLD_MINUTES = 180
#: Series Prometheus itself adds to a scrape (not on /metrics).
SCRAPE_SERIES = {"up"}
#: PromQL words that are not metric names (functions are told apart by their parenthesis).
_KEYWORDS = {"and", "or", "unless", "offset", "bool"}


def rule_exprs(text: str) -> dict[str, str]:
    """alert name → its ``expr`` (one line, or a folded ``>-`` block) from a rules file."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    name = ""
    for i, line in enumerate(lines):
        m = re.match(r"\s*- alert: (\S+)", line)
        if m:
            name = m.group(1)
            continue
        m = re.match(r"(\s*)expr: (.*)$", line)
        if not m:
            continue
        indent, value = len(m.group(1)), m.group(2).strip()
        if value in (">-", ">", "|", "|-"):
            block = []
            for nxt in lines[i + 1:]:
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                    break
                block.append(nxt.strip())
            value = " ".join(block)
        out[name] = value
    return out


def dashboard_exprs() -> list[str]:
    """Every query of the Grafana dashboard (its panels' targets and its template variables)."""
    dash = json.loads((OPS / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [re.sub(r"label_values\((\w+),\s*\w+\)", r"\1", v["query"]["query"])
              for v in dash["templating"]["list"] if isinstance(v.get("query"), dict)]
    return exprs


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (label names and functions left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "{}", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "[]", expr)  # ranges
    expr = re.sub(r"\b(?:by|on|without|ignoring|group_left|group_right)\s*\([^()]*\)", " ", expr)
    names = set(re.findall(r"(?<![0-9.])\b([a-zA-Z_][a-zA-Z0-9_:]*)\b(?!\s*\()", expr))
    return names - _KEYWORDS


def series_selector(name: str, labels: tuple[tuple[str, str], ...]) -> str:
    """A promtool input series for one sample, labelled as Prometheus would scrape it."""
    every = dict(labels) | {"instance": "gw", "job": "juki-gateway"}
    inner = ", ".join(f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                      for k, v in sorted(every.items()))
    return f"{name}{{{inner}}}"


_COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket", "_created")


def no_alert_test(samples: dict[SampleKey, float], alerts: list[str], out: Path,
                  before: dict[SampleKey, float] | None = None) -> Path:
    """A promtool rule-test file, every alert expected silent: the samples held constant, or,
    with ``before`` (an earlier scrape), each series stepping from its earlier value to its
    later one in 15 s (about the time between the two scrapes; a series new since then starts
    at 0 when it is a counter) and then held, so the rate and increase rules see what the run
    counted."""
    steps = HOLD_MINUTES * 4
    series = []
    for (n, labels), value in sorted(samples.items()):
        if before is None:
            values = f"{value!r}x{steps}"
        else:
            start = before.get((n, labels), 0.0 if n.endswith(_COUNTER_SUFFIXES) else value)
            values = f"{start!r} {value!r}x{steps}"
        series.append({"series": series_selector(n, labels), "values": values})
    series.append({"series": series_selector("up", ()), "values": f"1x{steps}"})
    checks = [{"eval_time": f"{t}m", "alertname": a, "exp_alerts": []}
              for a in alerts for t in (*range(1, 16), 65, HOLD_MINUTES)]
    doc = {"rule_files": [str(OPS / "alerts.yml")], "evaluation_interval": "1m",
           "tests": [{"interval": "15s", "input_series": series, "alert_rule_test": checks}]}
    out.write_text(json.dumps(doc, ensure_ascii=False))  # JSON is YAML
    return out


def wait_healthy(d: Daemon, wait: float = 30.0) -> dict[SampleKey, float]:
    """Scrape until every link is up and every store's retention pass reported; that scrape."""
    d.retention_settled()
    deadline = time.monotonic() + wait
    while True:
        samples = d.scrape()
        links = [v for (n, _), v in samples.items() if n == "juki_gateway_link_up"]
        if (links and all(v == 1.0 for v in links)) or time.monotonic() > deadline:
            return samples
        time.sleep(0.1)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A serve process hosting CS → prefecture → 機構 on its own loopback links."""
    d = start_daemon(make_workdir(tmp_path_factory.mktemp("wiring"), links=True), timeout=60)
    yield d
    assert d.stop() == 0


def short_run(d: Daemon, tmp: Path) -> None:
    """quickstart for a few seconds without flagged residents, then one unknown frame type."""
    scenario = read_toml(REPO / "juki_gateway" / "scenarios" / "quickstart.toml")
    scenario["scenario"]["duration"] = 6.0
    scenario["dv"]["flagged"] = 0
    scenario["dv"]["query_share"] = 0.0
    (tmp / "short.toml").write_text(tomli_w.dumps(scenario))
    metrics = int(d.metrics_url.rsplit(":", 1)[1].split("/", 1)[0])
    endpoints = [f"--endpoint={n}={p}" for n, p in d.ports.items()] + [f"--endpoint=metrics={metrics}"]
    proc = subprocess.run(
        [sys.executable, "-m", "juki_gateway", "simulate", str(tmp / "short.toml"),
         "--config", str(d.workdir / "gateway.toml"), "--no-progress",
         "--json", str(tmp / "short.json"), *endpoints],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    bad = encode_frame(0x7E7E, "kizon-172014", "cs-172014", timestamp=now_ts())
    got = attempt(d.ports["cs-172014"], d.workdir / "pki", "kizon-172014", "cs-172014", payload=bad)
    assert [f.msg_type for f in decode_frames(got.data)] == [MessageType.ERROR], got


def test_metric_name_extraction_sees_every_selector() -> None:
    """The extractor finds the names of a rule with a range, an `and on (…)` and label matchers."""
    expr = ('juki_gateway_a and on (instance, node) juki_gateway_b == 1 and on (instance) '
            'increase(juki_gateway_c_total{result="failed"}[30m]) > 0 and sum by (le) '
            '(rate(process_cpu_seconds_total[5m])) < 3 * 86400 and up{job="x"} == 0')
    assert metric_names(expr) == {"juki_gateway_a", "juki_gateway_b", "juki_gateway_c_total",
                                  "process_cpu_seconds_total", "up"}


def test_alerts_and_dashboard_are_wired_to_a_live_daemon(chain: Daemon, tmp_path: Path) -> None:
    """Fresh and healthy, the daemon fires no alert; after a short run every metric named by a
    rule or a dashboard query has samples, and still no alert fires."""
    rules = rule_exprs((OPS / "alerts.yml").read_text())
    assert len(rules) >= 13 and all(rules.values()), rules
    fresh = wait_healthy(chain)
    assert {n for (n, _) in fresh} >= {"process_cpu_seconds_total", "juki_gateway_build_info"}
    result = promtool("test", "rules", str(no_alert_test(fresh, list(rules), tmp_path / "fresh.yml")))
    assert result.returncode == 0, result.stdout.decode()[-4000:] + result.stderr.decode()

    short_run(chain, tmp_path)
    after = wait_healthy(chain)
    have = {n for (n, _) in after} | SCRAPE_SERIES
    wanted: dict[str, set[str]] = {}
    for where, expr in [*rules.items(), *(("dashboard", e) for e in dashboard_exprs())]:
        for name in metric_names(expr):
            wanted.setdefault(name, set()).add(where)
    missing = {n: sorted(w) for n, w in wanted.items() if n not in have}
    assert not missing, missing
    assert len(wanted) >= 30, sorted(wanted)
    result = promtool("test", "rules", str(no_alert_test(after, list(rules), tmp_path / "after.yml",
                                                         before=fresh)))
    assert result.returncode == 0, result.stdout.decode()[-4000:] + result.stderr.decode()
