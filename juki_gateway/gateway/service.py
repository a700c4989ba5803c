"""The daemon as a Twisted service tree: ``makeService(config, reactor)``.

Tree::

    GatewayService (MultiService: handshake log, metrics, CRL watch, drain on stop)
    ├── JukinetHost: a Juki-net node per municipal-cs/prefecture/kiko endpoint (jukinet/hosting.py)
    ├── IntermediateHost: the intermediate server, when configured (intermediate/host.py)
    ├── ListenerService per endpoint (mutual TLS → ChannelProtocol → the endpoint's application)
    ├── ListenerService "admin": the intermediate server's operators (mutual TLS), when configured
    ├── ListenerService for /metrics (plain HTTP on loopback)
    ├── TimerService: CRL file watch and certificate-expiry gauges
    ├── RetentionHost: a retention job per store (registry, each node), JST-scheduled (retention.py)
    ├── LinkService per generic outbound link (reconnecting client, see gateway/links.py)
    └── TimerService: the operator's held links (gateway/linkcontrol.py), when nodes are hosted

The two hosts have one interface (``hosts(ep)``, ``app_factory(ep)``, ``ready``, start and
stop): an endpoint is served by the host that hosts it, else by the generic frame sessions. The
hosts start first (their stores open while the listeners bind) and stop last: stopping the
tree stops listening, then drains live connections (bounded by ``[timeouts] drain``), then
stops the hosts (pending commits flushed, stores closed). The retention jobs begin once the
daemon has started (every store open) and stop before the hosts.
:meth:`GatewayService.reload_crl` is what SIGHUP calls.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from twisted.application.internet import TimerService
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, FirstError, maybeDeferred, succeed
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IProtocolFactory
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Site

from juki_gateway.certs.identity import PeerIdentity
from juki_gateway.errors import JukiError
from juki_gateway.gateway.config import AllowRule, EndpointConfig, GatewayConfig
from juki_gateway.gateway.connection import (
    AppFactory,
    ChannelFactory,
    ConnectionTracker,
    EndpointContext,
)
from juki_gateway.gateway.handshake_log import HandshakeLog
from juki_gateway.gateway.jukinet.node import NodeConfig
from juki_gateway.gateway.metrics import GatewayMetrics, MetricsFrameObserver, metrics_resource
from juki_gateway.gateway.tls import (
    Authorizer,
    MutualTLSServerCreator,
    PeerCertificateCache,
    TLSConfigError,
    revoked_serials,
    wrap_server_factory,
)

log = Logger(namespace="juki_gateway.service")

CRL_POLL_SECONDS = 2.0
LINK_POLL_SECONDS = 0.25
#: How often the 転入通知 waiting to be fetched are counted (a read on each node's reader thread)
AWAITING_POLL_SECONDS = 15.0
EXPIRY_REFRESH_SECONDS = 3600.0


class ListenError(JukiError):
    """A listener could not bind its address (in use, not ours, no permission …)."""

    code = "listen"


def startup_error(failure: Failure) -> BaseException:
    """What made start-up fail: the first failure inside the DeferredLists that waited on it."""
    while isinstance(failure.value, FirstError):
        failure = failure.value.subFailure
    return failure.value if failure.value is not None else RuntimeError("start-up failed")


class ListenerService(Service):
    """Listens on a TCP endpoint while running; ``port`` fires with the listening port (or
    fails with :class:`ListenError` naming the listener and the address)."""

    def __init__(self, reactor: Any, host: str, port: int, factory: IProtocolFactory) -> None:
        self._endpoint = TCP4ServerEndpoint(reactor, port, interface=host)
        self._address = f"{host}:{port}"
        self.factory = factory
        self.listening: IListeningPort | None = None
        self.port: Deferred[IListeningPort] = Deferred()

    def startService(self) -> None:
        super().startService()
        d = self._endpoint.listen(self.factory)

        def listening(port: IListeningPort) -> IListeningPort:
            self.listening = port
            log.info("{listener} listening on {address}", event="listener_open",
                     listener=self.name, address=self._address)
            self.port.callback(port)
            return port

        def refused(f: Failure) -> None:
            reason = f.value.socketError if isinstance(f.value, CannotListenError) else f.value
            self.port.errback(ListenError(
                f"{self.name or 'a listener'} cannot listen on {self._address}: {reason}"))

        d.addCallbacks(listening, refused)

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        if self.listening is not None:
            port, self.listening = self.listening, None
            log.info("{listener} closed on {address}", event="listener_closed",
                     listener=self.name, address=self._address)
            return port.stopListening()
        return None

    def bound_port(self) -> int:
        """The actual TCP port (useful when configured as 0)."""
        assert self.listening is not None
        return int(self.listening.getHost().port)  # type: ignore[attr-defined]


def frame_app_factory(endpoint: EndpointConfig, reactor: Any) -> AppFactory:
    """Sessions of :mod:`juki_gateway.protocols.session` using the role's handler registry."""
    from juki_gateway.protocols.channel import default_catalogue
    from juki_gateway.protocols.session import FrameSession, registry_for

    registry = registry_for(endpoint.role)
    catalogue = default_catalogue()  # built once, not per connection

    def make(conn_id: str, peer: PeerIdentity) -> FrameSession:
        def say(message: str) -> None:
            log.info("[{conn_id}] {message}", event="session_note", conn_id=conn_id, message=message)

        return FrameSession(node=endpoint.name, conn_id=conn_id, peer=peer, registry=registry,
                            seconds=reactor.seconds, log=say, catalogue=catalogue)

    return make


