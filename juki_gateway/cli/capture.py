"""``juki-gateway capture SCENARIO --out FILE`` and ``juki-gateway replay FILE``.

capture runs a scenario like ``simulate`` and records every frame its simulators exchanged
(with decoded records) as JSON lines; replay sends the recorded frames again, connection by
connection, to a target (a new build) and reports every answer that differs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from juki_gateway.cli.simulate import parse_endpoint, run_on_reactor
from juki_gateway.workdir import add_config_argument, config_path_from


def register(sub: Any) -> None:
    """Add ``capture`` and ``replay``."""
    p: argparse.ArgumentParser = sub.add_parser(
        "capture", help="run a scenario and record the frames it exchanged (JSON lines)")
    p.add_argument("scenario", help="scenario name (quickstart, bad-peers, …) or TOML path")
    p.add_argument("--out", type=Path, required=True, metavar="FILE",
                   help="the capture file to write (JSON lines)")
    add_config_argument(p)
    p.add_argument("--duration", type=float, metavar="SECONDS",
                   help="override the scenario's duration")
    p.add_argument("--endpoint", type=parse_endpoint, action="append", default=[],
                   metavar="NAME=PORT", help="where an endpoint listens, if not as configured")
    p.set_defaults(func=run_capture)

    r: argparse.ArgumentParser = sub.add_parser(
        "replay", help="replay a capture against a target and report answers that differ")
    r.add_argument("file", type=Path, help="a capture written by 'capture --out'")
    r.add_argument("--target", default="127.0.0.1", metavar="HOST",
                   help="host of the target daemon (ports from --config / --endpoint)")
    add_config_argument(r)
    r.add_argument("--endpoint", type=parse_endpoint, action="append", default=[],
                   metavar="NAME=PORT", help="where an endpoint listens, if not as configured")
    r.set_defaults(func=run_replay)


def run_capture(args: argparse.Namespace) -> int:
    """Run the scenario with a recorder attached."""
    from juki_gateway.extras import require

    require("faker")  # the simulators' population: a missing 'sim' extra is one line
    from juki_gateway.gateway.config import load_config
    from juki_gateway.simulators import client
    from juki_gateway.simulators.capture import Recorder
    from juki_gateway.simulators.runner import endpoints_from_config, run_scenario
    from juki_gateway.simulators.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    config = load_config(config_path_from(args))
    endpoints = endpoints_from_config(config, dict(args.endpoint))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as stream:
        recorder = Recorder(stream)
        client.set_recorder(recorder)

        async def work(reactor: Any) -> Any:
            return await run_scenario(reactor, scenario, endpoints, duration=args.duration,
                                      progress=False)

        try:
            summary = run_on_reactor(work)
        finally:
            client.set_recorder(None)
    print(summary.render())
    print(f"captured {recorder.events} events to {args.out}")
    return 0


def run_replay(args: argparse.Namespace) -> int:
    """Replay the capture; exit 1 when any answer differs."""
    from juki_gateway.gateway.config import load_config
    from juki_gateway.simulators.capture import load_capture, replay

    events = load_capture(args.file)
    config = load_config(config_path_from(args))
    ports = {ep.name: ep.port for ep in config.endpoints}
    ports.update(dict(args.endpoint))

    async def work(reactor: Any) -> Any:
        return await replay(reactor, events, args.target, ports, config.pki_dir)

    report = run_on_reactor(work)
    print(report.render())
    return 1 if report.differences else 0
