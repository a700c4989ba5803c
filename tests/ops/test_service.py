"""Running as a service: sd_notify from a real ``serve`` and the shipped systemd unit."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from juki_gateway.gateway.sdnotify import notify_address, sd_notify
from tests.gateway_support import REPO, make_workdir, start_daemon

pytestmark = pytest.mark.timeout(120)
UNIT = REPO / "juki_gateway" / "ops" / "juki-gateway.service"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A unix datagram socket bound as systemd binds $NOTIFY_SOCKET (a short path: sun_path
    holds 108 bytes), and its address."""
    with tempfile.TemporaryDirectory(prefix="juki-notify-") as tmp:
        path = str(Path(tmp) / "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        try:
            yield sock, path
        finally:
            sock.close()


def _states(sock: socket.socket, timeout: float) -> dict[str, str]:
    """The KEY=VALUE lines of the next datagram (socket.timeout after ``timeout`` s)."""
    sock.settimeout(timeout)
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.splitlines())


def _connects(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_serve_notifies_ready_once_listening_and_stopping_on_sigterm(
        tmp_path: Path, notify_socket: tuple[socket.socket, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A real serve with $NOTIFY_SOCKET sends READY=1 (with its pid and a status) once, when
    every endpoint, the admin and the metrics listener accept connections, and STOPPING=1 when
    SIGTERM arrives; it then exits 0."""
    sock, path = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    daemon = start_daemon(make_workdir(tmp_path))
    try:
        ready = _states(sock, 20)
        assert ready["READY"] == "1" and ready["MAINPID"] == str(daemon.proc.pid)
        assert ready["STATUS"] == "listening on 4 endpoints"
        assert len(daemon.ports) == 5  # four endpoints and the admin port
        metrics_port = int(daemon.metrics_url.rsplit(":", 1)[1].split("/")[0])
        assert all(_connects(port) for port in [*daemon.ports.values(), metrics_port])
        with pytest.raises(TimeoutError):
            _states(sock, 0.5)  # READY once, nothing else while it runs
        daemon.proc.send_signal(15)
        stopping = _states(sock, 20)
        assert stopping["STOPPING"] == "1" and "stopping" in stopping["STATUS"]
        assert daemon.proc.wait(timeout=30) == 0
    finally:
        daemon.stop()


def test_serve_runs_on_when_the_notify_socket_is_gone(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """$NOTIFY_SOCKET naming a socket nobody listens on: the daemon starts anyway, logs one
    warning saying the service manager was not notified, and stops cleanly."""
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    daemon = start_daemon(make_workdir(tmp_path))
    try:
        assert all(_connects(port) for port in daemon.ports.values())
    finally:
        assert daemon.stop() == 0
    records = [json.loads(line) for line in
               (tmp_path / "logs" / "gateway.jsonl").read_text().splitlines()]
    warned = [r for r in records if "service manager not notified" in json.dumps(r)]
    assert len(warned) == 2  # READY at start, STOPPING at the stop request
    assert "READY=1" in json.dumps(warned[0], ensure_ascii=False)


def test_notify_address_and_no_socket() -> None:
    """@name is the abstract namespace, a path is used as is, anything else (unset, vsock:) is
    no socket: sd_notify then sends nothing and says so."""
    assert notify_address({"NOTIFY_SOCKET": "@juki/notify"}) == "\0juki/notify"
    assert notify_address({"NOTIFY_SOCKET": "/run/systemd/notify"}) == "/run/systemd/notify"
    assert notify_address({"NOTIFY_SOCKET": "vsock:2:1234"}) is None
    assert notify_address({}) is None
    assert sd_notify("READY=1", environ={}) is False


def test_sd_notify_reaches_an_abstract_socket() -> None:
    """An abstract-namespace $NOTIFY_SOCKET (as systemd passes in containers) gets the states
    as one datagram of lines."""
    name = f"juki-test-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        assert sd_notify("READY=1", "STATUS=up", environ={"NOTIFY_SOCKET": "@" + name})
        sock.settimeout(5)
        assert sock.recv(100) == b"READY=1\nSTATUS=up"


def _unit_for_this_machine(tmp_path: Path) -> Path:
    """The shipped unit with ExecStart pointing at this environment's juki-gateway (verify
    checks that the command exists), as docs/deployment.md tells an operator to adapt it."""
    exe = Path(sys.executable).parent / "juki-gateway"
    assert exe.exists(), exe
    text = UNIT.read_text().replace("/opt/juki-gateway/bin/juki-gateway", str(exe))
    unit = tmp_path / "juki-gateway.service"
    unit.write_text(text)
    return unit


def test_unit_is_notify_and_hardened() -> None:
    """The shipped unit is Type=notify and carries the hardening the deployment doc promises,
    with the working directory its only writable path."""
    lines = [ln.strip() for ln in UNIT.read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    settings: dict[str, list[str]] = {}
    for ln in lines:
        if "=" in ln:
            key, value = ln.split("=", 1)
            settings.setdefault(key, []).append(value)
    for key, value in {"Type": "notify", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
                       "UMask": "0077", "PrivateTmp": "yes", "ProtectHome": "yes",
                       "ReadWritePaths": "/var/lib/juki-gateway",
                       "WorkingDirectory": "/var/lib/juki-gateway",
                       "CapabilityBoundingSet": ""}.items():
        assert settings.get(key) == [value], key
    assert settings["ExecStart"][0].endswith(" serve --config /var/lib/juki-gateway/gateway.toml")
    assert settings["User"] == ["juki-gateway"]


@pytest.mark.skipif(SYSTEMD_ANALYZE is None,
                    reason="systemd-analyze is not installed on this machine (only this check)")
def test_unit_passes_systemd_analyze(tmp_path: Path) -> None:
    """systemd-analyze verify finds nothing to say about the unit (unknown or misspelt settings
    are warnings on stderr, so stderr must be empty), and its offline security review rates the
    exposure below 2.0 ("OK")."""
    assert SYSTEMD_ANALYZE is not None
    unit = _unit_for_this_machine(tmp_path)
    verify = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert verify.returncode == 0 and verify.stderr == "" and verify.stdout == "", verify
    broken = tmp_path / "broken" / "juki-gateway.service"
    broken.parent.mkdir()
    broken.write_text(unit.read_text().replace("NoNewPrivileges=yes", "NoNewPrivileges=perhaps"))
    refused = subprocess.run([SYSTEMD_ANALYZE, "verify", str(broken)], capture_output=True,
                             text=True, timeout=60, check=False)
    assert "NoNewPrivileges" in refused.stderr or "boolean" in refused.stderr  # the check bites
    security = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=true", str(unit)],
                              capture_output=True, text=True, timeout=60, check=False)
    found = re.search(r"Overall exposure level for juki-gateway\.service: ([0-9.]+)",
                      security.stdout + security.stderr)
    assert found, security.stdout[-2000:] + security.stderr
    assert float(found.group(1)) < 2.0
