"""One Juki-net node served by a one-endpoint gateway: what ``jukinet-node`` and the tests run.

A node never listens itself. :func:`node_gateway` builds the daemon's own service tree
(:class:`~juki_gateway.gateway.service.GatewayService`) for one :class:`NodeConfig`: one endpoint
(the node's name, role, organisation, certificate, allow-list and address), one outbound link
per peer, the node's store, and a handshake log and ``/metrics`` listener (on an ephemeral
loopback port) in ``workdir``. So a node run on its own takes the same inbound path as a node
hosted by ``juki-gateway serve``: mutual TLS, authorizer, handshake log, timeouts, per-peer cap,
backpressure, drain on stop.

The gateway is built with ``start_links=False``: its peers may listen on ports known only once
they run, so the caller connects the links with :meth:`JukinetHost.connect` when it knows them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from juki_gateway.gateway.config import (
    LOOPBACK,
    EndpointConfig,
    GatewayConfig,
    JukinetSettings,
    LinkConfig,
    ListenerConfig,
    RetentionSettings,
    StoreConfig,
    TimeoutConfig,
)
from juki_gateway.gateway.jukinet.node import JukinetNode, NodeConfig
from juki_gateway.gateway.service import GatewayService


def node_gateway_config(cfg: NodeConfig, workdir: Path) -> GatewayConfig:
    """The configuration of a gateway whose one endpoint is ``cfg``'s node."""
    if cfg.port is None:
        raise ValueError(f"{cfg.node_id} has no endpoint (port None): run it as a plain node")
    endpoint = EndpointConfig(name=cfg.node_id, role=cfg.role, org=cfg.org, host=cfg.host,
                              port=cfg.port, cert=cfg.cert, key=cfg.key, allow=cfg.allow)
    links = tuple(
        LinkConfig(name=f"{cfg.node_id}->{p.node_id}", local=cfg.node_id, peer=p.node_id,
                   host=p.host, port=p.port, ping_interval=0.0, backoff_initial=cfg.retry_initial,
                   backoff_max=cfg.retry_max, peer_role=p.role, peer_org=p.org)
        for p in cfg.peers)
    return GatewayConfig(
        path=workdir / f"{cfg.node_id}.json", workdir=workdir, ca=cfg.ca, crl=cfg.crl,
        handshake_log=workdir / f"{cfg.node_id}-handshakes.jsonl", endpoints=(endpoint,),
        links=links, metrics=ListenerConfig(LOOPBACK, 0), admin=ListenerConfig(LOOPBACK, 0),
        timeouts=TimeoutConfig(), store=StoreConfig(cfg.store_url), pki_dir=cfg.ca.parent,
        jukinet={cfg.node_id: JukinetSettings(cfg.store_url, cfg.window, cfg.commit_delay,
                                              cfg.commit_records, cfg.search_limit)},
        # a node run on its own (fault tests, benchmarks) purges nothing by itself: retention
        # is the daemon's, and 'juki-gateway retention run --db URL' reaches its store
        retention=RetentionSettings(enabled=False),
    )


def node_gateway(cfg: NodeConfig, reactor: Any, workdir: Path, **kwargs: Any) -> GatewayService:
    """A gateway serving ``cfg``'s node on its endpoint (links not started; see the module
    docstring). Its node is ``gateway.jukinet.nodes[cfg.node_id]``."""
    return GatewayService(node_gateway_config(cfg, workdir), reactor, start_links=False,
                          node_configs={cfg.node_id: cfg}, **kwargs)


def hosted_node(gateway: GatewayService) -> JukinetNode:
    """The one node of a gateway built by :func:`node_gateway`."""
    (node,) = gateway.jukinet.nodes.values()
    return node
