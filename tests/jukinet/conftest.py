"""Shared helpers of the Juki-net end-to-end tests: start a chain of nodes over real mTLS."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer, task

from juki_gateway.gateway.jukinet.node import JukinetNode, NodeConfig
from juki_gateway.gateway.jukinet.standalone import hosted_node, node_gateway
from juki_gateway.gateway.jukinet.topology import make_chain
from juki_gateway.gateway.service import GatewayService

NOW = dt.datetime.now(dt.UTC).replace(tzinfo=None)


@defer.inlineCallbacks
def wait_for(reactor: Any, pred: Callable[[], Any], timeout: float, what: str) -> Generator[Any, Any, None]:
    """Poll ``pred`` (may return a Deferred) every 50 ms until true; fail after ``timeout``."""
    deadline = reactor.seconds() + timeout
    while True:
        value = yield defer.maybeDeferred(pred)
        if value:
            return
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        yield task.deferLater(reactor, 0.05, lambda: None)


#: the one-endpoint gateway serving each started node that has an endpoint
GATEWAYS: dict[JukinetNode, GatewayService] = {}


def serve_node(reactor: Any, cfg: NodeConfig) -> JukinetNode:
    """A node, served by a one-endpoint gateway when it has an endpoint (not started)."""
    if cfg.port is None:
        return JukinetNode(cfg, reactor)
    gateway = node_gateway(cfg, reactor, cfg.ca.parent.parent)
    node = hosted_node(gateway)
    GATEWAYS[node] = gateway
    return node


@defer.inlineCallbacks
def start_nodes(reactor: Any, cfgs: dict[str, NodeConfig], names: tuple[str, ...] | None = None,
                ports: dict[str, int] | None = None) -> Generator[Any, Any, dict[str, JukinetNode]]:
    """Start nodes (each endpoint served by its own gateway), wait until they listen, then
    connect their links."""
    nodes = {n: serve_node(reactor, cfgs[n]) for n in (names or tuple(cfgs))}
    waits = []
    for node in nodes.values():
        gateway = GATEWAYS.get(node)
        if gateway is None:
            node.startService()
            waits.append(node.ready)
        else:
            gateway.startService()
            waits.append(gateway.whenListening())
    try:
        yield defer.gatherResults(waits, consumeErrors=True)
    except BaseException:
        yield stop_nodes(nodes)
        raise
    all_ports = dict(ports or {})
    all_ports.update({name: n.bound_port for name, n in nodes.items() if n.endpoint_port is not None})
    for node in nodes.values():
        node.connect(all_ports)
    return nodes


def stop_node(node: JukinetNode) -> defer.Deferred[Any]:
    """Stop a node and the gateway serving it (listener, drain, links, store threads)."""
    gateway = GATEWAYS.pop(node, None)
    if gateway is not None:
        return defer.maybeDeferred(gateway.stopService)
    return node.stopService()


@defer.inlineCallbacks
def stop_nodes(nodes: dict[str, JukinetNode]) -> Generator[Any, Any, None]:
    """Stop every node (links, listeners, store threads)."""
    yield defer.gatherResults([stop_node(n) for n in nodes.values()], consumeErrors=True)


@pytest.fixture
def chain_cfgs(tmp_path: Path) -> dict[str, NodeConfig]:
    """Certificates and configurations of kizon → CS → prefecture → 機構 in a temp dir."""
    return make_chain(tmp_path, NOW)


def node_read(node: JukinetNode, fn: Callable[[Any], Any]) -> defer.Deferred[Any]:
    """Run ``fn(conn)`` on the node's reader thread in a fresh connection."""
    def run() -> Any:
        with node.engine.connect() as conn:
            return fn(conn)

    return node.read(run)
