"""``simulate`` interrupted by SIGINT (Ctrl-C) or SIGTERM: the summary so far, then 130 or 143.
A real ``simulate`` process against a real daemon."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway_support import REPO, Daemon

from .fixtures import chain_daemon

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    yield from chain_daemon(tmp_path_factory, "sig")


def updates_from_kizon(d: Daemon) -> float:
    """What the CS counted from the existing-system simulator so far."""
    return sum(v for (name, labels), v in d.scrape().items()
               if name.endswith("messages_total") and dict(labels).get("peer") == "kizon-172014")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_run_prints_its_partial_summary(
        served: Daemon, tmp_path: Path, sig: signal.Signals, code: int) -> None:
    """Once updates flow, the signal stops the run: the text and JSON summaries of what was
    exchanged so far, marked interrupted (never "all invariants held"), and exit 128 + signal."""
    metrics = int(served.metrics_url.rsplit(":", 1)[1].split("/", 1)[0])
    out = tmp_path / "partial.json"
    before = updates_from_kizon(served)
    proc = subprocess.Popen(
        [sys.executable, "-m", "juki_gateway", "simulate", "moving-season", "--config",
         str(served.workdir / "gateway.toml"), "--duration", "120", "--no-progress",
         "--json", str(out), *[f"--endpoint={n}={p}" for n, p in served.ports.items()],
         f"--endpoint=metrics={metrics}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        deadline = time.monotonic() + 90
        while updates_from_kizon(served) <= before:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no update reached the CS"
            time.sleep(0.2)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, stdout + stderr
    name = signal.Signals(sig).name
    assert f"RESULT: INTERRUPTED by {name}" in stdout, stdout
    assert "all invariants held" not in stdout
    assert "UPDATE_NOTIFY" in stdout  # what was exchanged before the signal
    assert "Traceback" not in stderr, stderr
    summary = json.loads(out.read_text())
    assert summary["interrupted"] == name and summary["ok"] is False
    assert summary["messages_total"] > 0 and summary["elapsed_seconds"] > 0
