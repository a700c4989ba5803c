"""The intermediate server hosted by the daemon, as the Juki-net nodes are (``IntermediateHost``).

When the configuration has an ``intermediate`` endpoint, the daemon's service tree
(:class:`~juki_gateway.gateway.service.GatewayService`) has an :class:`IntermediateHost` child
beside its :class:`~juki_gateway.gateway.jukinet.hosting.JukinetHost`, with the same interface:

* :meth:`hosts` / :meth:`app_factory`: the intermediate endpoint's connections run an
  :class:`~.session.ImsSession` (signed frames, batched queries) and the admin port's an
  :class:`~.admin.AdminSession` (operators of our organisation only), both over one
  :class:`~.service.IntermediateService`;
* ``startService``: the I/O (store migration, keys) happens here, on the server's own store
  thread (:mod:`.worker`), not in the constructor and never on the reactor; every later call of
  the server runs on that thread too; ``ready`` fires once the server can answer;
  ``stopService`` lets the queued calls finish, closes the store and stops the thread.

Everything else (listeners, TLS, handshake log, drain) is the gateway's, as for every endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed

from juki_gateway.certs.identity import PeerIdentity
from juki_gateway.gateway.config import AllowRule, EndpointConfig, GatewayConfig
from juki_gateway.gateway.connection import AppFactory
from juki_gateway.gateway.intermediate.admin import AdminSession
from juki_gateway.gateway.intermediate.operators import OperatorIdentity
from juki_gateway.gateway.intermediate.service import ImsKeys, ImsMetrics, IntermediateService
from juki_gateway.gateway.intermediate.session import ImsSession
from juki_gateway.gateway.intermediate.worker import StoreThread
from juki_gateway.gateway.metrics import GatewayMetrics

T = TypeVar("T")
#: The node name of the My Number network's side (its certificate signs permits and lists).
NETWORK_NODE = "ipnw"
#: Who may use the admin port: operators of the intermediate endpoint's organisation.
ADMIN_NAME = "admin"


class IntermediateHost(Service):
    """The intermediate server of one daemon (see the module docstring)."""

    name = "intermediate"

    def __init__(self, config: GatewayConfig, reactor: Any, metrics: GatewayMetrics) -> None:
        self.config = config
        self.reactor = reactor
        self.metrics = metrics
        self.endpoint: EndpointConfig | None = config.intermediate_endpoint()
        self._service: IntermediateService | None = None
        self._thread: StoreThread | None = None
        self.ready: Deferred[None] = succeed(None)

    @property
    def service(self) -> IntermediateService:
        """The running intermediate server (once started)."""
        if self._service is None:
            raise RuntimeError("the intermediate server is not started")
        return self._service

    @property
    def outbox_links(self) -> tuple[str, ...]:
        """The registry-store outbox links the running server delivers on (none before it runs)."""
        return (self._service.delivery_link,) if self._service is not None else ()

    # -- the host interface (as JukinetHost's) ----------------------------------------------
    def hosts(self, ep: EndpointConfig) -> bool:
        """Whether ``ep`` is the intermediate endpoint."""
        return self.endpoint is not None and ep.name == self.endpoint.name

    def app_factory(self, ep: EndpointConfig) -> AppFactory:
        """The connection application of the intermediate endpoint."""

        def make(conn_id: str, peer: PeerIdentity) -> ImsSession:
            return ImsSession(lambda: self.service, ep.name, peer.name, peer.role,
                              conn_id=conn_id, run=self.run, opening=self.ready)

        return make

    def admin_allow(self) -> tuple[AllowRule, ...]:
        """Who the admin port accepts: operators of the intermediate endpoint's organisation."""
        assert self.endpoint is not None
        return (AllowRule("operator", org=self.endpoint.org),)

    def admin_app_factory(self) -> AppFactory:
        """The admin port's connection application (one operator's requests)."""
        assert self.endpoint is not None
        node = self.endpoint.name

        def make(conn_id: str, peer: PeerIdentity) -> AdminSession:
            operator = OperatorIdentity(peer.name, frozenset(peer.operator_roles))
            return AdminSession(lambda: self.service, node, operator, peer.name, run=self.run,
                                opening=self.ready)

        return make

    def run(self, fn: Callable[[], T]) -> Deferred[T]:
        """Run a call of the server on its store thread (see :mod:`.worker`)."""
        assert self._thread is not None, "the intermediate server is not started"
        return self._thread.run(fn)

    # -- lifecycle ------------------------------------------------------------------------
    def startService(self) -> None:
        """Start the store thread; on it, open and migrate the store, load the keys and start
        the intermediate server (``ready`` fires then, or fails with why)."""
        super().startService()
        ep = self.endpoint
        if ep is None:
            return
        self._thread = StoreThread(self.reactor, f"{ep.name}-store")
        self._thread.start()
        self.ready = self.run(lambda: self._open(ep))

    def _open(self, ep: EndpointConfig) -> None:
        from juki_gateway.registry_store.engine import create_store_engine
        from juki_gateway.registry_store.migrate import upgrade

        engine = create_store_engine(self.config.store.url)
        upgrade(self.config.store.url, engine=engine)
        keys = ImsKeys.from_pki(self.config.pki_dir, own=ep.name, network=NETWORK_NODE)
        service = IntermediateService(engine, keys, ep.name, self.reactor,
                                      metrics=ImsMetrics(self.metrics.registry))
        service.start()
        self._service = service

    def stopService(self) -> Deferred[None]:
        """Finish the calls queued on the store thread, close the store, stop the thread."""
        super().stopService()
        thread, self._thread = self._thread, None
        if thread is None:
            return succeed(None)

        def close() -> None:
            if self._service is not None:
                self._service.engine.dispose()

        d = thread.run(close)
        d.addBoth(lambda _: thread.stop())
        return d
