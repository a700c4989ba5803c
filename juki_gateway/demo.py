"""``make demo``: the whole system end to end, on a fresh clone, in about two minutes.

1. a glimpse of the codec (one resident with 外字 encoded and decoded back);
2. a working directory ``juki-data/demo`` (dev CA, certificates, gateway.toml on free loopback
   ports) unless one exists, and the 符号 of the quickstart population in its store;
3. ``juki-gateway serve`` started as a real daemon, plus the Juki-net chain (municipal CS,
   prefecture, 機構) as ``juki-gateway jukinet-node`` processes on the same PKI;
4. ``juki-gateway simulate quickstart`` against them: resident events, 副本 registration,
   information queries, DV-flagged residents, with a progress bar and the run summary;
5. where the logs, metrics, health and audit trail are; then everything is stopped.

The exit status is the simulation's: 0 when every invariant held.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

DEMO_DIR = Path("juki-data") / "demo"
SCENARIO = "quickstart"


def _codec_glimpse() -> None:
    from juki_gateway.codecs.record import get_codec
    from juki_gateway.codecs.samples import sample_soufusaki

    rec = sample_soufusaki(0)
    codec = get_codec("soufusaki")
    back = codec.decode(codec.encode(rec))
    print(f"1. codec: 送付先情報 of {rec['kanji_name']} → {codec.record_length} bytes → decoded back: "
          f"外字フラグ {back['gaiji_flag']}, 代替文字 {back['substitute_name']!r}")


def _ports_free(base: int) -> bool:
    for port in (*range(base + 1, base + 5), base + 10, base + 20):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the daemon listens
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _free_base() -> int:
    for base in range(17100, 30000, 100):
        if _ports_free(base):
            return base
    raise SystemExit("demo: no free block of loopback ports found")


def _workdir() -> Path:
    from juki_gateway.gateway.initdir import init_workdir
    from juki_gateway.workdir import read_toml

    config = DEMO_DIR / "gateway.toml"
    if config.exists():
        base = int(read_toml(config)["metrics"]["port"]) - 20
        if _ports_free(base):
            print(f"2. working directory {DEMO_DIR} (kept; ports {base + 1}…{base + 20})")
            return config
        print(f"2. ports of {DEMO_DIR} are busy: re-creating it on free ports")
    base = _free_base()
    init_workdir(DEMO_DIR, dt.datetime.now(dt.UTC), port_base=base, force=True)
    (DEMO_DIR / "registry.sqlite3").unlink(missing_ok=True)
    print(f"2. working directory {DEMO_DIR} created: dev CA, certificates, gateway.toml "
          f"(endpoints on 127.0.0.1:{base + 1}…{base + 4}, admin {base + 10}, metrics {base + 20})")
    return config


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "juki_gateway", *args]


def _wait_for(proc: subprocess.Popen[bytes], marker: str, timeout: float) -> list[str]:
    """Lines of ``proc``'s stdout up to the one starting with ``marker``."""
    assert proc.stdout is not None
    lines: list[str] = []
    buf = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            raise SystemExit(f"demo: a process did not start (waiting for {marker!r}): {lines}")
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if not ready:
            continue
        buf += os.read(proc.stdout.fileno(), 4096)
        *done, rest = buf.split(b"\n")
        buf = rest
        for raw in done:
            line = raw.decode(errors="replace")
            lines.append(line)
            if line.startswith(marker):
                return lines


