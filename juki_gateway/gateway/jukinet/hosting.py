"""Juki-net nodes hosted by the daemon: ``juki-gateway serve`` runs the CS → prefecture → 機構 chain.

For every municipal-cs, prefecture and kiko endpoint of ``gateway.toml`` (unless ``[jukinet]
host = false``) the daemon builds one :class:`~juki_gateway.gateway.jukinet.node.JukinetNode`
with its own store (``[jukinet.<endpoint>] store_url``, by default one SQLite file per node in
the working directory) and serves the endpoint with it:

* **inbound**: the gateway's own listener (its ``MutualTLSServerCreator``, authorizer, handshake
  log, CRL reload, handshake/idle timeouts and SIGTERM drain) runs each authenticated
  connection's :class:`~juki_gateway.gateway.connection.ChannelProtocol` with a
  :class:`~juki_gateway.gateway.jukinet.connection.NodeConnection` of the node as its
  application (frames counted per endpoint). The node writes ACKs when its store has committed,
  not per read. A connection that arrives before the node's store is open waits, paused.
* **outbound**: each ``[[links]]`` entry whose local end is a hosted node and whose peer has a
  Juki-net role is driven by that node (its outbox, 更新順番号, resends), on the same protocol's
  client side, reporting to the daemon (:class:`~juki_gateway.gateway.connection.LinkReporting`):
  a handshake-log line (endpoint ``LOCAL->PEER``) when the first frame arrives or the
  connection is refused, the gateway's active-connection gauge, liveness PINGs, and the
  :class:`~juki_gateway.gateway.connection.LinkStatus` that ``/health`` and
  ``juki_gateway_link_up`` read.
* **link control**: :meth:`JukinetHost.hold` and :meth:`JukinetHost.release` cut and restore one
  outbound link (``juki-gateway link hold|release``, see :mod:`juki_gateway.gateway.linkcontrol`);
  while held, the node queues in its outbox and resends from the first unacknowledged number on
  release.

A link whose configured port is 0 and whose peer is an endpoint of the same file connects to the
port that endpoint bound (tests run everything on ephemeral ports).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from juki_gateway.certs.identity import PeerIdentity
from juki_gateway.errors import UsageError
from juki_gateway.gateway.config import (
    JUKINET_ROLES,
    EndpointConfig,
    GatewayConfig,
    JukinetSettings,
    LinkConfig,
)
from juki_gateway.gateway.connection import AppFactory, LinkReporting, LinkStatus
from juki_gateway.gateway.handshake_log import HandshakeLog
from juki_gateway.gateway.jukinet.connection import NodeConnection
from juki_gateway.gateway.jukinet.metrics import JukinetMetrics
from juki_gateway.gateway.jukinet.node import JukinetNode, NodeConfig, PeerAddress
from juki_gateway.gateway.jukinet.outbound import OutLink
from juki_gateway.gateway.metrics import GatewayMetrics
from juki_gateway.gateway.tls import PeerCertificateCache
from juki_gateway.protocols.jukinet.routing import Role

log = Logger(namespace="juki_gateway.jukinet.hosting")


# -- the host ---------------------------------------------------------------------------------


@dataclass(eq=False)
class JukinetHost(Service):
    """The Juki-net nodes of one daemon, built from its configuration (see the module docstring).

    Nodes are made on demand, when the gateway asks for an endpoint's session factory, so a
    daemon whose endpoints use other sessions (test fixtures) opens no node stores.
    """

    config: GatewayConfig
    reactor: Any
    handshake_log: HandshakeLog
    metrics: GatewayMetrics
    cache: PeerCertificateCache
    name = "jukinet"
    nodes: dict[str, JukinetNode] = field(default_factory=dict)
    status: dict[str, LinkStatus] = field(default_factory=dict)
    #: a node's full configuration, when given, instead of one derived from the file (a node
    #: run on its own, gateway/jukinet/standalone.py)
    node_configs: dict[str, NodeConfig] = field(default_factory=dict)
    jukinet_metrics: JukinetMetrics | None = None
    #: the holders of each node whose awaiting-fetch series exist (kept at 0 once fetched)
    _awaiting_seen: dict[str, set[str]] = field(default_factory=dict)
    #: fires once every node's store is open (set when started)
    ready: Deferred[Any] = field(default_factory=lambda: succeed(None))

    def hosts(self, ep: EndpointConfig) -> bool:
        """Whether ``ep`` is served by a hosted node."""
        return self.config.host_jukinet and ep.name in self.config.jukinet

    def drives(self, link: LinkConfig) -> bool:
        """Whether ``link`` is an outbound link of a hosted node (not a generic gateway link)."""
        return link.local in self.nodes and self._peer_role_org(link)[0] in JUKINET_ROLES

    def _peer_role_org(self, link: LinkConfig) -> tuple[str, str]:
        local = {e.name: e for e in self.config.endpoints}
        ep = local.get(link.peer)
        role = link.peer_role or (ep.role if ep is not None else None)
        org = link.peer_org or (ep.org if ep is not None else None)
        if role is None or org is None:
            raise UsageError(f"{self.config.path}: link {link.name}: peer {link.peer!r} is not an "
                             "endpoint of this file; give its peer_role and peer_org")
        return role, org

    def app_factory(self, ep: EndpointConfig) -> AppFactory:
        """The connection application of a hosted endpoint (builds its node)."""
        node = self.nodes.get(ep.name) or self._make_node(ep)

        def make(conn_id: str, peer: PeerIdentity) -> NodeConnection:
            return NodeConnection(node, peer, conn_id)

        return make

    def _make_node(self, ep: EndpointConfig) -> JukinetNode:
        settings: JukinetSettings = self.config.jukinet[ep.name]
        links = [lk for lk in self.config.links if lk.local == ep.name
                 and self._peer_role_org(lk)[0] in JUKINET_ROLES]
        peers = tuple(PeerAddress(lk.peer, *self._peer_role_org(lk), lk.host, lk.port)
                      for lk in links)
        cfg = self.node_configs.get(ep.name) or NodeConfig(
            node_id=ep.name, role=ep.role, org=ep.org, store_url=settings.store_url,
            cert=ep.cert, key=ep.key, ca=self.config.ca, crl=self.config.crl, host=ep.host,
            port=None, allow=ep.allow, peers=peers, window=settings.window,
            commit_delay=settings.commit_delay, commit_records=settings.commit_records,
            search_limit=settings.search_limit,
            shared_store=settings.shared_store, instance=settings.instance,
            lease_ttl=settings.lease_ttl, link_poll=settings.link_poll,
            retry_initial=min((lk.backoff_initial for lk in links), default=1.0),
            retry_max=min((lk.backoff_max for lk in links), default=60.0),
        )
        if self.jukinet_metrics is None:
            self.jukinet_metrics = JukinetMetrics(self.metrics.registry)
        node = JukinetNode(cfg, self.reactor, metrics=self.jukinet_metrics,
                           link_reporting=partial(self._reporting, ep.name))
        self.nodes[ep.name] = node
        for lk in links:
            self.status[lk.name] = LinkStatus(lk.name, lk.local, lk.peer,
                                              standby=partial(_standby, node, lk.peer))
        return node

    def _reporting(self, local: str, link: OutLink) -> LinkReporting:
        """Where a node-driven link reports: this daemon's log, metrics and link status."""
        status = next(s for s in self.status.values()
                      if s.local == local and s.peer == link.peer.node_id)
        ping = next(lk.ping_interval for lk in self.config.links if lk.name == status.name)
        return LinkReporting(self.handshake_log, self.metrics, self.cache,
                             self.config.timeouts.handshake, ping, status)

    # -- what waits to be fetched ----------------------------------------------------------
    def refresh_awaiting(self) -> None:
        """Read, on each node's reader thread, the 転入通知 waiting for a peer that fetches
        them, into ``juki_gateway_jukinet_awaiting_fetch`` and its oldest age (a series for
        each CS's existing system from the start, 0 while nothing waits)."""
        m = self.jukinet_metrics
        if m is None:
            return
        for node in self.nodes.values():
            if node.engine is None:
                continue
            d = node.read(partial(_awaiting, node))
            d.addCallbacks(partial(self._set_awaiting, m, node),
                           partial(_awaiting_unreadable, node.node_id))

    def _set_awaiting(self, m: JukinetMetrics, node: JukinetNode,
                      found: dict[str, tuple[int, float]]) -> None:
        seen = self._awaiting_seen.setdefault(node.node_id, set())
        for holder in seen - set(found):
            found[holder] = (0, 0.0)  # fetched since: the series stays, at 0
        for holder, (count, age) in found.items():
            seen.add(holder)
            m.awaiting_fetch.labels(node.node_id, holder).set(count)
            m.awaiting_fetch_age.labels(node.node_id, holder).set(age)

    # -- lifecycle ------------------------------------------------------------------------
    def startService(self) -> None:
        """Open every node's store; ``ready`` fires when all are (errback: the first failure)."""
        super().startService()
        ds = []
        for node in self.nodes.values():
            node.startService()
            ds.append(node.ready)
        self.ready = DeferredList(ds, fireOnOneErrback=True, consumeErrors=True)

    def listening(self, bound: Mapping[str, int]) -> None:
        """The listeners are bound: each hosted node learns its endpoint's port."""
        for name, node in self.nodes.items():
            node.endpoint_port = bound.get(name)

    def connect(self, bound: Mapping[str, int]) -> None:
        """Start the node-driven links; a link to a local endpoint on port 0 uses its bound port."""
        for name, node in self.nodes.items():
            ports = {lk.peer: bound[lk.peer] for lk in self.config.links
                     if lk.local == name and lk.port == 0 and lk.peer in bound}
            node.connect(ports)

    def stopService(self) -> Deferred[Any]:
        """Stop every node: links closed, pending commits flushed, store threads stopped."""
        super().stopService()
        return DeferredList([node.stopService() for node in self.nodes.values() if node.running])

    # -- link control ---------------------------------------------------------------------
    def _out(self, name: str) -> tuple[JukinetNode, OutLink, LinkStatus]:
        status = self.status.get(name)
        if status is None:
            raise UsageError(f"no Juki-net link named {name!r} (known: {sorted(self.status)})")
        node = self.nodes[status.local]
        return node, node.links[status.peer], status

    def hold(self, name: str) -> Deferred[None]:
        """Cut link ``name``: drop its connection and stop reconnecting (the outbox queues)."""
        _node, out, status = self._out(name)
        status.held = True
        svc, out.service = out.service, None
        if out.proto is not None:
            out.proto.abort()
        log.info("link {link} held: connection dropped, outbox queues", event="link_held", link=name)
        if svc is not None:
            return svc.stopService()
        return succeed(None)

    def release(self, name: str) -> None:
        """Restore link ``name``: reconnect, then resend from the first unacknowledged number."""
        node, out, status = self._out(name)
        status.held = False
        node.start_client(out)
        log.info("link {link} released: reconnecting", event="link_released", link=name)


