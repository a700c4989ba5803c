"""Juki-net nodes hosted by the daemon: ``juki-gateway serve`` runs the CS → prefecture → 機構 chain.

For every municipal-cs, prefecture and kiko endpoint of ``gateway.toml`` (unless ``[jukinet]
host = false``) the daemon builds one :class:`~juki_gateway.gateway.jukinet.node.JukinetNode`
with its own store (``[jukinet.<endpoint>] store_url``, by default one SQLite file per node in
the working directory) and serves the endpoint with it:

* **inbound**: the gateway's own listener (its ``MutualTLSServerCreator``, authorizer, handshake
  log, CRL reload, handshake/idle timeouts and SIGTERM drain) hands each authenticated connection
  to a :class:`NodeSession`, which binds a ``JukinetProtocol`` (frames counted per endpoint) to
  the connection's TLS transport.
  The node writes ACKs when its store has committed, not per read, so the session returns no
  bytes itself. Bytes that arrive before the node's store is open wait in the session.
* **outbound**: each ``[[links]]`` entry whose local end is a hosted node and whose peer has a
  Juki-net role is driven by that node (its outbox, 更新順番号, resends). Every link connection is
  wrapped by :class:`LoggedLinkProtocol`: a handshake-log line (endpoint ``LOCAL->PEER``) when
  the first frame arrives or the connection is refused, the gateway's active-connection gauge,
  and the :class:`LinkStatus` that ``/health`` and ``juki_gateway_link_up`` read.
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
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IDelayedCall, IHandshakeListener
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from zope.interface import implementer

from juki_gateway.certs.identity import PeerIdentity
from juki_gateway.codecs.messages import MessageType
from juki_gateway.errors import UsageError
from juki_gateway.gateway.config import (
    JUKINET_ROLES,
    EndpointConfig,
    GatewayConfig,
    JukinetSettings,
    LinkConfig,
)
from juki_gateway.gateway.flow import ReadGate
from juki_gateway.gateway.handshake_log import HandshakeLog
from juki_gateway.gateway.jukinet.metrics import JukinetMetrics
from juki_gateway.gateway.jukinet.node import JukinetNode, NodeConfig, PeerAddress
from juki_gateway.gateway.jukinet.outbound import OutLink
from juki_gateway.gateway.jukinet.protocol import JukinetProtocol
from juki_gateway.gateway.links import LinkHandshake
from juki_gateway.gateway.metrics import GatewayMetrics, MetricsFrameObserver
from juki_gateway.gateway.tls import PeerCertificateCache

log = Logger(namespace="juki_gateway.jukinet.hosting")


# -- inbound ---------------------------------------------------------------------------------


class NodeSession:
    """One authenticated connection to a hosted endpoint, handed to the node's protocol."""

    closing = False  # the node closes the transport itself when it must

    def __init__(self, host: JukinetHost, node: JukinetNode, peer: PeerIdentity,
                 observer: MetricsFrameObserver, conn_id: str) -> None:
        self._host = host
        self._node = node
        self.proto = JukinetProtocol(node, observer=observer, conn_id=conn_id)
        self.proto.peer_id, self.proto.peer_role, self.proto.peer_org = (
            peer.name, peer.role, peer.org)
        self._early: list[bytes] = []
        self._active = False

    def attach(self, transport: Any, gate: ReadGate) -> None:
        """Bind the protocol to the connection's TLS transport and read gate; start once the
        node is ready."""
        self.proto.transport = transport
        self.proto.attach_gate(gate)
        if self._node.committer is not None:
            self.activate()
        else:
            self._host.waiting.setdefault(self._node.node_id, []).append(self)

    def activate(self) -> None:
        """The node's store is open: start the protocol and feed it the bytes that waited."""
        if self.proto.closed:
            return
        self._active = True
        self.proto.start()
        early, self._early = self._early, []
        for data in early:
            self.proto.dataReceived(data)

    def resume_reading(self) -> None:
        """The peer reads our replies again: handle the frames buffered meanwhile."""
        if self._active:
            self.proto.resume("write")

    def receive_data(self, data: bytes) -> bytes:
        """Feed the node's protocol; its answers are written when the node has committed."""
        if self._active:
            self.proto.dataReceived(data)
        else:
            self._early.append(data)
        return b""

    def connection_closed(self) -> None:
        """The connection is gone: the node forgets it (its sequencer waits for a new one)."""
        if self._active:
            self.proto.connectionLost(None)
        else:
            self.proto.closed = True


