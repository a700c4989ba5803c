"""Wiring the intermediate server into the daemon: ``make_gateway(config, reactor)``.

When the configuration has an ``intermediate`` endpoint, this builds the gateway's service tree
with that endpoint's connections handled by :class:`.session.ImsSession` (signed frames, batched
queries) over an :class:`.service.IntermediateService` on the configured store, and adds the
admin endpoint on ``[admin]`` (mutual TLS, operators of our organisation only) to the tree.
Other endpoints keep the gateway's default frame sessions. Start-up does the I/O (store
migration, key loading); the returned tree does the rest when started.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from juki_gateway.certs.pki import load_certificate
from juki_gateway.gateway.config import AllowRule, EndpointConfig, GatewayConfig
from juki_gateway.gateway.connection import AppFactory, ChannelFactory, EndpointContext
from juki_gateway.gateway.metrics import GatewayMetrics
from juki_gateway.gateway.service import (
    GatewayService,
    ListenerService,
    makeService,
)
from juki_gateway.gateway.tls import Authorizer, MutualTLSServerCreator, wrap_server_factory
from juki_gateway.intermediate.admin import admin_session_factory
from juki_gateway.intermediate.service import ImsKeys, ImsMetrics, IntermediateService
from juki_gateway.intermediate.session import ims_session_factory
from juki_gateway.protocols.intermediate.errors import IntermediateError
from juki_gateway.registry_store.engine import create_store_engine
from juki_gateway.registry_store.migrate import upgrade

NETWORK_NODE = "ipnw"


class PeerKeys:
    """Public keys of peers by node name, read once from the PKI directory's ``NAME.pem``."""

    def __init__(self, pki: Path) -> None:
        self._pki = pki
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}

    def __call__(self, name: str) -> ec.EllipticCurvePublicKey:
        key = self._keys.get(name)
        if key is None:
            loaded = load_certificate(self._pki / f"{name}.pem").public_key()
            if not isinstance(loaded, ec.EllipticCurvePublicKey):
                raise IntermediateError(f"certificate of {name} does not hold an EC key")
            key = self._keys[name] = loaded
        return key


def intermediate_endpoint(config: GatewayConfig) -> EndpointConfig | None:
    """The configuration's intermediate endpoint, if it has one."""
    return next((ep for ep in config.endpoints if ep.role == "intermediate"), None)


def make_gateway(config: GatewayConfig, reactor: Any, **kwargs: Any) -> GatewayService:
    """The daemon's service tree, with the intermediate server when configured."""
    ims_ep = intermediate_endpoint(config)
    if ims_ep is None:
        return makeService(config, reactor, **kwargs)
    metrics: GatewayMetrics = kwargs.pop("metrics", None) or GatewayMetrics()
    engine = create_store_engine(config.store.url)
    upgrade(config.store.url, engine=engine)
    keys = ImsKeys.from_pki(config.pki_dir, own=ims_ep.name, network=NETWORK_NODE)
    ims = IntermediateService(
        engine, keys, ims_ep.name, reactor, metrics=ImsMetrics(metrics.registry)
    )
    ims.start()
    peer_keys = PeerKeys(config.pki_dir)

    def factories(ep: EndpointConfig) -> AppFactory | None:
        if ep.role == "intermediate":
            return ims_session_factory(ims, ep.name, peer_keys)
        return None  # the gateway's default: a hosted Juki-net node or frame sessions

    gateway = GatewayService(
        config, reactor, metrics=metrics, app_factories=factories, **kwargs
    )
    creator = MutualTLSServerCreator(
        cert=ims_ep.cert,
        key=ims_ep.key,
        ca=config.ca,
        crl=config.crl,
        authorizer=Authorizer((AllowRule("operator", org=ims_ep.org),)),
        seconds=reactor.seconds,
    )
    gateway.creators["admin"] = creator
    ctx = EndpointContext(
        name="admin",
        clock=reactor,
        handshake_log=gateway.handshake_log,
        metrics=metrics,
        app_factory=admin_session_factory(ims, ims_ep.name),
        handshake_timeout=config.timeouts.handshake,
        idle_timeout=config.timeouts.idle,
        tracker=gateway.tracker,
        connections_per_peer=config.connections_per_peer,
    )
    admin = ListenerService(
        reactor,
        config.admin.host,
        config.admin.port,
        wrap_server_factory(creator, ChannelFactory(ctx), reactor),
    )
    admin.setName("admin")
    admin.setServiceParent(gateway)
    gateway.ims = ims  # type: ignore[attr-defined]
    gateway.admin_listener = admin  # type: ignore[attr-defined]
    return gateway
