"""Run one Juki-net node as a process: ``python -m juki_gateway.gateway.jukinet.run CONFIG.json``.

A node with an endpoint is served by a one-endpoint gateway
(:mod:`juki_gateway.gateway.jukinet.standalone`). Prints ``LISTENING <port>`` once the endpoint
is bound (so a parent can find an ephemeral
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
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from juki_gateway.errors import JukiError, exit_code_for


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
    from juki_gateway.gateway.jukinet.standalone import hosted_node, node_gateway
    from juki_gateway.gateway.jukinet.topology import config_from_json

    parser = argparse.ArgumentParser(
        prog="jukinet-node",
        description="Run one Juki-net node: its endpoint is served by a one-endpoint gateway "
                    "(mutual TLS, handshake log, metrics on an ephemeral loopback port).")
    parser.add_argument("config", type=Path, help="the node's configuration (JSON)")
    parser.add_argument("--port", type=int, default=None, help="listen on this port")
    parser.add_argument("--peer", action="append", default=[], metavar="NAME=PORT",
                        help="the port of a peer's endpoint (repeatable)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the handshake log goes (default: the configuration's folder)")
    args = parser.parse_args(argv)
    from juki_gateway.workdir import private_umask

    private_umask()  # the node's store and logs are for this account only
    from twisted.logger import globalLogBeginner, textFileLogObserver

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    try:
        cfg = config_from_json(args.config.read_text(), str(args.config))
    except (OSError, JukiError) as exc:
        print(f"jukinet-node: error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return exit_code_for(exc) if isinstance(exc, JukiError) else 2
    if args.port is not None:
        from dataclasses import replace

        cfg = replace(cfg, port=args.port)
    ports = {k: int(v) for k, v in (p.split("=", 1) for p in args.peer)}
    service: Any
    ready: Deferred[Any]
    if cfg.port is None:  # a pure client (the existing system's): no endpoint to serve
        node = service = JukinetNode(cfg, reactor)
        ready = node.ready
        start = node.startService
    else:
        service = node_gateway(cfg, reactor, args.workdir or args.config.resolve().parent)
        node = hosted_node(service)
        ready = Deferred()

        def start() -> None:
            service.startService()
            service.whenListening().chainDeferred(ready)

    def started(_: object) -> None:
        if node.endpoint_port is not None:
            print(f"LISTENING {node.endpoint_port}", flush=True)
        node.connect(ports)
        tune_gc()
        print("READY", flush=True)

    def failed(f: Failure) -> None:
        print(f"FAILED {f.getErrorMessage()}", file=sys.stderr, flush=True)
        reactor.stop()

    reactor.callWhenRunning(start)
    ready.addCallbacks(started, failed)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    profile_dir = os.environ.get("JUKI_PROFILE_DIR")
    if profile_dir:
        # Profiling a node of a benchmark: the reactor thread's profile, one file per node.
        import cProfile

        prof = cProfile.Profile()
        prof.runcall(reactor.run)
        prof.dump_stats(str(Path(profile_dir) / f"{cfg.node_id}.prof"))
    else:
        reactor.run()
    print(f"PEAK_RSS_KB {peak_rss_kb()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
