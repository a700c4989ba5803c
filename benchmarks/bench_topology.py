"""``make bench-topology``: what one daemon can host, measured against one city, and the split.

In one run, three legs, each on a fresh working directory made by ``juki-gateway init`` and
real ``juki-gateway serve`` subprocesses on loopback (fresh SQLite stores, synchronous=FULL):

1. ``kanazawa``, one daemon: every update through 金沢市's CS (cs-172014 → pref-17 → 機構);
2. ``hokuriku``, one daemon hosting all 37 nodes: the same number of updates shared over the 34
   municipalities in proportion to their 2020 census population, each through its own CS and
   its own prefecture;
3. ``hokuriku`` split over three daemons as in docs/topology.md (機構 alone, 石川県 with its CSs,
   富山県 with its CSs), 機構 on PostgreSQL when a server is at hand
   (``JUKI_BENCH_PG_URL``/``JUKI_TEST_PG_URL``, else a private throwaway cluster, fsync on),
   else on SQLite (the output says which). The server's ``fsync`` and ``synchronous_commit``
   are printed with 機構's store, and the leg is labelled "not durable" when either is off.

The load generator is bench_jukinet's: each municipality's existing system is a Juki-net node
under its ``kizon-<code>`` certificate whose outbox holds its updates (a seeded
:func:`~juki_gateway.simulators.resident_events.timeline`) before it connects; the clock runs
from the connects until 機構's ``/metrics`` counts every update applied (durable: 機構 counts
after its commit, each hop ACKs after its own). RSS is the daemon's resident set at the end of
the leg, with its peak (VmHWM). Prints a table and ``BENCH topology.…`` lines with the ratios
hokuriku_one/kanazawa and split/one. Never fails on speed.

Whatever ends the run (an error, SIGTERM, Ctrl-C), every daemon it started is stopped and the
private cluster removed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from twisted.internet import defer, task
from twisted.internet.threads import deferToThread

from benchmarks.bench_jukinet import cpu_seconds
from benchmarks.bench_store import _pg_database
from juki_gateway.certs.pki import CRL_FILE
from juki_gateway.gateway.initdir import init_split, init_workdir
from juki_gateway.gateway.jukinet.node import JukinetNode, NodeConfig, PeerAddress
from juki_gateway.gateway.metrics import scrape_metrics
from juki_gateway.gateway.topology import Topology, load_topology
from juki_gateway.protocols.jukinet.messages import JukinetMessage as M
from juki_gateway.simulators.resident_events import timeline
from juki_gateway.simulators.season import MESSAGES
from tests.gateway_support import (
    Daemon,
    free_port_base,
    rss_mb,
    start_daemon,
    stop_all,
    wait_healthy,
)
from tests.pgcluster import PgClusterUnavailable, TempCluster, start_temp_cluster

#: the split of docs/topology.md
DAEMONS = {"kiko": "kiko", "ishikawa": "pref-17,cs-17*,ims-*", "toyama": "pref-16,cs-16*"}


def shares(topology: Topology, n: int) -> dict[str, int]:
    """``n`` updates over the municipalities in proportion to their population (the largest
    takes the rounding)."""
    whole = sum(m.population for m in topology.municipalities)
    out = {m.code: max(1, n * m.population // whole) for m in topology.municipalities}
    biggest = max(topology.municipalities, key=lambda m: m.population).code
    out[biggest] += n - sum(out.values())
    return out


def peak_mb(pid: int) -> float:
    """The peak resident set (VmHWM) of process ``pid`` in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def applied_at_kiko(url: str) -> float:
    samples = scrape_metrics(url)
    return sum(v for (name, labels), v in samples.items() if name == MESSAGES
               and dict(labels).get("node") == "kiko"
               and dict(labels).get("msg_type") == "UPDATE_NOTIFY"
               and dict(labels).get("result") == "applied")


