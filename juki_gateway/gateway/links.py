"""Generic outbound links: a local endpoint connects to a peer endpoint with its own certificate.

A ``[[links]]`` entry that no hosted Juki-net node drives is a reconnecting ``ClientService``
(exponential backoff, all timing from the injected reactor clock) around the daemon's one
connection adapter, :class:`~juki_gateway.gateway.connection.ChannelProtocol`, on its client
side: the link's TLS side is :class:`~juki_gateway.gateway.tls.MutualTLSClientCreator` (our
certificate, the dev CA, the peer's node name checked against its certificate); it writes its
own handshake-log line (``endpoint`` = ``LOCAL->PEER``) when the first frame comes back or the
connection is refused, and PINGs every ``ping_interval`` seconds. Frames arriving on the link go
to the handlers registered for ``link:<local role>`` in :mod:`juki_gateway.protocols.session`.
"""

from __future__ import annotations

from typing import Any

from twisted.application.internet import ClientService

from juki_gateway.certs.identity import PeerIdentity
from juki_gateway.gateway.config import GatewayConfig, LinkConfig
from juki_gateway.gateway.connection import LinkContext, LinkReporting, link_service
from juki_gateway.gateway.handshake_log import HandshakeLog
from juki_gateway.gateway.metrics import GatewayMetrics
from juki_gateway.gateway.tls import PeerCertificateCache
from juki_gateway.protocols.session import FrameSession, registry_for


def make_link_service(
    config: GatewayConfig,
    link: LinkConfig,
    reactor: Any,
    handshake_log: HandshakeLog,
    metrics: GatewayMetrics,
    cache: PeerCertificateCache,
) -> ClientService:
    """A reconnecting client service for ``link`` (backoff and timing from ``reactor``)."""
    local = config.endpoint(link.local)
    registry = registry_for(f"link:{local.role}")

    def app(conn_id: str, peer: PeerIdentity) -> FrameSession:
        return FrameSession(node=local.name, conn_id=conn_id, peer=peer, registry=registry,
                            seconds=reactor.seconds)

    reporting = LinkReporting(handshake_log, metrics, cache, config.timeouts.handshake,
                              link.ping_interval)
    ctx = LinkContext(label=f"{link.local}->{link.peer}", peer=link.peer, clock=reactor,
                      app_factory=app, peer_role=link.peer_role, peer_org=link.peer_org,
                      reporting=reporting)
    service = link_service(ctx, reactor=reactor, host=link.host, port=link.port, cert=local.cert,
                           key=local.key, ca=config.ca, backoff_initial=link.backoff_initial,
                           backoff_max=link.backoff_max, cache=cache, crl=config.crl)
    service.setName(f"link:{link.name}")
    return service
