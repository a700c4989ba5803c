"""Fault runs: connections dropped at random points and a node SIGKILLed and restarted."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, task
from twisted.internet.threads import deferToThread

from juki_gateway.gateway.jukinet.node import NodeConfig
from juki_gateway.gateway.jukinet.topology import config_to_json
from juki_gateway.protocols.jukinet.messages import JukinetMessage as M
from juki_gateway.registry_store import jukinet as st
from juki_gateway.simulators.resident_events import serial_of, timeline
from tests.jukinet.conftest import node_read, start_nodes, stop_nodes, wait_for
from tests.jukinet.proxy import FlakyProxy

UPDATES = 3000
#: a connection's byte budget is drawn up to this; small enough that each hop's ~1 MB of
#: traffic meets several drops whatever the timing, so the fault count asserted below holds
MAX_BUDGET = 100_000


class NodeProcess:
    """A node running as a child process (so that it can be SIGKILLed)."""

    def __init__(self, cfg: NodeConfig, workdir: Path, peer_ports: dict[str, int],
                 name: str | None = None) -> None:
        name = name or cfg.node_id
        self.cfg_path = workdir / f"{name}.json"
        self.cfg_path.write_text(config_to_json(cfg))
        self.peer_ports = peer_ports
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None
        self.log = (workdir / f"{name}.log").open("a")

    @defer.inlineCallbacks
    def start(self) -> Generator[Any, Any, None]:
        args = [sys.executable, "-m", "juki_gateway.gateway.jukinet.run", str(self.cfg_path),
                "--port", str(self.port)]
        args += [f"--peer={k}={v}" for k, v in self.peer_ports.items()]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = yield deferToThread(self.proc.stdout.readline)  # type: ignore[union-attr]
        assert line.startswith("LISTENING"), f"node did not start: {line!r}"
        self.port = int(line.split()[1])

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def _serials(conn: Any) -> dict[str, list[int]]:
    return {code: [serial_of(r) for r in recs] for code, recs in st.versions(conn).items()}


@defer.inlineCallbacks
def kiko_outcome(
    reactor: Any, kiko: Any, records: list[Any]
) -> Generator[Any, Any, tuple[dict[str, list[int]], dict[str, list[int]], int, int]]:
    """Wait until 機構 holds every record, then (got, sent, lost, duplicated) per resident serials."""
    total = len(records)

    def kiko_count() -> defer.Deferred[bool]:
        return node_read(kiko, lambda c: st.count_versions(c) >= total)

    yield wait_for(reactor, kiko_count, 120, "機構 to receive every update")
    yield task.deferLater(reactor, 0.5, lambda: None)  # anything extra would show up now
    got = yield node_read(kiko, _serials)
    sent: dict[str, list[int]] = {}
    for rec in records:
        sent.setdefault(st.juminhyo_of(rec), []).append(serial_of(rec))
    flat = [s for v in got.values() for s in v]
    lost = len(set(range(1, total + 1)) - set(flat))
    duplicated = len(flat) - len(set(flat))
    return got, sent, lost, duplicated


@pytest.mark.slow
@pytest_twisted.inlineCallbacks
def test_random_drops_and_sigkill_lose_nothing_and_duplicate_nothing(
    chain_cfgs: dict[str, NodeConfig], tmp_path: Path
) -> Generator[Any, Any, None]:
    """Thousands of updates through flaky links and a killed prefecture arrive exactly once, in order."""
    from twisted.internet import reactor

    rng = random.Random(int(os.environ.get("JUKI_FAULT_SEED", "7")))
    cfgs = {n: replace(c, retry_initial=0.02, retry_max=0.3, max_batch=200) for n, c in chain_cfgs.items()}
    nodes = yield start_nodes(reactor, cfgs, ("kiko",))
    proxy_b = FlakyProxy(reactor, nodes["kiko"].bound_port, rng, max_bytes=MAX_BUDGET)
    port_b = reactor.listenTCP(0, proxy_b, interface="127.0.0.1")
    pref = NodeProcess(cfgs["pref-17"], tmp_path, {"kiko": port_b.getHost().port, "cs-172014": 1})
    proxy_a = None
    port_a = None
    try:
        yield pref.start()
        proxy_a = FlakyProxy(reactor, pref.port, rng, max_bytes=MAX_BUDGET)
        port_a = reactor.listenTCP(0, proxy_a, interface="127.0.0.1")
        more = yield start_nodes(reactor, cfgs, ("cs-172014", "kizon-172014"),
                                 ports={"pref-17": port_a.getHost().port, "kiko": 1})
        nodes.update(more)
        records = list(timeline(rng, "172014", UPDATES, residents=300))
        kizon = nodes["kizon-172014"]
        kills = 0
        for i in range(0, len(records), 100):
            yield kizon.originate("cs-172014", M.UPDATE_NOTIFY, records[i:i + 100])
            yield task.deferLater(reactor, 0.03, lambda: None)
            if i in (800, 2000):
                pref.kill()
                kills += 1
                yield task.deferLater(reactor, 0.3, lambda: None)
                yield pref.start()
        yield task.deferLater(reactor, 1.0, lambda: None)
        proxy_a.enabled = proxy_b.enabled = False  # let the run converge

        got, sent, lost, duplicated = yield kiko_outcome(reactor, nodes["kiko"], records)
        faults = proxy_a.faults + proxy_b.faults + kills
        print(f"\n{UPDATES} sent, {faults} faults, {lost} lost, {duplicated} duplicated")
        assert faults >= 5 and kills == 2
        assert (lost, duplicated) == (0, 0)
        assert got == sent  # per resident, every change in the order it happened
        cs_got = yield node_read(nodes["cs-172014"], _serials)
        assert cs_got == sent
    finally:
        for p in (port_a, port_b):
            if p is not None:
                yield p.stopListening()
        pref.stop()
        yield stop_nodes(nodes)
