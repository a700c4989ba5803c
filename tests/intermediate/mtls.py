"""A real mutual-TLS intermediate endpoint on 127.0.0.1 and a frame client, for tests and bench."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import SSL4ClientEndpoint, TCP4ServerEndpoint, connectProtocol
from twisted.internet.protocol import Protocol

from juki_gateway.certs.pki import CertificateAuthority, load_certificate
from juki_gateway.codecs.frame import Frame, FrameDecoder
from juki_gateway.gateway.config import DEFAULT_ALLOW, DEFAULT_CLIENTS, DEFAULT_ENDPOINTS, AllowRule
from juki_gateway.gateway.endpoint import ConnectionTracker, EndpointContext, EndpointFactory
from juki_gateway.gateway.handshake_log import HandshakeLog
from juki_gateway.gateway.metrics import GatewayMetrics
from juki_gateway.gateway.tls import (
    Authorizer,
    MutualTLSServerCreator,
    client_options,
    wrap_server_factory,
)
from juki_gateway.intermediate.service import IntermediateService
from juki_gateway.intermediate.session import LENGTHS, ims_session_factory, sign_frame


def make_pki(directory: Path, now: dt.datetime) -> Path:
    """A dev CA with every default identity's certificate and a CRL."""
    ca = CertificateAuthority.create(directory, now, overwrite=True)
    for ident in (*DEFAULT_ENDPOINTS, *DEFAULT_CLIENTS):
        ca.issue(ident, now, dns_names=("localhost",))
    ca.write_crl(now)
    return directory


def private_key(pki: Path, name: str) -> ec.EllipticCurvePrivateKey:
    """``<name>.key`` of the PKI."""
    key = load_pem_private_key((pki / f"{name}.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def public_key(pki: Path, name: str) -> ec.EllipticCurvePublicKey:
    """The public key of ``<name>.pem``."""
    key = load_certificate(pki / f"{name}.pem").public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


async def listen(reactor: Any, pki: Path, service: IntermediateService, logs: Path) -> Any:
    """Start the intermediate endpoint on an ephemeral loopback port; returns the port."""
    allow = tuple(AllowRule(**rule) for rule in DEFAULT_ALLOW["ims-172014"])
    creator = MutualTLSServerCreator(
        cert=pki / "ims-172014.pem",
        key=pki / "ims-172014.key",
        ca=pki / "ca.pem",
        crl=pki / "crl.pem",
        authorizer=Authorizer(allow),
        seconds=reactor.seconds,
    )
    hlog = HandshakeLog(logs / "handshakes.jsonl")
    hlog.open()
    ctx = EndpointContext(
        name="ims-172014",
        clock=reactor,
        handshake_log=hlog,
        metrics=GatewayMetrics(),
        session_factory=ims_session_factory(service, "ims-172014", lambda n: public_key(pki, n)),
        handshake_timeout=10.0,
        idle_timeout=0,
        tracker=ConnectionTracker(),
    )
    return await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
        wrap_server_factory(creator, EndpointFactory(ctx))
    )


@dataclass
class FrameClient(Protocol):
    """Collects signed frames from the server; ``expect(n)`` fires once n have arrived."""

    frames: list[Frame] = field(default_factory=list)
    _waiting: list[tuple[int, Deferred[list[Frame]]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._decoder = FrameDecoder(LENGTHS)

    def dataReceived(self, data: bytes) -> None:
        self._decoder.receive_data(data)
        while (event := self._decoder.next_event()) is not None:
            assert isinstance(event, Frame), event
            self.frames.append(event)
        for n, d in list(self._waiting):
            if len(self.frames) >= n:
                self._waiting.remove((n, d))
                d.callback(self.frames[:n])

    def expect(self, n: int) -> Deferred[list[Frame]]:
        """Fires with the first ``n`` frames received so far (waits for them)."""
        d: Deferred[list[Frame]] = Deferred()
        self._waiting.append((n, d))
        self.dataReceived(b"")
        return d

    def take(self, n: int) -> Deferred[list[Frame]]:
        """Like expect, but removes the frames it returns."""
        d = self.expect(n)

        def taken(frames: list[Frame]) -> list[Frame]:
            del self.frames[:n]
            return frames

        return d.addCallback(taken)


async def connect(reactor: Any, pki: Path, port: int, name: str) -> FrameClient:
    """A mutual-TLS client as ``name`` (its PKI certificate) to the endpoint."""
    opts = client_options(
        server_name="ims-172014",
        cert=pki / f"{name}.pem",
        key=pki / f"{name}.key",
        ca=pki / "ca.pem",
    )
    client = FrameClient()
    await connectProtocol(SSL4ClientEndpoint(reactor, "127.0.0.1", port, opts), client)
    return client


def frame_from(
    key: ec.EllipticCurvePrivateKey,
    sender: str,
    msg_type: int,
    body: bytes,
    count: int,
    request_no: int,
    timestamp: str,
) -> bytes:
    """A signed frame to the intermediate server."""
    return sign_frame(
        key,
        msg_type,
        sender,
        "ims-172014",
        body,
        record_count=count,
        request_no=request_no,
        timestamp=timestamp,
    )
