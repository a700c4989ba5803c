"""The real ``juki-gateway serve``: a configuration it refuses, and start-ups that fail cleanly."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from juki_gateway.gateway.config import default_topology
from juki_gateway.workdir import read_toml
from tests.gateway_support import make_workdir, start_daemon


def serve(workdir: Path, timeout: float = 60.0) -> tuple[int, str, float]:
    """Run ``serve`` on ``workdir`` until it exits; its status, stderr and how long it ran."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "juki_gateway", "serve", "--config", str(workdir / "gateway.toml")],
        capture_output=True, text=True, timeout=timeout, cwd=workdir)
    return proc.returncode, proc.stderr, time.monotonic() - started


def _set(topo: dict[str, Any], dotted: str, value: Any) -> None:
    *tables, key = dotted.split(".")
    for t in tables:
        topo = topo.setdefault(t, {})
    topo[key] = value


@pytest.mark.parametrize(("change", "value", "says"), [
    ("metric.port", 7120, "Object contains unknown field `metric`"),  # a misspelt table
    ("metrics.prot", 7120, "metrics: Object contains unknown field `prot`"),
    ("timeouts.handshake", "ten", "timeouts.handshake: Expected `float`, got `str`"),
    ("timeouts.handshake", -1.0, "timeouts.handshake: Expected `float` > 0.0"),
    ("timeouts.drain", 0.0, "timeouts.drain: Expected `float` > 0.0"),
    ("timeouts.idle", float("nan"), "timeouts.idle: Expected `float` > 0.0"),
    ("timeouts.idle", float("inf"), "timeouts.idle: Expected `float` <= 604800.0"),
    ("limits.connections_per_peer", True, "limits.connections_per_peer: Expected `int`, got `bool`"),
    ("jukinet.kiko.commit_delay", 5, "jukinet.kiko.commit_delay: Expected `float` <= 1.0"),
])
def test_serve_refuses_a_bad_configuration_in_one_line(tmp_path: Path, change: str, value: Any,
                                                       says: str) -> None:
    """An unknown key anywhere, a wrong type, or a negative, zero, NaN or infinite duration: serve
    prints one line naming the key and exits 2 before starting anything."""
    wd = make_workdir(tmp_path)
    topo = read_toml(wd / "gateway.toml")
    _set(topo, change, value)
    (wd / "gateway.toml").write_text(tomli_w.dumps(topo))
    code, err, _ = serve(wd)
    assert code == 2, err
    assert err.splitlines() == [f"juki-gateway: error [usage]: {wd / 'gateway.toml'}: {says}"]


def test_a_listener_that_cannot_bind_ends_start_up_within_seconds(tmp_path: Path) -> None:
    """A port in use: serve stops the listeners it had bound and exits 3 with one line naming the
    endpoint and the address, within seconds (not at the next SIGTERM)."""
    wd = make_workdir(tmp_path)
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        topo = read_toml(wd / "gateway.toml")
        topo["endpoints"][2]["port"] = port  # kiko
        (wd / "gateway.toml").write_text(tomli_w.dumps(topo))
        code, err, took = serve(wd)
    assert code == 1 and took < 20, err
    last = err.splitlines()[-1]
    assert last == (f"juki-gateway: error [listen]: endpoint:kiko cannot listen on "
                    f"127.0.0.1:{port}: [Errno 98] Address already in use")
    assert "Traceback" not in err and "ReactorNotRunning" not in err
    closed = [json.loads(line) for line in err.splitlines() if '"listener_closed"' in line]
    assert len(closed) >= 4, err  # the listeners that had bound were closed again


def test_a_second_serve_on_the_same_workdir_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    """While one daemon runs, a second serve on its working directory exits 3 at once, naming the
    first one's pid, without writing into its logs; the first one still stops on SIGTERM."""
    wd = make_workdir(tmp_path)
    first = start_daemon(wd)
    try:
        first.retention_settled()  # the start-up runs log after the listening lines
        log = wd / "logs" / "gateway.jsonl"
        before = log.read_bytes()
        code, err, took = serve(wd)
        assert code == 1 and took < 20, err
        assert err.splitlines() == [
            f"juki-gateway: error [workdir_busy]: another juki-gateway serve (pid {first.proc.pid}) "
            f"runs on {wd}; stop it first (its lock is {wd / 'serve.lock'})"]
        assert log.read_bytes() == before
    finally:
        assert first.stop(signal.SIGTERM) == 0


def test_default_topology_is_valid_as_written() -> None:
    """What ``init`` writes passes the schema (every key of the default is a known one)."""
    from juki_gateway.gateway.config import parse_config

    config = parse_config(default_topology(7100), Path("/srv/gw/gateway.toml"))
    assert config.metrics.port == 7120 and config.timeouts.handshake == 10.0