# -- outbound --------------------------------------------------------------------------------


@dataclass
class LinkStatus:
    """The state of one node-driven outbound link, as /health and the link gauge see it."""

    name: str
    local: str
    peer: str
    established: bool = False
    held: bool = False

    def link_up(self) -> bool:
        """Whether the link holds a connection on which the peer has answered."""
        return self.established and not self.held


@dataclass
class LinkLogContext:
    """What every connection of one node-driven link shares."""

    status: LinkStatus
    node: JukinetNode
    clock: Any
    handshake_log: HandshakeLog
    metrics: GatewayMetrics
    cache: PeerCertificateCache
    handshake_timeout: float
    ping_interval: float


@implementer(IHandshakeListener)
class LoggedLinkProtocol(ProtocolWrapper):
    """Wraps a node's outbound ``JukinetProtocol``: handshake log, active gauge, link status.

    Under TLS 1.3 a server refuses our certificate only after our side completed the handshake,
    so the wrapper sends a PING at once and logs ``ok`` when the first frame comes back; then it
    sends a PING every ``ping_interval`` seconds (the link's liveness probe; 0: none).
    """

    def __init__(self, factory: LoggedLinkFactory, wrapped: Protocol) -> None:
        super().__init__(factory, wrapped)
        self.ctx = factory.ctx
        self.handshake = LinkHandshake(
            clock=self.ctx.clock, handshake_log=self.ctx.handshake_log, metrics=self.ctx.metrics,
            cache=self.ctx.cache, label=f"{self.ctx.status.local}->{self.ctx.status.peer}",
            timeout=self.ctx.handshake_timeout)
        self.state = self.handshake.state
        self._counted = False
        self._ping: IDelayedCall | None = None

    def connectionMade(self) -> None:
        self.handshake.connected(self.transport)
        super().connectionMade()

    def handshakeCompleted(self) -> None:
        assert self.transport is not None
        self.handshake.completed(self.transport, self.ctx.status.peer)
        inner = self.wrappedProtocol
        if IHandshakeListener.providedBy(inner):
            inner.handshakeCompleted()
        self._send_ping(schedule=False)

    def _send_ping(self, schedule: bool = True) -> None:
        inner = self.wrappedProtocol
        if isinstance(inner, JukinetProtocol):
            inner.send_frame(MessageType.PING)
        if schedule and self.ctx.ping_interval > 0:
            self._ping = self.ctx.clock.callLater(self.ctx.ping_interval, self._send_ping)

    def dataReceived(self, data: bytes) -> None:
        if not self.handshake.logged:
            self.handshake.established()
            self.ctx.status.established = True
            self.ctx.metrics.active.labels(self.handshake.label, self.handshake.peer_role).inc()
            self._counted = True
            if self.ctx.ping_interval > 0:
                self._ping = self.ctx.clock.callLater(self.ctx.ping_interval, self._send_ping)
        super().dataReceived(data)

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        if self._ping is not None and self._ping.active():
            self._ping.cancel()
        self.handshake.lost(reason)
        if self._counted:
            self.ctx.metrics.active.labels(self.handshake.label, self.handshake.peer_role).dec()
            self._counted = False
        self.ctx.status.established = False
        super().connectionLost(reason)


class LoggedLinkFactory(WrappingFactory):
    """Wraps the node's client factory of one link in :class:`LoggedLinkProtocol`."""

    noisy = False
    protocol = LoggedLinkProtocol  # type: ignore[assignment]

    def __init__(self, wrapped: Factory, ctx: LinkLogContext) -> None:
        super().__init__(wrapped)
        self.ctx = ctx

    def buildProtocol(self, addr: Any) -> LoggedLinkProtocol:
        return LoggedLinkProtocol(self, self.wrappedFactory.buildProtocol(addr))


# -- the host ---------------------------------------------------------------------------------


