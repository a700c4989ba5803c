"""docs/deployment.md, layout 3, as written: two instances of the prefecture on one PostgreSQL,
configured by the doc's gateway.toml alone, carry the CS's traffic to 機構 across the stop of
the instance the CS was talking to."""

from __future__ import annotations

import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from juki_gateway.registry_store.engine import create_store_engine
from juki_gateway.registry_store.models import LinkLease, table_of
from tests.gateway_support import REPO, Daemon, free_port_base, start_daemon
from tests.store_fixtures import _drop_database

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]
DOC = REPO / "docs" / "deployment.md"
DOC_DB_URL = "postgresql+psycopg://juki:secret@db.pref17.example:5432/pref17"


def doc_block(marker: str, lang: str = "toml") -> str:
    """The fenced block right after ``<!-- deployment: MARKER -->`` in the deployment doc."""
    found = re.search(rf"<!-- deployment: {re.escape(marker)} -->\n```{lang}\n(.*?)```",
                      DOC.read_text(), re.S)
    assert found, f"no block {marker!r} in {DOC}"
    return found.group(1)


def replace_once(text_: str, old: str, new: str) -> str:
    assert text_.count(old) == 1, old
    return text_.replace(old, new)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FirstUp:
    """The load balancer the doc puts in front of the instances, reduced to what matters:
    each TCP connection goes to the first target that accepts it (TLS passes through)."""

    def __init__(self, targets: list[int]) -> None:
        self.targets = targets
        self.used: Counter[int] = Counter()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            for port in self.targets:
                try:
                    upstream = socket.create_connection(("127.0.0.1", port), timeout=2)
                except OSError:
                    continue
                self.used[port] += 1
                upstream.settimeout(None)
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()
                break
            else:
                client.close()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed = True
        self.sock.close()


