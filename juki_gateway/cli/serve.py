"""``juki-gateway serve [--config PATH]``: run the daemon until SIGTERM/SIGINT.

Start-up either completes or fails cleanly: the working directory is locked first
(``serve.lock``: a second ``serve`` on the same directory is refused before it opens any file of
the first one's), the configuration is validated, then the service tree starts inside the
running reactor; a listener that cannot bind or any other start-up failure stops every
listener already bound and ends the process with one line on stderr and exit 1.

SIGTERM (or SIGINT) stops listening, drains live connections (``[timeouts] drain``), stops the
hosted nodes and exits 0. If that shutdown has not finished ``drain`` + 15 seconds later, or
another SIGTERM/SIGINT arrives 2 seconds or more after the first, the process exits at once with
status 1: SIGTERM always ends the daemon. SIGHUP reopens the log files (``logs/gateway.jsonl``,
``logs/handshakes.jsonl``: logrotate moves them, then signals; see ``juki_gateway/ops/logrotate``)
and reloads the CRL. The daemon log's schema and filters are in
:mod:`juki_gateway.gateway.jsonlog`.

Under systemd (``Type=notify``, ``$NOTIFY_SOCKET`` set) the daemon sends ``READY=1`` once every
endpoint, the admin and the metrics listener are bound, and ``STOPPING=1`` when a stop request
arrives (:mod:`juki_gateway.gateway.sdnotify`); the shipped unit is ``juki_gateway/ops/juki-gateway.service``.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from juki_gateway.errors import JukiError

if TYPE_CHECKING:
    from juki_gateway.gateway.jsonlog import TextSink
from juki_gateway.workdir import add_config_argument, config_path_from

#: Seconds a shutdown may take beyond the drain before the process exits regardless.
SHUTDOWN_GRACE = 15.0
#: A stop request this many seconds after the first is a second one (sooner: the same one,
#: delivered to the process group and to the process).
REPEAT_AFTER = 2.0
LOCK_NAME = "serve.lock"


class StartupFailed(JukiError):
    """The daemon could not start: a listener could not bind, a store could not open …"""

    code = "startup_failed"


class WorkdirBusy(JukiError):
    """Another ``juki-gateway serve`` already runs on this working directory."""

    code = "workdir_busy"


def register(sub: Any) -> None:
    """Add the ``serve`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "serve", help="run the gateway daemon",
        description="Run the gateway daemon until SIGTERM/SIGINT (SIGHUP reopens the log "
                    "files and reloads the CRL).")
    add_config_argument(p)
    p.set_defaults(func=run)


def lock_workdir(workdir: Path) -> IO[str]:
    """Hold ``<workdir>/serve.lock`` for the life of the process (WorkdirBusy if taken).

    An advisory ``flock``: the kernel drops it when the process ends, however it ends, so a
    crashed daemon never leaves a stale lock behind. The file says which process holds it.
    """
    import fcntl

    path = workdir / LOCK_NAME
    fh = path.open("a+", encoding="ascii")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "?"
        fh.close()
        raise WorkdirBusy(f"another juki-gateway serve (pid {holder}) runs on {workdir}; "
                          f"stop it first (its lock is {path})") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh


def run(args: argparse.Namespace) -> int:
    """Start the service tree on the global reactor (the one place that imports it)."""
    from juki_gateway.gateway.config import load_config

    config = load_config(config_path_from(args))
    lock = lock_workdir(config.workdir)
    try:
        return _serve(config)
    finally:
        lock.close()


def _serve(config: Any) -> int:
    from twisted.internet import reactor
    from twisted.logger import Logger, globalLogBeginner

    from juki_gateway.errors import error_label
    from juki_gateway.gateway.jsonlog import (
        REPEAT_WINDOW,
        Pseudonymizer,
        ReopenableFile,
        daemon_log_observer,
        load_or_create_key,
    )
    from juki_gateway.gateway.sdnotify import sd_notify
    from juki_gateway.gateway.service import makeService, startup_error

    log = Logger(namespace="juki_gateway.serve")

    def notify(*states: str) -> None:
        try:
            sd_notify(*states)
        except OSError as exc:  # the service manager's socket: the daemon runs on without it
            log.warn("service manager not notified ({states}): {error}", event="sd_notify_failed",
                     states=",".join(states), error=error_label(exc))

    try:
        service = makeService(config, reactor)
    except JukiError:
        raise
    except Exception as exc:  # a store that cannot open, a file that cannot be read …
        raise StartupFailed(f"could not start: {type(exc).__name__}: {exc}") from None
    # JSON lines on stderr and in logs/gateway.jsonl, resident identifiers pseudonymised;
    # info and above only: per-connection debug events would cost on the handshake path; a
    # repeated warning once per window (a broken link retries at most every backoff_max)
    log_stream = ReopenableFile(config.workdir / "logs" / "gateway.jsonl")
    masker = Pseudonymizer(load_or_create_key(config.pki_dir))
    window = max([REPEAT_WINDOW, *(lk.backoff_max for lk in config.links)])
    observer, repeats = daemon_log_observer([sys.stderr, log_stream], masker, reactor, window)
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    failed: list[JukiError] = []
    stopping: list[float] = []

    def started(_: Any) -> None:
        for ep in config.endpoints:
            print(f"listening: {ep.name} ({ep.role}) on {ep.host}:{service.listeners[ep.name].bound_port()}",
                  flush=True)
        admin = service.admin_listener
        if admin is not None and admin.listening is not None:
            print(f"admin: {config.admin.host}:{admin.bound_port()} (operators, mutual TLS)", flush=True)
        print(f"metrics: http://{config.metrics.host}:{service.metrics_listener.bound_port()}/metrics",
              flush=True)
        notify("READY=1", f"STATUS=listening on {len(config.endpoints)} endpoints",
               f"MAINPID={os.getpid()}")

    def fail(exc: BaseException) -> None:
        if not failed:
            failed.append(exc if isinstance(exc, JukiError)
                          else StartupFailed(f"could not start: {type(exc).__name__}: {exc}"))
        stop()

    def start() -> None:
        try:
            service.startService()
        except Exception as exc:  # certificates, keys, log files that cannot be opened …
            fail(exc)
            return
        service.whenListening().addCallbacks(started, lambda f: fail(startup_error(f)))

    def stop() -> None:
        now = reactor.seconds()
        if stopping:
            if now - stopping[0] >= REPEAT_AFTER:  # asked again, later: leave now
                _exit_now(log_stream, "second stop request: exiting without finishing the shutdown")
            return  # the same request delivered twice (to the process group and to us)
        stopping.append(now)
        notify("STOPPING=1", "STATUS=stopping: draining connections")
        deadline = config.timeouts.drain + SHUTDOWN_GRACE
        reactor.callLater(
            deadline, _exit_now, log_stream, f"shutdown still running after {deadline:.0f} s")
        reactor.stop()

    def reopen_and_reload() -> None:
        log_stream.reopen()
        service.handshake_log.reopen()
        service.reload_crl()

    def on_hup(signum: int, frame: Any) -> None:
        reactor.callFromThread(reopen_and_reload)  # type: ignore[attr-defined]

    def on_term(signum: int, frame: Any) -> None:
        reactor.callFromThread(stop)  # type: ignore[attr-defined]

    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.callWhenRunning(start)
    signal.signal(signal.SIGHUP, on_hup)
    # installed once the reactor runs, replacing Twisted's own (which would stop without a
    # deadline): SIGTERM and SIGINT both stop gracefully, a second one exits at once
    reactor.callWhenRunning(signal.signal, signal.SIGTERM, on_term)
    reactor.callWhenRunning(signal.signal, signal.SIGINT, on_term)
    # what start-up allocated (modules, contexts, config) is never garbage: keep it out of the
    # cyclic collector's full passes, which otherwise rescan it while connections churn
    gc.collect()
    gc.freeze()
    reactor.run()
    repeats.flush()
    log_stream.close()
    if failed:  # the error that stopped start-up, with its own code and exit status
        raise failed[0]
    return 0


def _exit_now(log_stream: TextSink, why: str) -> None:
    """End the process at once (status 1), saying why on stderr and in the log."""
    print(f"juki-gateway: {why}", file=sys.stderr, flush=True)
    try:
        log_stream.flush()
    except (OSError, ValueError):
        pass
    os._exit(1)
