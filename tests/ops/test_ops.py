"""Operations against a live ``juki-gateway serve``: /health, maintenance, promtool, alert rules, dashboard."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from juki_gateway.cli import main
from juki_gateway.workdir import read_toml
from tests.gateway_support import REPO, Daemon, make_workdir, start_daemon

pytestmark = pytest.mark.timeout(120)
OPS = REPO / "juki_gateway" / "ops"
PROMTOOL = shutil.which("promtool")


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run promtool (installed by `make tools` / .ci/run from Debian's prometheus package)."""
    assert PROMTOOL is not None, "promtool missing: run 'make tools' (apt-get install prometheus)"
    return subprocess.run([PROMTOOL, *args], input=stdin, capture_output=True, timeout=60)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the juki-gateway command line in-process (the daemon itself is a real subprocess)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def get(url: str) -> tuple[int, dict[str, object]]:
    """GET a JSON document, returning the status code even for 5xx answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A migrated working directory served by a real daemon, with one link to a dead port."""
    root = make_workdir(tmp_path_factory.mktemp("ops"))
    config = root / "gateway.toml"
    data = read_toml(config)
    data["links"] = [{"name": "cs-172014->pref-17", "local": "cs-172014", "peer": "pref-17",
                      "host": "127.0.0.1", "port": closed_port(), "ping_interval": 30.0,
                      "backoff_initial": 5.0, "backoff_max": 5.0}]
    config.write_text(tomli_w.dumps(data))
    assert cli("store", "migrate", "--config", str(config)).returncode == 0
    d = start_daemon(root)
    yield d
    assert d.stop() == 0


def health_url(d: Daemon) -> str:
    """The daemon's /health URL (same listener as /metrics)."""
    return d.metrics_url.replace("/metrics", "/health")


