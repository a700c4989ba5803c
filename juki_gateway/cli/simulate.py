"""``juki-gateway simulate SCENARIO``: drive a running daemon through a scenario and summarise.

The simulators connect over the daemon's real mutual-TLS endpoints with their own certificates
from the working directory's PKI. The summary is printed at the end; ``--json FILE`` also writes
it as JSON. Exit status 0 when every invariant held, 1 when one broke; SIGINT (Ctrl-C) or
SIGTERM stop the run, print (and write) the summary so far, and exit 130 or 143.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from juki_gateway.errors import Interrupted, JukiError, UsageError
from juki_gateway.workdir import add_config_argument, config_path_from

if TYPE_CHECKING:
    from juki_gateway.simulators.summary import RunSummary


def parse_endpoint(text: str) -> tuple[str, int]:
    """argparse type for ``NAME=PORT``."""
    name, sep, port = text.partition("=")
    if not sep or not name or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected NAME=PORT, got {text!r}")
    return name, int(port)


def parse_duration(text: str) -> float | str:
    """argparse type for ``--duration``: seconds, or ``short`` (the scenario's short run)."""
    if text == "short":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SECONDS or 'short', got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"--duration must be positive, got {text!r}")
    return value


def load_configs(path: Path) -> list[Any]:
    """The configuration(s) of a working directory: ``path`` is a ``gateway.toml``, a
    directory holding one, or a directory split over several daemons (``init --daemon``),
    whose sub-directories each hold one (all loaded, in name order)."""
    from juki_gateway.gateway.config import load_config
    from juki_gateway.workdir import CONFIG_NAME

    if not path.is_dir():
        return [load_config(path)]
    if (path / CONFIG_NAME).is_file():
        return [load_config(path / CONFIG_NAME)]
    parts = sorted(p for p in path.glob(f"*/{CONFIG_NAME}") if p.is_file())
    if not parts:
        raise UsageError(f"no {CONFIG_NAME} in {path} nor in its sub-directories: run "
                         "'juki-gateway init' first or pass --config")
    return [load_config(p) for p in parts]


