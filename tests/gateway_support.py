"""Test support for the daemon: a per-session dev PKI, a real ``serve`` subprocess, TLS clients.

Everything runs on 127.0.0.1 with ephemeral ports (the config asks for port 0 and the daemon
prints the ports it bound), so several test runs can share the machine.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from juki_gateway.certs.identity import PeerIdentity
from juki_gateway.certs.pki import CertificateAuthority, write_pair
from juki_gateway.codecs.frame import FrameDecoder, encode_frame
from juki_gateway.codecs.messages import MessageType
from juki_gateway.gateway.config import default_topology
from juki_gateway.gateway.initdir import init_workdir
from juki_gateway.gateway.metrics import scrape_metrics
from juki_gateway.protocols.catalogue import link_record_lengths

REPO = Path(__file__).resolve().parent.parent
TS = "20261126120000"


def now_ts() -> str:
    """The wall clock as a frame timestamp (the intermediate endpoint refuses frames stamped
    more than 300 s from its clock)."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime())


def make_workdir(root: Path, *, links: bool = False, log_flush_delay: float | None = 0.0) -> Path:
    """A working directory with ports 0, the default identities and the refusal-case certs.

    ``log_flush_delay`` 0 makes the daemon write each handshake-log record through at once, so
    that tests read every record of the attempts they made; ``None`` keeps the default buffering.
    """
    now = dt.datetime.now(dt.UTC)
    init_workdir(root, now, port_base=7100)
    topo = default_topology(7100)
    for ep in topo["endpoints"]:
        ep["port"] = 0
    topo["metrics"]["port"] = 0
    topo["admin"]["port"] = 0
    topo["timeouts"]["handshake"] = 5.0
    topo["timeouts"]["drain"] = 3.0
    if not links:
        topo["links"] = []
    for link in topo["links"]:
        link["port"] = 0  # the daemon's own endpoint, on whatever port it bound
    if log_flush_delay is not None:
        topo["logs"]["flush_delay"] = log_flush_delay
    (root / "gateway.toml").write_text(tomli_w.dumps(topo))
    pki = root / "pki"
    ca = CertificateAuthority.load(pki)
    kizon = PeerIdentity("kizon-172014", "kizon-juki", "172014")
    cert, key = ca.issue(kizon, now, not_before=now - dt.timedelta(days=10),
                         not_after=now - dt.timedelta(days=1), write=False)
    write_pair(pki, "kizon-expired", cert, key)
    cert, key = ca.issue(kizon, now, not_before=now + dt.timedelta(days=1),
                         not_after=now + dt.timedelta(days=10), write=False)
    write_pair(pki, "kizon-future", cert, key)
    ca.issue(PeerIdentity("kizon-revoked", "kizon-juki", "172014"), now)
    ca.revoke("kizon-revoked", now, "keyCompromise")
    ca.issue(PeerIdentity("renkei-162019", "bango-renkei", "162019"), now)
    other = CertificateAuthority.create(root / "other-ca", now, common_name="some other CA")
    cert, key = other.issue(kizon, now, write=False)
    write_pair(pki, "kizon-otherca", cert, key)
    return root


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    """GET a JSON document (``/health``), with its status code even for a 5xx answer."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_healthy(metrics_url: str, wait: float = 60.0) -> tuple[int, dict[str, Any]]:
    """``/health`` beside ``metrics_url``, polled until 200 or ``wait`` seconds (then the last
    answer)."""
    url = metrics_url.replace("/metrics", "/health")
    deadline = time.monotonic() + wait
    while True:
        code, body = get_json(url)
        if code == 200 or time.monotonic() > deadline:
            return code, body
        time.sleep(0.1)


@dataclass
class Daemon:
    """A running ``juki-gateway serve`` subprocess and the ports it bound."""

    proc: subprocess.Popen[bytes]
    workdir: Path
    ports: dict[str, int] = field(default_factory=dict)
    metrics_url: str = ""

    @property
    def log_path(self) -> Path:
        return self.workdir / "logs" / "handshakes.jsonl"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the daemon and wait for it to exit; return its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics keyed by (name, sorted labels)."""
        return scrape_metrics(self.metrics_url)

    def retention_settled(self, wait: float = 30.0) -> dict[str, float]:
        """Wait until every store's retention job has reported its start-up pass (the last work
        start-up does after the listening lines, and the last it logs); their last-run times."""
        from juki_gateway.gateway.config import load_config

        config = load_config(self.workdir / "gateway.toml")
        stores = set(config.stores()) if config.retention.enabled else set()
        deadline = time.monotonic() + wait
        while True:
            runs = {dict(labels)["store"]: v for (name, labels), v in self.scrape().items()
                    if name == "juki_gateway_retention_last_run_timestamp_seconds"}
            if set(runs) >= stores or time.monotonic() > deadline:
                return runs
            time.sleep(0.05)

    def log_records(self) -> list[dict[str, Any]]:
        """Every handshake-log record so far (complete lines only: the daemon may be writing
        the next one)."""
        if not self.log_path.exists():
            return []
        complete = self.log_path.read_text().split("\n")[:-1]
        return [json.loads(line) for line in complete if line]

    def log_mark(self) -> int:
        """How many records the log holds now (pass to :meth:`records_for_peer` as ``since``)."""
        return len(self.log_records())

    def new_records(self, since: int, count: int = 1, wait: float = 10.0) -> list[dict[str, Any]]:
        """The records after the first ``since``, once there are ``count`` of them (or timeout)."""
        deadline = time.monotonic() + wait
        while len(self.log_records()) - since < count and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.05)
        return self.log_records()[since:]

    def records_for_peer(self, peer_addr: str, *, since: int, wait: float = 10.0) -> list[dict[str, Any]]:
        """Records after the first ``since`` whose peer_addr is ``peer_addr`` (waits for one).

        ``since`` matters: the kernel reuses ephemeral client ports, so an earlier attempt may
        have come from the same address.
        """
        deadline = time.monotonic() + wait
        while True:
            found = [r for r in self.log_records()[since:] if r["peer_addr"] == peer_addr]
            if found or time.monotonic() > deadline:
                time.sleep(0.05)
                return [r for r in self.log_records()[since:] if r["peer_addr"] == peer_addr]
            time.sleep(0.02)