@dataclass
class JukinetHost:
    """The Juki-net nodes of one daemon, built from its configuration (see the module docstring).

    Nodes are made on demand, when the gateway asks for an endpoint's session factory, so a
    daemon whose endpoints use other sessions (test fixtures) opens no node stores.
    """

    config: GatewayConfig
    reactor: Any
    handshake_log: HandshakeLog
    metrics: GatewayMetrics
    cache: PeerCertificateCache
    nodes: dict[str, JukinetNode] = field(default_factory=dict)
    status: dict[str, LinkStatus] = field(default_factory=dict)
    waiting: dict[str, list[NodeSession]] = field(default_factory=dict)
    jukinet_metrics: JukinetMetrics | None = None

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

    def session_factory(self, ep: EndpointConfig) -> Any:
        """The gateway session factory of a hosted endpoint (builds its node)."""
        node = self.nodes.get(ep.name) or self._make_node(ep)
        observer = MetricsFrameObserver(self.metrics, ep.name)

        def make(conn_id: str, peer: PeerIdentity) -> NodeSession:
            return NodeSession(self, node, peer, observer, conn_id)

        return make

    def _make_node(self, ep: EndpointConfig) -> JukinetNode:
        settings: JukinetSettings = self.config.jukinet[ep.name]
        links = [lk for lk in self.config.links if lk.local == ep.name
                 and self._peer_role_org(lk)[0] in JUKINET_ROLES]
        peers = tuple(PeerAddress(lk.peer, *self._peer_role_org(lk), lk.host, lk.port)
                      for lk in links)
        cfg = NodeConfig(
            node_id=ep.name, role=ep.role, org=ep.org, store_url=settings.store_url,
            cert=ep.cert, key=ep.key, ca=self.config.ca, crl=self.config.crl, host=ep.host,
            port=None, allow=ep.allow, peers=peers, window=settings.window,
            commit_delay=settings.commit_delay, commit_records=settings.commit_records,
            retry_initial=min((lk.backoff_initial for lk in links), default=1.0),
            retry_max=min((lk.backoff_max for lk in links), default=60.0),
        )
        if self.jukinet_metrics is None:
            self.jukinet_metrics = JukinetMetrics(self.metrics.registry)
        node = JukinetNode(cfg, self.reactor, metrics=self.jukinet_metrics,
                           wrap_client_factory=self._wrapper(ep.name))
        self.nodes[ep.name] = node
        for lk in links:
            self.status[lk.name] = LinkStatus(lk.name, lk.local, lk.peer)
        return node

    def _wrapper(self, local: str) -> Any:
        def wrap(link: OutLink, factory: Factory) -> Factory:
            status = next(s for s in self.status.values()
                          if s.local == local and s.peer == link.peer.node_id)
            ping = next(lk.ping_interval for lk in self.config.links if lk.name == status.name)
            ctx = LinkLogContext(status, self.nodes[local], self.reactor, self.handshake_log,
                                 self.metrics, self.cache, self.config.timeouts.handshake, ping)
            return LoggedLinkFactory(factory, ctx)

        return wrap

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> Deferred[Any]:
        """Open every node's store; fires when all are ready (errback: the first failure)."""
        ds = []
        for name, node in self.nodes.items():
            node.startService()
            node.ready.addCallback(self._ready, name)
            ds.append(node.ready)
        return DeferredList(ds, fireOnOneErrback=True, consumeErrors=True)

    def _ready(self, _: object, name: str) -> None:
        for session in self.waiting.pop(name, []):
            session.activate()

    def connect(self, bound: Mapping[str, int]) -> None:
        """Start the node-driven links; a link to a local endpoint on port 0 uses its bound port."""
        for name, node in self.nodes.items():
            ports = {lk.peer: bound[lk.peer] for lk in self.config.links
                     if lk.local == name and lk.port == 0 and lk.peer in bound}
            node.connect(ports)

    def stop(self) -> Deferred[Any]:
        """Stop every node: links closed, pending commits flushed, store threads stopped."""
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
        log.info("link {link} held: connection dropped, outbox queues", link=name)
        if svc is not None:
            return svc.stopService()  # type: ignore[no-any-return]
        return succeed(None)

    def release(self, name: str) -> None:
        """Restore link ``name``: reconnect, then resend from the first unacknowledged number."""
        node, out, status = self._out(name)
        status.held = False
        node.start_client(out)
        log.info("link {link} released: reconnecting", link=name)
