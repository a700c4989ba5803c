"""Run one Juki-net node as a process: ``python -m juki_gateway.gateway.jukinet.run CONFIG.json``.

Prints ``LISTENING <port>`` once the endpoint is bound (so a parent can find an ephemeral
port), then ``READY``; runs until SIGTERM/SIGINT. Peer ports come from the configuration or
from ``--peer NAME=PORT`` options. Used by the fault tests (which SIGKILL and restart a node)
and by the benchmark. With ``JUKI_PROFILE_DIR`` set, the reactor thread runs under cProfile and
``<node_id>.prof`` is written there on shutdown.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def peak_rss_kb() -> int:
    """This process's peak resident set (VmHWM; unlike ru_maxrss it does not count the RSS
    the parent had when it forked us)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


#: The collector's first-generation threshold once the node is running (CPython's default: 700).
GC_GEN0_THRESHOLD = 20_000


def tune_gc(gen0: int = GC_GEN0_THRESHOLD) -> None:
    """Keep the cyclic garbage collector off the per-frame path of a running node.

    A frame of thousands of records allocates tens of thousands of container objects (decoded
    items, store rows) that die young through reference counting, yet each 700 allocations
    triggered a collection that also rescanned survivors, and every tenth one the long-lived
    start-up objects (modules, SQLAlchemy metadata, codec tables): ~5-9 µs per notification
    per node in the benchmark. Start-up objects are frozen out of the collector's view and the
    first generation is collected every ``gen0`` allocations instead; cycles are still found.
    """
    import gc

    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0, gen1, gen2)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, start the node on the global reactor, run until stopped."""
    from twisted.internet import reactor

    from juki_gateway.gateway.jukinet.node import JukinetNode
    from juki_gateway.gateway.jukinet.topology import config_from_json

    parser = argparse.ArgumentParser(prog="jukinet-node")
    parser.add_argument("config", type=Path)
    parser.add_argument("--port", type=int, default=None, help="listen on this port")
    parser.add_argument("--peer", action="append", default=[], metavar="NAME=PORT")
    args = parser.parse_args(argv)
    from twisted.logger import globalLogBeginner, textFileLogObserver

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    cfg = config_from_json(args.config.read_text())
    if args.port is not None:
        from dataclasses import replace

        cfg = replace(cfg, port=args.port)
    ports = {k: int(v) for k, v in (p.split("=", 1) for p in args.peer)}
    node = JukinetNode(cfg, reactor)

    def ready(_: object) -> None:
        if node.port is not None:
            print(f"LISTENING {node.bound_port}", flush=True)
        node.connect(ports)
        tune_gc()
        print("READY", flush=True)

    def failed(f: object) -> None:
        print(f"FAILED {f}", file=sys.stderr, flush=True)
        reactor.stop()  # type: ignore[attr-defined]

    reactor.callWhenRunning(node.startService)  # type: ignore[attr-defined]
    node.ready.addCallbacks(ready, failed)
    reactor.addSystemEventTrigger("before", "shutdown", node.stopService)  # type: ignore[attr-defined]
    profile_dir = os.environ.get("JUKI_PROFILE_DIR")
    if profile_dir:
        # Profiling a node of a benchmark: the reactor thread's profile, one file per node.
        import cProfile

        prof = cProfile.Profile()
        prof.runcall(reactor.run)  # type: ignore[attr-defined]
        prof.dump_stats(str(Path(profile_dir) / f"{cfg.node_id}.prof"))
    else:
        reactor.run()  # type: ignore[attr-defined]
    print(f"PEAK_RSS_KB {peak_rss_kb()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