@defer.inlineCallbacks
def leg(reactor: Any, work: Path, pki: Path, topology: Topology, daemons: dict[str, Daemon],
        n: int) -> Any:
    """Load ``n`` updates through the daemons (see the module docstring); the figures."""
    kiko = next(d for d in daemons.values() if "kiko" in d.ports)
    ports = {name: port for d in daemons.values() for name, port in d.ports.items()}
    for name, d in daemons.items():
        code, body = yield deferToThread(wait_healthy, d.metrics_url, 120.0)
        if code != 200:
            raise RuntimeError(f"daemon {name} not healthy: {body.get('reasons')}")
    senders = []
    for i, (code, count) in enumerate(sorted(shares(topology, n).items())):
        cfg = NodeConfig(
            node_id=f"kizon-{code}", role="kizon-juki", org=code,
            store_url=f"sqlite:///{work / f'kizon-{code}.sqlite3'}", cert=pki / f"kizon-{code}.pem",
            key=pki / f"kizon-{code}.key", ca=pki / "ca.pem", crl=pki / CRL_FILE,
            peers=(PeerAddress(f"cs-{code}", "municipal-cs", code, "127.0.0.1",
                               ports[f"cs-{code}"]),))
        node = JukinetNode(cfg, reactor)
        node.startService()
        # a leg cut short (an error, SIGTERM) still stops its node: its store threads would
        # keep the process from exiting
        reactor.addSystemEventTrigger("before", "shutdown", _stop_if_running, node)
        yield node.ready
        records = list(timeline(random.Random(i), code, count, residents=min(count, 5000),
                                code_prefix=f"9{i:03d}"))
        for start in range(0, count, 5000):
            yield node.originate(f"cs-{code}", M.UPDATE_NOTIFY, records[start:start + 5000])
        senders.append(node)
    base = yield deferToThread(applied_at_kiko, kiko.metrics_url)
    cpu0 = {name: cpu_seconds(d.proc.pid) for name, d in daemons.items()}
    t0 = time.perf_counter()
    for node in senders:
        node.connect()
    deadline = t0 + 60 + n / 100
    while True:
        applied = (yield deferToThread(applied_at_kiko, kiko.metrics_url)) - base
        if applied >= n:
            break
        for name, d in daemons.items():
            if d.proc.poll() is not None:
                raise RuntimeError(f"daemon {name} exited during the leg")
        if time.perf_counter() > deadline:
            raise RuntimeError(f"only {applied:.0f} of {n} updates reached 機構 in time")
        yield task.deferLater(reactor, 0.1, lambda: None)
    elapsed = time.perf_counter() - t0
    figures = {
        "n": n, "seconds": elapsed, "per_s": n / elapsed, "senders": len(senders),
        "cpu_us": sum(cpu_seconds(d.proc.pid) - cpu0[name] for name, d in daemons.items())
        / n * 1e6,
        "rss": {name: rss_mb(d.proc.pid) for name, d in daemons.items()},
        "peak": {name: peak_mb(d.proc.pid) for name, d in daemons.items()},
    }
    for node in senders:
        yield node.stopService()
    return figures


def _stop_if_running(node: JukinetNode) -> Any:
    return node.stopService() if node.running else None


def one_daemon(root: Path, topology: str, started: list[Daemon]) -> dict[str, Daemon]:
    """One daemon hosting ``topology`` (appended to ``started`` as soon as it runs)."""
    topo = load_topology(topology)
    init_workdir(root, dt.datetime.now(dt.UTC), port_base=free_port_base(topo.max_offset()),
                 topology=topo)
    daemon = start_daemon(root, timeout=120)
    started.append(daemon)
    return {"one": daemon}


def split_daemons(root: Path, kiko_url: str | None, started: list[Daemon]) -> dict[str, Daemon]:
    """The three daemons of the split (each appended to ``started`` as soon as it runs); when
    one fails to start, those already running are stopped."""
    topo = load_topology("hokuriku")
    init_split(root, dt.datetime.now(dt.UTC),
               port_base=free_port_base(topo.max_offset() + 2 * len(DAEMONS)), topology=topo,
               split=topo.split(list(DAEMONS.items())),
               store_urls={"kiko": kiko_url} if kiko_url else None)
    out: dict[str, Daemon] = {}
    try:
        for name in DAEMONS:
            out[name] = start_daemon(root / name, timeout=120)
            started.append(out[name])
    except BaseException:
        stop_all(out, timeout=60)
        raise
    return out


def stop(daemons: dict[str, Daemon]) -> None:
    stop_all(daemons, timeout=60)