def stop_all(daemons: Mapping[str, Daemon], timeout: float = 15.0) -> dict[str, int]:
    """Stop every daemon, each in its own try: one that does not exit in ``timeout`` (killed,
    :meth:`Daemon.stop`) leaves none of the others running; the first error is raised once all
    were stopped (all of them, grouped, when several failed). Each one's exit code."""
    codes: dict[str, int] = {}
    errors: list[Exception] = []
    for name, daemon in daemons.items():
        try:
            codes[name] = daemon.stop(timeout=timeout)
        except Exception as exc:  # raised below, after the others are stopped
            errors.append(exc)
    if len(errors) > 1:
        raise ExceptionGroup("daemons that did not stop cleanly", errors)
    if errors:
        raise errors[0]
    return codes


def start_daemon(workdir: Path, timeout: float = 20.0) -> Daemon:
    """Run ``python -m juki_gateway serve`` and wait until it prints its bound ports."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    stderr = (workdir / "serve.stderr").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "juki_gateway", "serve", "--config", str(workdir / "gateway.toml")],
        stdout=subprocess.PIPE, stderr=stderr, cwd=workdir, env=env,
    )
    daemon = Daemon(proc, workdir)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    while not daemon.metrics_url:
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"daemon did not start: {(workdir / 'serve.stderr').read_text()}")
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if not ready:
            continue
        chunk = os.read(proc.stdout.fileno(), 4096)
        buf += chunk
        for line in buf.decode().splitlines():
            if line.startswith("listening: "):
                name = line.split()[1]
                daemon.ports[name] = int(line.rsplit(":", 1)[1])
            elif line.startswith("admin: "):
                daemon.ports["admin"] = int(line.split()[1].rsplit(":", 1)[1])
            elif line.startswith("metrics: "):
                daemon.metrics_url = line.split(" ", 1)[1].strip()
    return daemon


@dataclass
class Attempt:
    """What a client saw: its own port, the application bytes it got, and any error."""

    local_port: int
    data: bytes
    error: str | None
    version: str | None

    @property
    def peer_addr(self) -> str:
        return f"127.0.0.1:{self.local_port}"


def client_context(pki: Path, name: str | None, *, tls12: bool = False) -> ssl.SSLContext:
    """A stdlib client context trusting the dev CA, presenting ``name``'s cert (if any)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki / "ca.pem")
    if name is not None:
        ctx.load_cert_chain(pki / f"{name}.pem", pki / f"{name}.key")
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def attempt(port: int, pki: Path, name: str | None, server_name: str, *,
            tls12: bool = False, payload: bytes | None = None, sender: str | None = None) -> Attempt:
    """Connect, send a PING frame (or ``payload``) and read what comes back within 5 s; the
    PING's header names the client's certificate as its sender unless ``sender`` says else."""
    sender = sender if sender is not None else (name or "test")
    ctx = client_context(pki, name, tls12=tls12)
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    local_port = raw.getsockname()[1]
    data = b""
    error = None
    version = None
    try:
        with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
            version = tls.version()
            tls.sendall(payload if payload is not None else
                        encode_frame(MessageType.PING, sender, server_name, timestamp=now_ts()))
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
                if payload is None and len(data) >= len(encode_frame(MessageType.PONG, "a", "b", timestamp=TS)):
                    break
    except (ssl.SSLError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        raw.close()
    return Attempt(local_port, data, error, version)


def decode_frames(data: bytes) -> list[Any]:
    """The frames in ``data``."""
    dec = FrameDecoder(link_record_lengths())
    dec.receive_data(data)
    out = []
    while (ev := dec.next_event()) is not None:
        out.append(ev)
    return out


def counter(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
            **labels: str) -> float:
    """One sample's value (0 if absent)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def free_port_base(span: int = 20, tries: int = 50) -> int:
    """A base N such that N+1 … N+span are free on 127.0.0.1 now (for a configuration whose
    ports cannot all be 0: daemons reaching each other's endpoints at fixed ports)."""
    import random

    rng = random.Random()
    for _ in range(tries):
        base = rng.randrange(20000, 60000 - span)
        held: list[socket.socket] = []
        try:
            for port in range(base + 1, base + span + 1):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError(f"no {span} consecutive free ports found")


def rss_mb(pid: int) -> float:
    """The resident set size of process ``pid`` in MB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")
