"""A real working directory and daemon tree for the intermediate tests, and a frame client.

:func:`make_workdir` runs ``init`` (dev PKI, gateway.toml) and rewrites every port to 0 (or the
admin port to a given one) so tests on a shared machine never collide.
"""

from __future__ import annotations

import datetime as dt
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import SSL4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol

from juki_gateway.certs.pki import load_certificate
from juki_gateway.codecs.frame import Frame, FrameDecoder
from juki_gateway.gateway.initdir import init_workdir
from juki_gateway.gateway.intermediate.session import LENGTHS
from juki_gateway.gateway.tls import MutualTLSClientCreator
from juki_gateway.protocols.intermediate.signing import sign_frame


def free_port() -> int:
    """A loopback port that was free a moment ago (for the CLI's fixed admin port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_workdir(directory: Path, now: dt.datetime, *, admin_port: int = 0) -> Path:
    """``juki-gateway init`` into ``directory`` with ephemeral ports; returns gateway.toml."""
    init_workdir(directory, now, port_base=7100)
    path = directory / "gateway.toml"
    config = tomllib.loads(path.read_text())
    for ep in config["endpoints"]:
        ep["port"] = 0
    config["metrics"]["port"] = 0
    config["admin"]["port"] = admin_port
    config["links"] = []
    path.write_text(tomli_w.dumps(config))
    return path


def now14(offset: float = 0.0) -> str:
    """The wall clock (what a daemon on the real reactor reads), plus ``offset`` seconds, as a
    frame timestamp: the intermediate endpoint refuses frames stamped far from its clock."""
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset)
    return at.strftime("%Y%m%d%H%M%S")


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


@dataclass
class FrameClient(Protocol):
    """Collects frames from the server; ``take(n)`` fires once n have arrived."""

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
                taken, self.frames[:n] = self.frames[:n], []
                d.callback(taken)

    def take(self, n: int) -> Deferred[list[Frame]]:
        """Fires with (and removes) the next ``n`` frames."""
        d: Deferred[list[Frame]] = Deferred()
        self._waiting.append((n, d))
        self.dataReceived(b"")
        return d


async def connect(reactor: Any, pki: Path, port: int, name: str) -> FrameClient:
    """A mutual-TLS client as ``name`` (its PKI certificate) to the intermediate endpoint."""
    opts = MutualTLSClientCreator(
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
    *,
    seq: int = 0,
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
        seq=seq,
        timestamp=timestamp,
    )