@pytest.fixture
def pref_db(pg_database_url: str) -> Iterator[str]:
    """A database of its own for the prefecture's shared store (the doc's `pref17`)."""
    name = f"juki_pref17_{secrets.token_hex(4)}"
    admin = create_engine(pg_database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _drop_database(admin, name)
        admin.dispose()


def _lease_holder(url: str) -> str | None:
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            t = table_of(LinkLease)
            return conn.execute(
                select(t.c.holder).where(t.c.link == "pref-17->kiko")).scalar_one_or_none()
    finally:
        engine.dispose()


def _one_drives_the_other_stands_by(a: Daemon, b: Daemon, link: str,
                                    timeout: float = 30) -> None:
    """Of the two instances, one holds ``link`` up and the other reports it standby (the gauge
    the link-down alert leaves out), within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        seen = []
        for d in (a, b):
            values = {metric: v for (metric, labels), v in d.scrape().items()
                      if metric in ("juki_gateway_link_up", "juki_gateway_link_standby")
                      and dict(labels).get("link") == link}
            seen.append((values.get("juki_gateway_link_up"),
                         values.get("juki_gateway_link_standby")))
        if sorted(seen) == [(0.0, 1.0), (1.0, 0.0)]:
            return
        assert time.monotonic() < deadline, seen
        time.sleep(0.5)


def _wait_healthy(daemon: Daemon, timeout: float = 60) -> None:
    import urllib.error
    import urllib.request

    url = daemon.metrics_url.replace("/metrics", "/health")
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = exc.read().decode()
        except OSError as exc:
            last = str(exc)
        assert time.monotonic() < deadline, f"{daemon.workdir.name}: /health not 200: {last}"
        time.sleep(0.2)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "juki_gateway", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def test_two_prefecture_instances_from_gateway_toml_alone(tmp_path: Path, pref_db: str) -> None:
    """The doc's instance file (ports and addresses aside) runs two prefecture instances on one
    PostgreSQL database; the CS reaches them through one address; quickstart's updates all
    reach 機構 exactly once although the instance the CS used is stopped mid-run; the CS
    connected to both, and the survivor drives the link to 機構."""
    # the rest of the system (CS, 機構, intermediate server) on one host, and the CA
    base = free_port_base()
    rest = tmp_path / "rest"
    assert _cli("init", str(rest), "--port-base", str(base)).returncode == 0
    ports = {name: free_port() for name in ("a", "a-metrics", "a-admin",
                                            "b", "b-metrics", "b-admin")}
    balancer = FirstUp([ports["a"], ports["b"]])
    cfg = tomllib.loads((rest / "gateway.toml").read_text())
    cfg["endpoints"] = [ep for ep in cfg["endpoints"] if ep["name"] != "pref-17"]
    del cfg["jukinet"]["pref-17"]
    cs_link = doc_block("CS link to the instances")
    cs_link = replace_once(cs_link, 'host = "pref17.example"', 'host = "127.0.0.1"')
    cs_link = replace_once(cs_link, "port = 7102", f"port = {balancer.port}")
    cfg["links"] = tomllib.loads(cs_link)["links"]
    (rest / "gateway.toml").write_text(tomli_w.dumps(cfg))

    # the two instances: the doc's file, and the prefecture's files from the CA machine
    instances: dict[str, Path] = {}
    for name in ("a", "b"):
        wd = tmp_path / f"pref-17-{name}"
        (wd / "pki").mkdir(parents=True, mode=0o700)
        for f in ("ca.pem", "crl.pem", "pref-17.pem", "pref-17.key", "audit-anchor.key"):
            shutil.copy2(rest / "pki" / f, wd / "pki" / f)
        conf = doc_block("instance gateway.toml")
        for old, new in ((DOC_DB_URL, pref_db), ('instance = "a"', f'instance = "{name}"'),
                         ("port = 7120", f"port = {ports[name + '-metrics']}"),
                         ("port = 7110", f"port = {ports[name + '-admin']}"),
                         ("port = 7102", f"port = {ports[name]}"),
                         ('host = "kiko.example"', 'host = "127.0.0.1"'),
                         ("port = 7103", f"port = {base + 3}")):
            conf = replace_once(conf, old, new)
        conf = conf.replace('host = "0.0.0.0"', 'host = "127.0.0.1"')  # tests stay on loopback
        (wd / "gateway.toml").write_text(conf)
        instances[name] = wd
    # the doc's start-up commands: the shared store once, each registry store, then serve
    steps = [shlex.split(line.split("#")[0]) for line in
             doc_block("instance start-up", "sh").splitlines() if line.strip()]
    doc_config = "/var/lib/juki-gateway/gateway.toml"
    assert steps == [
        ["juki-gateway", "store", "migrate", "--store", "pref-17", "--config", doc_config],
        ["juki-gateway", "store", "migrate", "--config", doc_config],
        ["juki-gateway", "serve", "--config", doc_config]]
    for argv, where in ((steps[0], ["a"]), (steps[1], ["a", "b"])):
        for name in where:
            args = [str(instances[name] / "gateway.toml") if a == doc_config else a
                    for a in argv[1:]]
            done = _cli(*args)
            assert done.returncode == 0, done.stderr

    daemons: dict[str, Daemon] = {}
    sim: subprocess.Popen[str] | None = None
    try:
        daemons["rest"] = start_daemon(rest, timeout=60)
        for name, wd in instances.items():
            daemons[name] = start_daemon(wd, timeout=60)
        for d in daemons.values():
            _wait_healthy(d)
        _one_drives_the_other_stands_by(daemons["a"], daemons["b"], "pref-17->kiko")
        summary = tmp_path / "summary.json"
        sim = subprocess.Popen(
            [sys.executable, "-m", "juki_gateway", "simulate", "quickstart", "--config",
             str(rest / "gateway.toml"), "--duration", "14", "--no-progress", "--json",
             str(summary)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(6)
        assert balancer.used[ports["a"]] >= 1 and balancer.used[ports["b"]] == 0
        assert daemons["a"].stop(signal.SIGTERM, timeout=40) == 0  # the CS's instance goes
        out, _ = sim.communicate(timeout=240)
        assert sim.returncode == 0, out[-4000:]
        assert "RESULT: all invariants held" in out
        assert "every acknowledged update reached 機構 exactly once (R4)" in out
        assert balancer.used[ports["b"]] >= 1  # the CS moved to the other instance
        assert _lease_holder(pref_db) == "pref-17/b"
        _wait_healthy(daemons["b"])
        applied = {dict(labels).get("result"): v for (metric, labels), v
                   in daemons["b"].scrape().items()
                   if metric == "juki_gateway_jukinet_messages_total"
                   and dict(labels).get("node") == "pref-17"}
        assert sum(applied.values()) > 0, applied
    finally:
        if sim is not None and sim.poll() is None:
            sim.kill()
            sim.wait(timeout=10)
        for d in daemons.values():
            d.stop()
        balancer.close()