class GatewayService(MultiService):
    """The root of the daemon's service tree."""

    def __init__(
        self,
        config: GatewayConfig,
        reactor: Any,
        *,
        metrics: GatewayMetrics | None = None,
        app_factories: Callable[[EndpointConfig], AppFactory | None] | None = None,
        start_links: bool = True,
        node_configs: Mapping[str, NodeConfig] | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.metrics = metrics if metrics is not None else GatewayMetrics()
        self.handshake_log = HandshakeLog(
            config.handshake_log,
            clock=reactor if config.handshake_log_flush > 0 else None,
            flush_delay=config.handshake_log_flush,
        )
        self.tracker = ConnectionTracker()
        self.creators: dict[str, MutualTLSServerCreator] = {}
        self.listeners: dict[str, ListenerService] = {}
        self._crl_mtime: tuple[int, int] | None = None
        self._expiry_updated = float("-inf")
        self.start_links = start_links
        self._cache = cache = PeerCertificateCache()
        from juki_gateway.gateway.intermediate.host import ADMIN_NAME, IntermediateHost
        from juki_gateway.gateway.jukinet.hosting import JukinetHost

        # the domain services first: they start before the listeners and stop after the drain
        self.jukinet = JukinetHost(config, reactor, self.handshake_log, self.metrics, cache,
                                   node_configs=dict(node_configs or {}))
        self.intermediate = IntermediateHost(config, reactor, self.metrics)
        self.hosts: tuple[JukinetHost, IntermediateHost] = (self.jukinet, self.intermediate)
        for host in self.hosts:
            host.setServiceParent(self)

        def make_apps(ep: EndpointConfig) -> AppFactory:
            """The caller's factory if it gives one, else a hosted domain's, else frame sessions."""
            made = app_factories(ep) if app_factories is not None else None
            if made is not None:
                return made
            for host in self.hosts:
                if host.hosts(ep):
                    return host.app_factory(ep)
            return frame_app_factory(ep, reactor)

        for ep in config.endpoints:
            self.listeners[ep.name] = self._endpoint(
                ep.name, ep.host, ep.port, ep.cert, ep.key, ep.allow, make_apps(ep),
                MetricsFrameObserver(self.metrics, ep.name))
        #: the intermediate server's admin port (operators, mutual TLS), when there is one
        self.admin_listener: ListenerService | None = None
        ims_ep = self.intermediate.endpoint
        if ims_ep is not None:
            self.admin_listener = self._endpoint(
                ADMIN_NAME, config.admin.host, config.admin.port, ims_ep.cert, ims_ep.key,
                self.intermediate.admin_allow(), self.intermediate.admin_app_factory(), None)
        site = Site(metrics_resource(self.metrics))
        site.noisy = False
        from juki_gateway.gateway.health import install_health

        self.health = install_health(self, site.resource, reactor.seconds)
        self.metrics_listener = ListenerService(reactor, config.metrics.host, config.metrics.port, site)
        self.metrics_listener.setName("metrics")
        self.metrics_listener.setServiceParent(self)
        self.links: dict[str, Any] = {}
        for link in config.links:
            if self.jukinet.drives(link):
                self.links[link.name] = self.jukinet.status[link.name]
                continue
            if not start_links:
                continue
            from juki_gateway.gateway.links import make_link_service

            svc = make_link_service(config, link, reactor, self.handshake_log, self.metrics, cache)
            svc.setServiceParent(self)
            self.links[link.name] = svc
        from juki_gateway.gateway.retention import RetentionHost

        # after the listeners: the hosted nodes exist (made with their endpoints' factories)
        self.retention = RetentionHost(config, reactor, self.metrics.registry, self.intermediate,
                                       self.jukinet)
        self.retention.setServiceParent(self)
        watch = TimerService(CRL_POLL_SECONDS, self._periodic)
        watch.clock = reactor
        watch.setName("crl-watch")
        watch.setServiceParent(self)
        if self.jukinet.nodes:
            awaiting = TimerService(AWAITING_POLL_SECONDS, self._refresh_awaiting)
            awaiting.clock = reactor
            awaiting.setName("awaiting-fetch")
            awaiting.setServiceParent(self)
        if self.jukinet.status and start_links:
            held = TimerService(LINK_POLL_SECONDS, self._apply_held_links)
            held.clock = reactor
            held.setName("link-control")
            held.setServiceParent(self)
        self._nodes_ready: Deferred[Any] | None = None

    def _endpoint(self, name: str, host: str, port: int, cert: Path, key: Path,
                  allow: tuple[AllowRule, ...], apps: AppFactory,
                  observer: MetricsFrameObserver | None) -> ListenerService:
        """A mutual-TLS listener of this tree: its certificate, its allow-list, its application."""
        config, reactor = self.config, self.reactor
        creator = MutualTLSServerCreator(
            cert=cert, key=key, ca=config.ca, crl=config.crl, authorizer=Authorizer(allow),
            seconds=reactor.seconds, cache=self._cache,
        )
        self.creators[name] = creator
        ctx = EndpointContext(
            name=name, clock=reactor, handshake_log=self.handshake_log, metrics=self.metrics,
            app_factory=apps, handshake_timeout=config.timeouts.handshake,
            idle_timeout=config.timeouts.idle, tracker=self.tracker,
            connections_per_peer=config.connections_per_peer, observer=observer,
        )
        listener = ListenerService(
            reactor, host, port, wrap_server_factory(creator, ChannelFactory(ctx), reactor))
        listener.setName(name if name == "admin" else f"endpoint:{name}")
        listener.setServiceParent(self)
        return listener

    def _refresh_awaiting(self) -> None:
        """The 転入通知 waiting to be fetched, per node (once the nodes' stores are open)."""
        if self._nodes_ready is None or not self._nodes_ready.called:
            return
        self.jukinet.refresh_awaiting()

    def _apply_held_links(self) -> None:
        """Hold or release the node-driven links as the operator's switch file says."""
        from juki_gateway.gateway.linkcontrol import read_held

        if self._nodes_ready is None or not self._nodes_ready.called:
            return
        held = read_held(self.config.workdir)
        for name, status in self.jukinet.status.items():
            if name in held and not status.held:
                self.jukinet.hold(name)
            elif name not in held and status.held:
                self.jukinet.release(name)

    def _crl_stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.config.crl)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _periodic(self) -> None:
        stamp = self._crl_stamp()
        if stamp != self._crl_mtime:
            self._crl_mtime = stamp
            self.reload_crl()
        now = self.reactor.seconds()
        if now - self._expiry_updated >= EXPIRY_REFRESH_SECONDS:
            self._update_expiry(now)

    def _update_expiry(self, now: float) -> None:
        self._expiry_updated = now
        # the CA and the endpoints' certificates: the links and the admin listener present
        # their local endpoint's, so these are every certificate the daemon's peers check
        self.metrics.update_certificate_expiry(
            [self.config.ca, *(ep.cert for ep in self.config.endpoints)], now)

    def reload_crl(self) -> None:
        """Reload the CRL into every endpoint's context (SIGHUP or file change)."""
        for name, creator in self.creators.items():
            try:
                creator.reload_crl()
            except TLSConfigError as exc:
                log.error("CRL reload failed for {name}: {err}", event="crl_reload_failed", name=name, err=exc.message)
                continue
        self._update_expiry(self.reactor.seconds())
        log.info("CRL reloaded from {path}", event="crl_reloaded", path=str(self.config.crl))
        try:
            revoked = revoked_serials(self.config.crl)
        except TLSConfigError:
            return  # already logged for each endpoint above
        # a certificate revoked now ends the sessions it holds, not only its next handshake
        self.tracker.close_revoked(revoked, self.reactor.seconds())

    def startService(self) -> None:
        for creator in self.creators.values():
            creator.load()  # certificate/key/CA/CRL problems surface here, before listening
        self._crl_mtime = self._crl_stamp()
        self.handshake_log.open()
        self._update_expiry(self.reactor.seconds())
        # the hosts start first (node stores open on their threads while the listeners bind)
        super().startService()
        ports = [lst.port for lst in self.listeners.values()]
        bound: Deferred[Any] = DeferredList(ports, fireOnOneErrback=True, consumeErrors=True)
        ready: Deferred[Any] = DeferredList(
            [*(h.ready for h in self.hosts), bound, *self._migrate_registry()],
            fireOnOneErrback=True, consumeErrors=True)

        def connect(_: object) -> None:
            from juki_gateway.gateway.linkcontrol import read_held

            held = read_held(self.config.workdir)
            for name, status in self.jukinet.status.items():
                status.held = name in held
            bound = {n: lst.bound_port() for n, lst in self.listeners.items()
                     if lst.listening is not None}
            self.jukinet.listening(bound)
            if self.start_links:
                self.jukinet.connect(bound)
                for name, status in self.jukinet.status.items():
                    if status.held:  # held before start-up: stays cut
                        self.jukinet.hold(name)
            self.retention.begin()
            self.jukinet.refresh_awaiting()  # the series exist from the first scrape

        ready.addCallback(connect)
        self._nodes_ready = ready

    def _migrate_registry(self) -> list[Deferred[None]]:
        """The registry store keeps the audit trail (link switches, retention runs) of every
        daemon; the intermediate server migrates it when there is one, else a daemon hosting
        Juki-net nodes does it here (a daemon of a split topology hosting only 機構 or one
        prefecture), off the reactor thread. A node run on its own has its node's store as
        registry store, which the node migrates."""
        nodes = {node.cfg.store_url for node in self.jukinet.nodes.values()}
        if self.intermediate.endpoint is not None or not nodes or self.config.store.url in nodes:
            return []
        from twisted.internet.threads import deferToThreadPool

        from juki_gateway.registry_store.migrate import upgrade

        return [deferToThreadPool(self.reactor, self.reactor.getThreadPool(), upgrade,
                                  self.config.store.url)]

    def whenListening(self) -> Deferred[Any]:
        """Fires once every listener is bound and every hosted node's store is open."""
        listeners = [*self.listeners.values(), self.metrics_listener]
        if self.admin_listener is not None:
            listeners.append(self.admin_listener)
        ports = [lst.port for lst in listeners]
        waits: list[Deferred[Any]] = [*ports]
        if self._nodes_ready is not None:
            mine: Deferred[Any] = Deferred()

            def relay(result: Any) -> Any:
                if isinstance(result, Failure):
                    mine.errback(result)
                    return None  # the failure is reported through whenListening
                mine.callback(None)
                return result

            self._nodes_ready.addBoth(relay)
            waits.append(mine)
        return DeferredList(waits, fireOnOneErrback=True, consumeErrors=True)

    def stopService(self) -> Deferred[None]:
        """Stop listening, then drain live connections, then close the log."""
        if not self.running:  # start-up failed before anything started
            return succeed(None)
        Service.stopService(self)
        others = [svc for svc in reversed(list(self)) if svc not in self.hosts]
        d: Deferred[Any] = DeferredList([maybeDeferred(svc.stopService) for svc in others])
        d.addCallback(lambda _: self.tracker.drain(self.reactor, self.config.timeouts.drain))

        def stop_hosts(result: Any) -> Deferred[Any]:
            hosts = [maybeDeferred(h.stopService) for h in reversed(self.hosts) if h.running]
            return DeferredList(hosts).addCallback(lambda _: result)

        d.addBoth(stop_hosts)

        def close(result: Any) -> Any:
            self.handshake_log.close()
            self.health.store.close()
            return result

        d.addBoth(close)
        return d


def makeService(config: GatewayConfig, reactor: Any, **kwargs: Any) -> GatewayService:
    """Build the daemon's service tree for ``config`` on ``reactor`` (no I/O until started)."""
    return GatewayService(config, reactor, **kwargs)
