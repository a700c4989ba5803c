"""``juki-gateway consistency-check`` and ``juki-gateway jukinet-node``.

``consistency-check --peer prefecture|kiko`` streams the municipal CS's whole 本人確認情報 file to
its prefecture or to 機構 over the CS's mutual-TLS identity and prints the differences the peer
reports (missing on either side, differing items). Exit status: 0 identical, 3 differences
found. The CS is described either by ``--config gateway.toml`` (its municipal-cs endpoint,
store and PKI; the peer endpoint of that role) or by ``--node NODE.json`` (a Juki-net node
configuration as the node runner takes). The tool never sends the CS's outbox.

``jukinet-node NODE.json`` runs one Juki-net node (see :mod:`juki_gateway.gateway.jukinet.run`).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from juki_gateway.errors import JukiError, UsageError
from juki_gateway.workdir import add_config_argument, config_path_from

EXIT_DIFFERENCES = 3


class CheckFailed(JukiError):
    """The consistency check could not run to its end."""

    code = "consistency_check_failed"
    wire_code = 5112


def register(sub: Any) -> None:
    """Add the Juki-net sub-commands."""
    p: argparse.ArgumentParser = sub.add_parser(
        "consistency-check", help="compare the CS's 本人確認情報 file with the prefecture's or 機構's")
    add_config_argument(p)
    p.add_argument("--peer", choices=("prefecture", "kiko"), required=True,
                   help="whose file to compare the CS's with")
    p.add_argument("--node", type=Path, default=None, help="a Juki-net node JSON instead of --config")
    p.add_argument("--peer-host", default=None, help="the peer's host (default: as configured)")
    p.add_argument("--peer-port", type=int, default=None,
                   help="the peer's port (default: as configured)")
    p.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    p.add_argument("--report-rss", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=run_check)
    n: argparse.ArgumentParser = sub.add_parser("jukinet-node", help="run one Juki-net node")
    n.add_argument("node", type=Path, help="the node's JSON description")
    n.add_argument("--port", type=int, default=None, help="listen here (default: as described)")
    n.add_argument("--peer", action="append", default=[], metavar="NAME=PORT",
                   help="where a peer listens, if not as described; repeatable")
    n.set_defaults(func=run_node)


def run_node(args: argparse.Namespace) -> int:
    """Run a node until stopped."""
    from juki_gateway.gateway.jukinet.run import main

    argv = [str(args.node)] + (["--port", str(args.port)] if args.port is not None else [])
    return main(argv + [f"--peer={p}" for p in args.peer])


def _from_gateway_toml(path: Path, peer_role: str) -> Any:
    from juki_gateway.gateway.config import load_config
    from juki_gateway.gateway.jukinet.node import NodeConfig, PeerAddress

    config = load_config(path)
    cs = next((e for e in config.endpoints if e.role == "municipal-cs"), None)
    peer = next((e for e in config.endpoints if e.role == peer_role), None)
    if cs is None or peer is None:
        raise UsageError(f"{path}: needs a municipal-cs endpoint and a {peer_role} endpoint")
    return NodeConfig(
        node_id=cs.name, role=cs.role, org=cs.org, store_url=config.store.url, cert=cs.cert,
        key=cs.key, ca=config.ca, crl=config.crl, port=None,
        peers=(PeerAddress(peer.name, peer.role, peer.org, peer.host, peer.port),),
    )


def run_check(args: argparse.Namespace) -> int:
    """Connect, stream, print the report."""
    from twisted.internet import reactor, task

    from juki_gateway.gateway.jukinet.node import JukinetNode, PeerAddress
    from juki_gateway.gateway.jukinet.services import consistency_check
    from juki_gateway.gateway.jukinet.topology import config_from_json

    if args.node is not None:
        try:
            cfg = config_from_json(args.node.read_text(), str(args.node))
        except FileNotFoundError:
            raise UsageError(f"no node configuration at {args.node}") from None
    else:
        cfg = _from_gateway_toml(config_path_from(args), args.peer)
    if cfg.role != "municipal-cs":
        raise UsageError(f"the consistency check runs from a municipal CS, not {cfg.role}")
    peer = next((p for p in cfg.peers if p.role == args.peer), None)
    if peer is None:
        raise UsageError(f"{cfg.node_id} has no link to a {args.peer}")
    peer = PeerAddress(peer.node_id, peer.role, peer.org, args.peer_host or peer.host,
                       args.peer_port or peer.port)
    cfg = replace(cfg, port=None, peers=(peer,), send_outbox=False)
    node = JukinetNode(cfg, reactor)
    outcome: dict[str, Any] = {}

    async def go() -> None:
        node.startService()
        await node.ready
        node.connect()
        waited = 0.0
        while node.links[peer.node_id].proto is None:
            if waited > 15:
                raise CheckFailed(f"cannot reach {peer.node_id} at {peer.host}:{peer.port}")
            await task.deferLater(reactor, 0.05, lambda: None)
            waited += 0.05
        report = await consistency_check(node, peer.node_id).addTimeout(args.timeout, reactor)
        outcome["report"] = report

    def finished(result: Any) -> None:
        if hasattr(result, "value"):
            outcome["error"] = result.value
        d = node.stopService()
        d.addBoth(lambda _: reactor.stop())

    from twisted.internet.defer import Deferred

    reactor.callWhenRunning(lambda: Deferred.fromCoroutine(go()).addBoth(finished))
    reactor.run()
    if args.report_rss:
        from juki_gateway.gateway.jukinet.run import peak_rss_kb

        print(f"PEAK_RSS_KB {peak_rss_kb()}")
    err = outcome.get("error")
    if err is not None:
        if isinstance(err, JukiError):
            raise err
        raise CheckFailed(f"{type(err).__name__}: {err}")
    report = outcome["report"]
    print(report.format())
    sys.stdout.flush()
    return EXIT_DIFFERENCES if report.differences else 0