def durability(url: str) -> tuple[bool, str]:
    """Whether the PostgreSQL server of ``url`` commits durably (``fsync`` and
    ``synchronous_commit`` both other than off, as its sessions see them), and the two
    settings as printed."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            fsync = str(conn.execute(text("SHOW fsync")).scalar())
            sync = str(conn.execute(text("SHOW synchronous_commit")).scalar())
    finally:
        engine.dispose()
    return "off" not in (fsync, sync), f"fsync={fsync}, synchronous_commit={sync}"


def postgres() -> tuple[str | None, str, bool, Any]:
    """(URL of a fresh database or None, what 機構's store is, whether it is durable, cleanup);
    nothing left behind when it fails."""
    cluster: TempCluster | None = None
    server = os.environ.get("JUKI_BENCH_PG_URL") or os.environ.get("JUKI_TEST_PG_URL")
    drop: Any = None
    try:
        if not server:
            cluster = start_temp_cluster(fsync=True)
            server = cluster.url
        url, drop = _pg_database(server)
        durable, settings = durability(url)
    except (PgClusterUnavailable, OSError, SQLAlchemyError) as exc:
        if drop is not None:
            drop()
        if cluster is not None:
            cluster.stop()
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"sqlite (no PostgreSQL server: {reason})", True, lambda: None
    except BaseException:
        if drop is not None:
            drop()
        if cluster is not None:
            cluster.stop()
        raise

    def cleanup() -> None:
        try:
            drop()
        finally:
            if cluster is not None:
                cluster.stop()

    where = "private cluster" if cluster else "supplied server"
    return (url, f"postgresql ({where}, {settings}{'' if durable else ', NOT DURABLE'})",
            durable, cleanup)


def _terminated(signum: int, frame: Any) -> None:
    """SIGTERM outside the reactor's run: unwind (the daemons and the cluster are stopped)."""
    raise SystemExit(128 + signum)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--updates", type=int,
                        default=int(os.environ.get("BENCH_TOPOLOGY_UPDATES", 20_000)),
                        help="updates per leg (default 20,000)")
    args = parser.parse_args()
    from twisted.internet import reactor

    results: dict[str, Any] = {}
    hokuriku = load_topology("hokuriku")
    # every daemon any leg started, stopped at the end whatever ended the run (the reactor
    # turns SIGTERM and SIGINT into its stop while it runs; before and after, SIGTERM unwinds)
    started: list[Daemon] = []
    signal.signal(signal.SIGTERM, _terminated)
    with tempfile.TemporaryDirectory(prefix="bench-topology-") as tmp:
        work = Path(tmp)
        cleanup: Any = lambda: None  # noqa: E731
        try:
            kiko_url, kiko_store, durable, cleanup = postgres()

            @defer.inlineCallbacks
            def run() -> Any:
                legs = (("kanazawa_one", lambda d: one_daemon(d, "kanazawa", started),
                         load_topology("kanazawa")),
                        ("hokuriku_one", lambda d: one_daemon(d, "hokuriku", started), hokuriku),
                        ("hokuriku_split", lambda d: split_daemons(d, kiko_url, started),
                         hokuriku))
                for name, start, topo in legs:
                    print(f"leg {name} …", file=sys.stderr, flush=True)
                    root = work / name
                    daemons = yield deferToThread(start, root)
                    try:
                        (work / f"{name}-senders").mkdir()
                        pki = root / "pki"
                        results[name] = yield leg(reactor, work / f"{name}-senders", pki, topo,
                                                  daemons, args.updates)
                    finally:
                        if reactor.running:  # type: ignore[attr-defined]
                            yield deferToThread(stop, daemons)
                        # else cut short (SIGTERM): stopped below, after the reactor

            d = run()
            d.addErrback(lambda f: (print(f.getTraceback(), file=sys.stderr),
                                    results.update(error=True)))
            d.addBoth(lambda _: reactor.stop())  # type: ignore[attr-defined]
            reactor.run()  # type: ignore[attr-defined]
        finally:
            try:
                stop_all({str(i): d for i, d in enumerate(started) if d.proc.poll() is None},
                         timeout=60)
            finally:
                cleanup()
    if "error" in results or "hokuriku_split" not in results:
        print("bench-topology did not finish: every daemon it started was stopped",
              file=sys.stderr)
        return 1
    kz, one, split = results["kanazawa_one"], results["hokuriku_one"], results["hokuriku_split"]
    print()
    print("| leg | daemons | existing systems | updates | seconds | durable notifications/s "
          "| daemon CPU per notification | RSS at the end (peak) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in (("kanazawa, one daemon (3 nodes)", kz), ("hokuriku, one daemon (37 nodes)", one),
                    (f"hokuriku split over 3 daemons, 機構 on {kiko_store.split(' ')[0]}"
                     f"{'' if durable else ' (not durable)'}", split)):
        rss = " + ".join(f"{r['rss'][k]:.0f}" for k in r["rss"])
        peak = " + ".join(f"{r['peak'][k]:.0f}" for k in r["peak"])
        print(f"| {name} | {len(r['rss'])} | {r['senders']} | {r['n']} | {r['seconds']:.1f} | "
              f"{r['per_s']:.0f} | {r['cpu_us']:.0f} µs | {rss} MB ({peak} MB) |")
    print()
    print(f"machine load average (1 min) at the end: {os.getloadavg()[0]:.1f}; 機構's store in "
          f"the split: {kiko_store}")
    for name, r in (("kanazawa_one", kz), ("hokuriku_one", one), ("hokuriku_split", split)):
        print(f"BENCH topology.{name}.notifications_per_s={r['per_s']:.0f}")
        print(f"BENCH topology.{name}.daemon_cpu_us_per_notification={r['cpu_us']:.0f}")
        if len(r["rss"]) == 1:
            print(f"BENCH topology.{name}.rss_mb={r['rss']['one']:.0f}")
            print(f"BENCH topology.{name}.peak_rss_mb={r['peak']['one']:.0f}")
        else:
            for daemon in r["rss"]:
                print(f"BENCH topology.{name}.{daemon}.rss_mb={r['rss'][daemon]:.0f}")
            print(f"BENCH topology.{name}.rss_mb_total={sum(r['rss'].values()):.0f}")
            print(f"BENCH topology.{name}.peak_rss_mb_total={sum(r['peak'].values()):.0f}")
    print(f"BENCH topology.hokuriku_split.kiko_store={kiko_store}")
    print(f"BENCH topology.ratio.hokuriku_one_vs_kanazawa={one['per_s'] / kz['per_s']:.2f}")
    print(f"BENCH topology.ratio.split_vs_one={split['per_s'] / one['per_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