def _standby(node: JukinetNode, peer: str) -> bool:
    """Whether another instance of ``node`` (shared store) holds the lease of its link to
    ``peer``: this one is the link's standby."""
    link = node.links.get(peer)
    return node.shared is not None and link is not None and not link.active


def _awaiting_unreadable(node_id: str, failure: Failure) -> None:
    log.warn("{node}: cannot read what waits to be fetched: {error}",
             event="awaiting_fetch_unreadable", node=node_id, error=type(failure.value).__name__)


def _awaiting(node: JukinetNode) -> dict[str, tuple[int, float]]:
    """(count, age in seconds of the oldest) per holder of ``node``'s fetched links."""
    from juki_gateway.registry_store import jukinet as st

    now = node.now()
    with node.engine.connect() as conn:
        found = st.awaiting_fetch(conn)
    out: dict[str, tuple[int, float]] = {}
    prefix = f"{node.node_id}>"
    for link, (count, oldest) in found.items():
        if not link.startswith(prefix):
            continue
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=now.tzinfo)
        out[link[len(prefix):]] = (count, max((now - oldest).total_seconds(), 0.0)
                                   if oldest is not None else 0.0)
    if node.role is Role.MUNICIPAL_CS:
        out.setdefault("kizon-juki", (0, 0.0))
    return out