def test_promtool_check_metrics_on_live_daemon(daemon: Daemon) -> None:
    """The live daemon's /metrics exposition passes promtool's lint."""
    with urllib.request.urlopen(daemon.metrics_url, timeout=5) as resp:
        text = resp.read()
    assert b"juki_gateway_handshakes_total" in text and b"juki_gateway_link_up" in text
    result = promtool("check", "metrics", stdin=text)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_promtool_check_and_unit_test_alert_rules() -> None:
    """ops/alerts.yml passes promtool check rules and its unit tests; the example config is valid."""
    result = promtool("check", "rules", str(OPS / "alerts.yml"))
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    result = promtool("test", "rules", str(OPS / "alerts.test.yml"))
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    result = promtool("check", "config", str(OPS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_alerts_cover_the_required_conditions() -> None:
    """There is an alert for link down, outbox age at each hop, a blocked link, sequence gaps,
    cert expiry, held queries, handshakes, frame errors and a low 住民票コード pool."""
    text = (OPS / "alerts.yml").read_text()
    for metric in ("juki_gateway_link_up", "juki_gateway_outbox_oldest_age_seconds",
                   "juki_gateway_jukinet_oldest_unacked_age_seconds",
                   "juki_gateway_jukinet_link_blocked", 'msg_type="NACK"',
                   "juki_gateway_certificate_expiry_seconds", "juki_gateway_ims_held_queries",
                   'juki_gateway_handshakes_total{result="refused"}',
                   "juki_gateway_frame_errors_total", "juki_gateway_jukinet_juminhyo_code_pool_low"):
        assert metric in text, metric
    assert "juki_ims_" not in text


def test_dashboard_and_alerts_use_exported_metric_names(daemon: Daemon) -> None:
    """Every juki_gateway_* metric the dashboard and the rules query is one the daemon exports."""
    with urllib.request.urlopen(daemon.metrics_url, timeout=5) as resp:
        exposition = resp.read().decode()
    exported = set(re.findall(r"^# TYPE (\S+) ", exposition, re.M))
    exported |= {f"{n}_total" for n in exported} | {f"{n}_bucket" for n in exported}
    dash = json.loads((OPS / "grafana-dashboard.json").read_text())
    assert dash["uid"] == "juki-gateway" and len(dash["panels"]) >= 10
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    used = set()
    for text in [*exprs, (OPS / "alerts.yml").read_text()]:
        used |= set(re.findall(r"\b(juki_gateway_[a-z_]+)", text))
    assert used and used <= exported, used - exported


def test_health_fails_with_reasons_then_maintenance_answers_503(daemon: Daemon) -> None:
    """/health is 500 naming the dead link, 503 in maintenance mode, and back to 500 after it."""
    code, body = get(health_url(daemon))
    assert code == 500 and body["status"] == "failing"
    assert body["reasons"] == ["link cs-172014->pref-17: down"]
    assert body["checks"]["store"] == "ok" and body["checks"]["pki"] == "ok"
    config = str(daemon.workdir / "gateway.toml")
    on = cli("maintenance", "on", "--reason", "upgrade", "--operator", "op-alice", "--config", config)
    assert on.returncode == 0 and "maintenance: on" in on.stdout
    code, body = get(health_url(daemon))
    assert code == 503 and body["status"] == "maintenance"
    assert body["maintenance"]["reason"] == "upgrade"
    assert "maintenance: on" in cli("maintenance", "status", "--config", config).stdout
    audit = cli("audit", "list", "--config", config)
    assert "maintenance_on" in audit.stdout and "op-alice" in audit.stdout
    assert cli("maintenance", "off", "--config", config).returncode == 0
    code, _ = get(health_url(daemon))
    assert code == 500


def test_health_ok_when_everything_is_up(tmp_path: Path) -> None:
    """A daemon with no intermediate server migrates its registry store itself (200 at once);
    /health names a store left behind the code's revision (500), then answers 200 once the
    store is migrated again."""
    from juki_gateway.registry_store.engine import create_store_engine
    from juki_gateway.registry_store.migrate import current_revision, downgrade, head_revision

    root = make_workdir(tmp_path)
    config = root / "gateway.toml"
    data = read_toml(config)
    data["endpoints"] = [ep for ep in data["endpoints"] if ep["role"] != "intermediate"]
    config.write_text(tomli_w.dumps(data))
    url = f"sqlite:///{root / 'registry.sqlite3'}"
    d = start_daemon(root)
    try:
        code, body = get(health_url(d))
        assert code == 200, body
        engine = create_store_engine(url)
        try:
            assert current_revision(engine) == head_revision()
            downgrade(url, "0011", engine=engine)
        finally:
            engine.dispose()
        code, body = get(health_url(d))
        assert code == 500 and any("store" in r for r in body["reasons"]), body
        assert cli("store", "migrate", "--config", str(root / "gateway.toml")).returncode == 0
        code, body = get(health_url(d))
        assert code == 200 and body == {"status": "ok", "reasons": [], "checks": body["checks"]}
        assert set(body["checks"]) >= {"store", "pki", "endpoint:cs-172014", "endpoint:kiko"}
    finally:
        assert d.stop() == 0


def test_serve_logs_json_lines(daemon: Daemon) -> None:
    """The daemon's log is one JSON object per line opening ts, level, event; scrapes and
    Twisted's factory and port chatter leave no line at info."""
    for _ in range(3):
        daemon.scrape()
    get(health_url(daemon))
    lines = (daemon.workdir / "logs" / "gateway.jsonl").read_text().splitlines()
    assert lines
    recs = [json.loads(line) for line in lines]
    for rec in recs:
        assert list(rec)[:5] == ["ts", "level", "event", "message", "namespace"], rec
    assert any(r["event"] == "retention_run" for r in recs)
    chatter = [r for r in recs if "Starting factory" in r["message"] or "GET /" in r["message"]
               or " starting on " in r["message"] or " at 0x" in r["message"]]
    assert not chatter, chatter


def test_sighup_reopens_the_log_files(daemon: Daemon) -> None:
    """After logrotate moves both logs away, SIGHUP makes the daemon write new files (0600)
    where they were, and nothing more goes to the moved ones."""
    import signal
    import stat
    import time

    from tests.gateway_support import attempt

    logs = daemon.workdir / "logs"
    for name in ("gateway.jsonl", "handshakes.jsonl"):
        (logs / name).rename(logs / f"{name}.1")
    daemon.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while not (logs / "gateway.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    attempt(daemon.ports["cs-172014"], daemon.workdir / "pki", "kizon-172014", "cs-172014")
    while time.monotonic() < deadline and not (
            (logs / "handshakes.jsonl").exists() and (logs / "handshakes.jsonl").read_text()
            and "crl_reloaded" in (logs / "gateway.jsonl").read_text()):
        time.sleep(0.05)
    events = [json.loads(line)["event"] for line in (logs / "gateway.jsonl").read_text().splitlines()]
    assert "crl_reloaded" in events
    shakes = [json.loads(line) for line in (logs / "handshakes.jsonl").read_text().splitlines()]
    assert shakes and shakes[-1]["event"] == "tls_handshake" and shakes[-1]["established"]
    assert list(shakes[-1])[:3] == ["ts", "level", "event"]
    for name in ("gateway.jsonl", "handshakes.jsonl"):
        assert stat.S_IMODE((logs / name).stat().st_mode) == 0o600
    moved = (logs / "handshakes.jsonl.1").read_text()
    assert shakes[-1]["conn_id"] not in moved
    assert "crl_reloaded" not in (logs / "gateway.jsonl.1").read_text()


def test_a_link_that_cannot_connect_is_logged_once_per_window(tmp_path: Path) -> None:
    """A link whose peer's port is closed is a warning (``link_connect_failed``, naming the link
    and the address) written once per repeat window however often the link retries, while
    /health reports the link down."""
    import time

    root = make_workdir(tmp_path, links=True)
    config = root / "gateway.toml"
    data = read_toml(config)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    for link in data["links"]:
        if link["name"] == "pref-17->kiko":
            link["port"] = closed
            link["backoff_max"] = 0.3
    config.write_text(tomli_w.dumps(data))
    d = start_daemon(root)
    try:
        time.sleep(4.0)  # a dozen attempts at least
        code, body = get(health_url(d))
        assert code == 500 and any("pref-17->kiko" in r for r in body["reasons"]), body
        recs = [json.loads(line) for line in
                (root / "logs" / "gateway.jsonl").read_text().splitlines()]
        failed = [r for r in recs if r["event"] == "link_connect_failed"]
        assert len(failed) == 1, failed
        assert failed[0]["level"] == "warn" and failed[0]["link"] == "pref-17->kiko"
        assert failed[0]["where"] == f"127.0.0.1:{closed}"
        assert "ConnectionRefusedError" in failed[0]["error"]
    finally:
        assert d.stop() == 0
