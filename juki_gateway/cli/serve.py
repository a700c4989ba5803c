"""``juki-gateway serve [--config PATH]``: run the daemon until SIGTERM/SIGINT.

SIGTERM stops listening, drains live connections and exits 0; SIGHUP reloads the CRL.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from juki_gateway.errors import JukiError
from juki_gateway.workdir import add_config_argument, config_path_from


class ListenError(JukiError):
    """An endpoint or the metrics listener could not bind its address."""

    code = "listen"
    exit_code = 3


def register(sub: Any) -> None:
    """Add the ``serve`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser("serve", help="run the gateway daemon")
    add_config_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start the service tree on the global reactor (the one place that imports it)."""
    from twisted.internet import reactor
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
    )

    from juki_gateway.gateway.config import load_config
    from juki_gateway.intermediate.daemon import make_gateway

    config = load_config(config_path_from(args))
    service = make_gateway(config, reactor)
    from juki_gateway.gateway.jsonlog import JsonLinesObserver, Pseudonymizer, load_or_create_key

    # JSON lines on stderr and in logs/gateway.jsonl, resident identifiers pseudonymised;
    # info and above only: per-connection debug events would cost on the handshake path
    log_file = (config.workdir / "logs" / "gateway.jsonl")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_stream = log_file.open("a", encoding="utf-8")
    masker = Pseudonymizer(load_or_create_key(config.pki_dir))
    observer = FilteringLogObserver(
        JsonLinesObserver([sys.stderr, log_stream], masker),
        [LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)],
    )
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    failed: list[str] = []

    def started(_: Any) -> None:
        for ep in config.endpoints:
            print(f"listening: {ep.name} ({ep.role}) on {ep.host}:{service.listeners[ep.name].bound_port()}",
                  flush=True)
        admin = getattr(service, "admin_listener", None)
        if admin is not None and admin.listening is not None:
            print(f"admin: {config.admin.host}:{admin.bound_port()} (operators, mutual TLS)", flush=True)
        print(f"metrics: http://{config.metrics.host}:{service.metrics_listener.bound_port()}/metrics",
              flush=True)

    def startup_failed(f: Any) -> None:
        failed.append(f.getErrorMessage())
        reactor.stop()  # type: ignore[attr-defined]

    def on_hup(signum: int, frame: Any) -> None:
        reactor.callFromThread(service.reload_crl)  # type: ignore[attr-defined]

    def on_term(signum: int, frame: Any) -> None:
        reactor.callFromThread(reactor.stop)  # type: ignore[attr-defined]

    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)  # type: ignore[attr-defined]
    service.startService()
    service.whenListening().addCallbacks(started, startup_failed)
    signal.signal(signal.SIGHUP, on_hup)
    reactor.callWhenRunning(signal.signal, signal.SIGTERM, on_term)  # type: ignore[attr-defined]
    reactor.run(installSignalHandlers=True)  # type: ignore[attr-defined]
    log_stream.close()
    if failed:
        raise ListenError(f"could not start: {failed[0]}")
    return 0