def _start_jukinet(config_path: Path, logs: Path) -> tuple[list[subprocess.Popen[bytes]], int]:
    """The CS → prefecture → 機構 chain as node processes; returns them and the CS's port."""
    from juki_gateway.gateway.config import load_config
    from juki_gateway.gateway.jukinet.node import NodeConfig, PeerAddress
    from juki_gateway.gateway.jukinet.topology import ALLOW, IDENTITIES, LINKS, config_to_json

    config = load_config(config_path)
    pki = config.pki_dir
    names = ("kiko", "pref-17", "cs-172014")
    procs: list[subprocess.Popen[bytes]] = []
    ports: dict[str, int] = {}
    for name in names:
        ident = IDENTITIES[name]
        cfg = NodeConfig(
            node_id=name, role=ident.role, org=ident.org,
            store_url=f"sqlite:///{(config.workdir / f'jukinet-{name}.sqlite3').resolve()}",
            cert=pki / f"{name}.pem", key=pki / f"{name}.key", ca=pki / "ca.pem",
            crl=pki / "crl.pem", port=0, allow=ALLOW[name],
            peers=tuple(PeerAddress(p, IDENTITIES[p].role, IDENTITIES[p].org, "127.0.0.1", 0)
                        for p in LINKS.get(name, ()) if p in names),
        )
        node_json = config.workdir / f"jukinet-{name}.json"
        node_json.write_text(config_to_json(cfg))
        peer_args = [f"--peer={p}={ports[p]}" for p in LINKS.get(name, ()) if p in ports]
        err = (logs / f"jukinet-{name}.log").open("ab")
        proc = subprocess.Popen(_cli("jukinet-node", str(node_json), *peer_args),
                                stdout=subprocess.PIPE, stderr=err)
        procs.append(proc)
        for line in _wait_for(proc, "READY", 60):
            if line.startswith("LISTENING "):
                ports[name] = int(line.split()[1])
    return procs, ports["cs-172014"]


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _health(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return f"{resp.status} {json.loads(resp.read())['status']}"
    except urllib.error.HTTPError as exc:
        return f"{exc.code} {json.loads(exc.read()).get('reasons')}"
    except OSError as exc:
        return f"unreachable ({exc})"


def main() -> int:
    """Run the demo (see the module docstring)."""
    print("juki-gateway demo\n")
    _codec_glimpse()
    config_path = _workdir()
    workdir = config_path.parent
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    from juki_gateway.gateway.config import load_config
    from juki_gateway.simulators.intermediate import prepare_store
    from juki_gateway.simulators.population import build_population
    from juki_gateway.simulators.scenario import load_scenario

    sc = load_scenario(SCENARIO)
    added = prepare_store(load_config(config_path).store.url,
                          build_population(sc.population, seed=sc.seed, as_of=sc.as_of),
                          dt.datetime.now(dt.UTC))
    print(f"   {sc.population} synthetic Kanazawa residents; {added} new 符号 in the store")

    procs: list[subprocess.Popen[bytes]] = []
    try:
        serve = subprocess.Popen(_cli("serve", "--config", str(config_path)),
                                 stdout=subprocess.PIPE,
                                 stderr=(logs / "serve.stderr.jsonl").open("ab"))
        procs.append(serve)
        lines = _wait_for(serve, "metrics: ", 90)
        metrics_url = lines[-1].split(" ", 1)[1].strip()
        print("3. daemon started: " + "; ".join(line for line in lines if line.startswith("listening")))
        jukinet, cs_port = _start_jukinet(config_path, logs)
        procs.extend(jukinet)
        print(f"   Juki-net chain started (CS on 127.0.0.1:{cs_port} → prefecture → 機構)\n")
        summary_json = workdir / f"{SCENARIO}-summary.json"
        print(f"4. juki-gateway simulate {SCENARIO} (about {sc.duration:.0f} s):")
        sim = subprocess.run(_cli("simulate", SCENARIO, "--config", str(config_path),
                                  f"--endpoint=cs-172014={cs_port}", "--json", str(summary_json)),
                             timeout=sc.duration + 240)
        health_url = metrics_url.replace("/metrics", "/health")
        print(f"""
5. where to look:
   summary (JSON)     {summary_json}
   daemon log         {logs / 'gateway.jsonl'}  (JSON lines, resident identifiers pseudonymised)
   handshake log      {logs / 'handshakes.jsonl'}  (juki-gateway handshakes --config {config_path})
   Juki-net node logs {logs}/jukinet-*.log
   metrics            {metrics_url}  (Prometheus; alert rules and dashboard in ops/)
   health             {health_url}  → {_health(health_url)}
   audit trail        juki-gateway audit list --config {config_path}  (verify: audit verify)
   held queries       juki-gateway held list --operator op-alice --config {config_path}
""")
        return sim.returncode
    finally:
        _stop(procs)
        print("daemon and Juki-net nodes stopped")


if __name__ == "__main__":
    sys.exit(main())