def register(sub: Any) -> None:
    """Add the ``simulate`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "simulate", help="drive a running daemon through a scenario (NAME of a shipped scenario or PATH.toml)")
    p.add_argument("scenario", help="scenario name (quickstart, moving-season, …) or TOML path")
    add_config_argument(p)
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the summary as JSON")
    p.add_argument("--duration", type=parse_duration, metavar="SECONDS|short",
                   help="override the scenario's duration ('short': its short_duration)")
    p.add_argument("--endpoint", type=parse_endpoint, action="append", default=[],
                   metavar="NAME=PORT", help="where an endpoint listens, if not as configured")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--prepare", action="store_true",
                   help="offline: write the 符号 ipnw would issue for the scenario's residents "
                        "into a stopped daemon's store (runs with a [bango_renkei] table obtain "
                        "them through the daemon instead)")
    p.set_defaults(func=run)


def run_on_reactor(work: Any) -> Any:
    """Run ``work(reactor)`` (a coroutine function) on the global reactor; return its result.

    SIGINT and SIGTERM stop the reactor and raise :class:`Interrupted` (exit 130 or 143).
    """
    import signal

    from twisted.internet import reactor
    from twisted.internet.defer import Deferred
    from twisted.python.failure import Failure

    box: list[Any] = []
    signals: list[int] = []

    def stop() -> None:
        if reactor.running:
            reactor.stop()

    def on_signal(signum: int, _frame: Any) -> None:
        if not signals:
            signals.append(signum)
            cast(Any, reactor).callFromThread(stop)  # wakes the reactor: safe from a handler

    def go() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):  # after the reactor installed its own
            signal.signal(sig, on_signal)
        d = Deferred.fromCoroutine(work(reactor))
        d.addBoth(box.append)
        d.addBoth(lambda _: stop())

    reactor.callWhenRunning(go)
    reactor.run()
    if signals or not box:
        raise Interrupted(signals[0] if signals else signal.SIGINT)
    if isinstance(box[0], Failure):
        box[0].raiseException()
    return box[0]


def run(args: argparse.Namespace) -> int:
    """Load the scenario and the working directory, run, print the summary."""
    from juki_gateway.extras import require

    require("faker")  # the simulators' population: a missing 'sim' extra is one line
    from juki_gateway.simulators.runner import (
        check_topology,
        endpoints_from_configs,
        run_scenario,
    )
    from juki_gateway.simulators.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    where = config_path_from(args)
    configs = load_configs(where)
    config = configs[0]
    duration = scenario.short_duration if args.duration == "short" else args.duration
    check_topology(scenario, [ep.name for c in configs for ep in c.endpoints],
                   str(where if len(configs) > 1 else config.path))
    if args.prepare:
        import datetime as dt

        from juki_gateway.simulators.intermediate import prepare_store
        from juki_gateway.simulators.population import build_population

        population = build_population(scenario.population, seed=scenario.seed,
                                      as_of=scenario.as_of)
        added = prepare_store(config.store.url, population, dt.datetime.now(dt.UTC))
        print(f"prepared {scenario.name}: {added} 符号 added for {len(population)} residents")
        kiko = endpoints_from_configs(configs).kiko_store
        if kiko is not None:
            from juki_gateway.simulators.kiko_numbers import KikoNumbers

            numbers = KikoNumbers(kiko)
            try:
                known = numbers.register(population.residents)
            finally:
                numbers.close()
            print(f"prepared {scenario.name}: {known} 個人番号 recorded at 機構")
        return 0
    endpoints = endpoints_from_configs(configs, dict(args.endpoint))
    require_daemon(endpoints.metrics_urls, where if len(configs) > 1 else config.path)
    started: list[RunSummary] = []

    async def work(reactor: Any) -> Any:
        return await run_scenario(reactor, scenario, endpoints, duration=duration,
                                  progress=not args.no_progress, on_start=started.append)

    try:
        summary = run_on_reactor(work)
    except Interrupted as exc:
        if started:  # the summary so far, then exit 128 + the signal
            import time

            partial = started[0]
            partial.interrupted = str(exc)
            partial.finished = partial.finished or (partial.started and time.time())
            _report(partial, args.json)
        raise
    _report(summary, args.json)
    return 0 if summary.ok else 1


class DaemonNotRunning(JukiError):
    """No daemon listens where the configuration (or --endpoint) says its endpoints are."""

    code = "daemon_not_running"


def require_daemon(metrics_urls: Sequence[str], config: Path) -> None:
    """Refuse to start a run when a daemon does not answer ``/health`` on its metrics port (a
    stopped daemon; every daemon of a split working directory is asked): one line saying so,
    instead of failing deep inside the run. Any answer (200, 500, 503) means it runs. The probe
    is plain HTTP on the metrics listener, never through a proxy, not a connection to a
    mutual-TLS endpoint, which would count (and log) as a refused handshake. A daemon whose
    metrics port is not known (0 in its file, no ``--endpoint metrics=PORT``) is not asked."""
    import urllib.error
    import urllib.parse
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    silent = []
    for metrics in metrics_urls:
        url = metrics.rsplit("/", 1)[0] + "/health"
        if not urllib.parse.urlsplit(url).port:
            continue
        try:
            with opener.open(url, timeout=5.0):
                pass
        except urllib.error.HTTPError:
            pass  # it answered: unhealthy (500) or in maintenance (503), but running
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            silent.append(f"{url} ({getattr(reason, 'strerror', None) or reason})")
    if silent and len(silent) == len(metrics_urls):
        raise DaemonNotRunning(
            f"no daemon is running for {config}: nothing answers {silent[0]}; start it with "
            f"'juki-gateway serve --config {config}' (or give --endpoint metrics=PORT if its "
            "metrics listener is elsewhere)")
    if silent:
        raise DaemonNotRunning(
            f"not every daemon of {config} is running: nothing answers {', '.join(silent)}; "
            "start each with 'juki-gateway serve --config DIR/NAME/gateway.toml'")


def _report(summary: RunSummary, json_path: Path | None) -> None:
    from juki_gateway.simulators.runner import write_json

    print(summary.render(), flush=True)
    if json_path is not None:
        write_json(summary, json_path)
        print(f"summary written to {json_path}", flush=True)
