"""The Twisted adapters in memory: TLS on both sides over iosim, time from a ``Clock``."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.test.iosim import FakeTransport, connect

from juki_gateway.codecs.frame import encode_frame
from juki_gateway.codecs.messages import MessageType
from juki_gateway.gateway.config import LinkConfig, load_config
from juki_gateway.gateway.connection import ChannelFactory, ConnectionTracker, EndpointContext
from juki_gateway.gateway.handshake_log import HandshakeLog
from juki_gateway.gateway.links import make_link_service
from juki_gateway.gateway.metrics import GatewayMetrics, MetricsFrameObserver
from juki_gateway.gateway.service import frame_app_factory
from juki_gateway.gateway.tls import (
    Authorizer,
    MutualTLSClientCreator,
    MutualTLSServerCreator,
    wrap_server_factory,
)
from tests.gateway_support import TS, decode_frames, make_workdir

ADDR = IPv4Address("TCP", "127.0.0.1", 40000)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory with the default PKI."""
    return make_workdir(tmp_path_factory.mktemp("mem"))


class Collect(Protocol):
    """A client that records what it receives and whether it lost the connection."""

    def __init__(self) -> None:
        self.data = b""
        self.lost: Failure | None = None

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure = Failure(Exception())) -> None:  # noqa: B008
        self.lost = reason


class Pump:
    """Moves bytes between the two in-memory sides, running the clock's zero-delay calls."""

    def __init__(self, pump: Any, clock: Clock) -> None:
        self._pump = pump
        self._clock = clock

    def flush(self) -> None:
        """Until quiet: run due calls (write aggregation), then move bytes."""
        for _ in range(100):
            self._clock.advance(0)
            if not self._pump.pump():
                self._clock.advance(0)
                if not self._pump.pump():
                    break


class Setup:
    """An endpoint (cs-172014) wired to a Clock, a metrics registry and a log file."""

    def __init__(self, workdir: Path, tmp: Path, *, idle: float = 30.0) -> None:
        self.config = load_config(workdir / "gateway.toml")
        ep = self.config.endpoint("cs-172014")
        self.clock = Clock()
        self.clock.advance(1_800_000_000)
        self.metrics = GatewayMetrics()
        self.log = HandshakeLog(tmp / "hs.jsonl")
        self.creator = MutualTLSServerCreator(
            cert=ep.cert, key=ep.key, ca=self.config.ca, crl=self.config.crl,
            authorizer=Authorizer(ep.allow), seconds=self.clock.seconds,
        )
        ctx = EndpointContext(
            name=ep.name, clock=self.clock, handshake_log=self.log, metrics=self.metrics,
            app_factory=frame_app_factory(ep, self.clock),
            handshake_timeout=5.0, idle_timeout=idle, tracker=ConnectionTracker(),
            observer=MetricsFrameObserver(self.metrics, ep.name),
        )
        self.server_factory = wrap_server_factory(self.creator, ChannelFactory(ctx), self.clock)

    def connect(self, client: Collect, name: str | None, *, tls: bool = True) -> Any:
        """Connect ``client`` in memory (TLS as ``name`` unless ``tls`` is false)."""
        server = self.server_factory.buildProtocol(ADDR)
        if tls:
            pki = self.config.pki_dir
            creator = MutualTLSClientCreator(
                server_name="cs-172014", cert=pki / f"{name}.pem", key=pki / f"{name}.key",
                ca=self.config.ca,
            )
            client_side = TLSMemoryBIOFactory(creator, True, Factory.forProtocol(lambda: client),
                                             clock=self.clock)
            proto = client_side.buildProtocol(ADDR)
        else:
            proto = client
        pump = connect(server, FakeTransport(server, isServer=True), proto,
                       FakeTransport(proto, isServer=False), greet=True)
        return Pump(pump, self.clock), proto

    def records(self) -> list[dict[str, Any]]:
        """The handshake log so far."""
        self.log.close()
        lines = self.log.path.read_text().splitlines() if self.log.path.exists() else []
        return [json.loads(x) for x in lines]

    def value(self, name: str, **labels: str) -> float:
        """A metric sample value (0 if absent)."""
        v = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if v is None else v


def test_in_memory_handshake_and_ping(workdir: Path, tmp_path: Path) -> None:
    """An allowed client handshakes in memory and its PING is answered with one PONG."""
    s = Setup(workdir, tmp_path)
    client = Collect()
    pump, proto = s.connect(client, "kizon-172014")
    proto.write(encode_frame(MessageType.PING, "kizon-172014", "cs-172014", timestamp=TS))
    pump.flush()
    assert [f.msg_type for f in decode_frames(client.data)] == [MessageType.PONG]
    rec = s.records()
    assert len(rec) == 1 and rec[0]["validation_status"] == "ok"
    assert s.value("juki_gateway_active_connections", endpoint="cs-172014", peer_role="kizon-juki") == 1


def test_handshake_timeout_is_logged(workdir: Path, tmp_path: Path) -> None:
    """A peer that never finishes the handshake is dropped after the timeout and logged as timeout."""
    s = Setup(workdir, tmp_path)
    client = Collect()
    pump, _ = s.connect(client, None, tls=False)
    pump.flush()
    s.clock.advance(4.9)
    pump.flush()
    assert client.lost is None
    s.clock.advance(0.2)
    pump.flush()
    assert client.lost is not None and client.data == b""
    rec = s.records()
    assert [r["validation_status"] for r in rec] == ["timeout"]
    assert s.value("juki_gateway_handshakes_total", endpoint="cs-172014", result="refused",
                   reason="timeout") == 1


def test_idle_connection_is_closed(workdir: Path, tmp_path: Path) -> None:
    """An authenticated connection with no traffic for the idle timeout is closed; traffic resets it."""
    s = Setup(workdir, tmp_path, idle=30.0)
    client = Collect()
    pump, proto = s.connect(client, "kizon-172014")
    pump.flush()
    s.clock.advance(20)
    proto.write(encode_frame(MessageType.PING, "kizon-172014", "cs-172014", timestamp=TS))
    pump.flush()
    s.clock.advance(20)
    pump.flush()
    assert client.lost is None
    s.clock.advance(11)
    pump.flush()
    assert client.lost is not None
    assert s.value("juki_gateway_active_connections", endpoint="cs-172014", peer_role="kizon-juki") == 0


def test_role_refusal_in_memory_sends_nothing(workdir: Path, tmp_path: Path) -> None:
    """A wrong-role client is refused inside the handshake: no application byte reaches it."""
    s = Setup(workdir, tmp_path)
    client = Collect()
    pump, proto = s.connect(client, "ipnw")
    proto.write(encode_frame(MessageType.PING, "ipnw", "cs-172014", timestamp=TS))
    pump.flush()
    assert client.data == b""
    assert [r["validation_status"] for r in s.records()] == ["role_not_allowed"]


def test_link_reconnects_with_backoff_on_clock(workdir: Path, tmp_path: Path) -> None:
    """A link whose peer refuses connections retries with growing delays measured on the clock."""
    config = load_config(workdir / "gateway.toml")
    reactor = MemoryReactorClock()
    link = LinkConfig(name="cs->pref", local="cs-172014", peer="pref-17", host="127.0.0.1",
                      port=1, ping_interval=0, backoff_initial=1.0, backoff_max=8.0)
    from juki_gateway.gateway.tls import PeerCertificateCache

    svc = make_link_service(config, link, reactor, HandshakeLog(tmp_path / "l.jsonl"),
                            GatewayMetrics(), PeerCertificateCache())
    svc.startService()
    attempts_at: list[float] = []
    for _ in range(5):
        # wait (on the fake clock) until the next attempt shows up, then refuse it
        waited = 0.0
        while not reactor.tcpClients and waited < 30:
            reactor.advance(0.25)
            waited += 0.25
        assert reactor.tcpClients, "no reconnection attempt"
        host, port, factory, _, _ = reactor.tcpClients.pop()
        assert (host, port) == ("127.0.0.1", 1)
        attempts_at.append(reactor.seconds())
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
    gaps = [b - a for a, b in itertools.pairwise(attempts_at)]
    assert gaps[0] >= 1.0 and gaps[-1] > gaps[0]  # exponential, jitter of at most 1 s
    assert all(g <= 8.0 + 1.0 + 0.25 for g in gaps)
    svc.stopService()


def test_crl_file_change_is_picked_up(workdir: Path, tmp_path: Path) -> None:
    """The service's periodic check reloads the CRL when the file changes, without a signal."""
    import datetime as dt
    import os

    from juki_gateway.certs.identity import PeerIdentity
    from juki_gateway.certs.pki import CertificateAuthority
    from juki_gateway.gateway.service import GatewayService

    config = load_config(workdir / "gateway.toml")
    reactor = MemoryReactorClock()
    svc = GatewayService(config, reactor, start_links=False)
    reloads: list[str] = []
    for name, creator in svc.creators.items():
        original = creator.reload_crl

        def spy(name: str = name, original: Any = original) -> None:
            reloads.append(name)
            original()

        creator.reload_crl = spy  # type: ignore[method-assign]
    svc._crl_mtime = svc._crl_stamp()  # as startService records it
    svc._periodic()
    assert reloads == []
    ca = CertificateAuthority.load(config.pki_dir)
    ca.issue(PeerIdentity("ipnw-3", "ipnw", "ipnw"), dt.datetime.now(dt.UTC))
    ca.revoke("ipnw-3", dt.datetime.now(dt.UTC))
    st = os.stat(config.crl)
    os.utime(config.crl, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    svc._periodic()
    assert sorted(reloads) == sorted(svc.creators)


def test_handshake_log_filters() -> None:
    """--failed keeps refusals only and --since keeps records at or after the timestamp."""
    from juki_gateway.gateway.handshake_log import filter_records, format_table

    recs = [
        {"ts": "2026-11-26T10:00:00.000Z", "validation_status": "ok"},
        {"ts": "2026-11-26T11:00:00.000Z", "validation_status": "revoked"},
        {"ts": "2026-11-26T12:00:00.000Z", "validation_status": "expired"},
    ]
    assert [r["ts"][11:13] for r in filter_records(recs, failed=True)] == ["11", "12"]
    assert [r["ts"][11:13] for r in filter_records(recs, since="2026-11-26T11")] == ["11", "12"]
    assert [r["ts"][11:13] for r in filter_records(recs, failed=True, since="2026-11-26T12")] == ["12"]
    assert format_table([]).split()[0] == "TS"


def test_handshake_log_buffers_until_flush_delay(tmp_path: Path) -> None:
    """With a clock the log holds records until flush_delay has passed, and close writes the rest."""
    clock = Clock()
    path = tmp_path / "hs.jsonl"
    hlog = HandshakeLog(path, clock=clock, flush_delay=0.2)
    hlog.open()
    hlog.write({"conn_id": "C1"})
    hlog.write({"conn_id": "C2"})
    assert path.read_text() == ""
    clock.advance(0.19)
    assert path.read_text() == ""
    clock.advance(0.01)
    assert [json.loads(x)["conn_id"] for x in path.read_text().splitlines()] == ["C1", "C2"]
    hlog.write({"conn_id": "C3"})
    hlog.close()
    assert [json.loads(x)["conn_id"] for x in path.read_text().splitlines()] == ["C1", "C2", "C3"]
    assert not clock.getDelayedCalls()


def test_handshake_log_without_clock_writes_through(tmp_path: Path) -> None:
    """Without a clock every record is in the file as soon as write returns."""
    path = tmp_path / "hs.jsonl"
    hlog = HandshakeLog(path)
    hlog.write({"conn_id": "C1"})
    assert json.loads(path.read_text())["conn_id"] == "C1"
    hlog.close()


def test_server_tls_transport_declares_transport_interfaces(workdir: Path, tmp_path: Path) -> None:
    """The cheaper TLS set-up still declares every interface of the TCP transport, as Twisted's does."""
    from twisted.internet.interfaces import ITCPTransport
    from twisted.internet.testing import StringTransport
    from zope.interface import directlyProvides, providedBy

    setup = Setup(workdir, tmp_path)
    transport = StringTransport()
    directlyProvides(transport, ITCPTransport)
    proto = setup.server_factory.buildProtocol(ADDR)
    assert type(proto).__name__ == "ServerTLSTransport"
    proto.makeConnection(transport)
    assert list(providedBy(transport)) and all(i.providedBy(proto) for i in providedBy(transport))
    assert ITCPTransport.providedBy(proto)
    assert proto.wrappedProtocol.transport is proto
    assert proto in setup.server_factory.protocols and proto.getHandle() is not None
    proto.abortConnection()


def test_a_connection_before_the_node_store_is_open_waits_then_is_served(
        workdir: Path, tmp_path: Path) -> None:
    """A peer of a hosted endpoint whose node's store is not open yet is authenticated, its
    frames wait (reading paused), and they are answered once the node is ready, and counted."""
    from juki_gateway.gateway.service import GatewayService

    config = load_config(workdir / "gateway.toml")
    reactor = MemoryReactorClock()
    reactor.advance(1_800_000_000)
    svc = GatewayService(config, reactor, start_links=False)
    node = svc.jukinet.nodes["cs-172014"]
    server = svc.listeners["cs-172014"].factory.buildProtocol(ADDR)
    pki = config.pki_dir
    creator = MutualTLSClientCreator(server_name="cs-172014", cert=pki / "kizon-172014.pem",
                                     key=pki / "kizon-172014.key", ca=config.ca)
    client = Collect()
    proto = TLSMemoryBIOFactory(creator, True, Factory.forProtocol(lambda: client),
                                clock=reactor).buildProtocol(ADDR)
    svc.creators["cs-172014"].load()
    pump = Pump(connect(server, FakeTransport(server, isServer=True), proto,
                        FakeTransport(proto, isServer=False), greet=True), reactor)
    proto.write(encode_frame(MessageType.PING, "kizon-172014", "cs-172014", timestamp=TS))
    pump.flush()
    assert client.data == b"" and client.lost is None  # held, not refused
    node.ready.callback(None)  # what opening the store fires
    pump.flush()
    assert [f.msg_type for f in decode_frames(client.data)] == [MessageType.PONG]
    sample = svc.metrics.registry.get_sample_value
    assert sample("juki_gateway_frames_in_total", {"endpoint": "cs-172014", "msg_type": "PING"}) == 1
    assert sample("juki_gateway_frames_out_total", {"endpoint": "cs-172014", "msg_type": "PONG"}) == 1


def test_link_drops_a_server_whose_role_is_not_the_configured_one(
        workdir: Path, tmp_path: Path) -> None:
    """The server's certificate chains and names the peer dialled, but says another role than
    the link's configuration: the client drops it, sends no frame, and logs why."""
    from juki_gateway.certs.identity import PeerIdentity
    from juki_gateway.gateway.connection import ChannelFactory, LinkContext, LinkReporting
    from juki_gateway.gateway.tls import PeerCertificateCache
    from juki_gateway.protocols.session import FrameSession, HandlerRegistry

    s = Setup(workdir, tmp_path)
    started: list[PeerIdentity] = []

    def app(conn_id: str, peer: PeerIdentity) -> FrameSession:
        started.append(peer)
        return FrameSession(node="kizon-172014", conn_id=conn_id, peer=peer,
                            registry=HandlerRegistry(), seconds=s.clock.seconds)

    link_log = HandshakeLog(tmp_path / "link.jsonl")
    ctx = LinkContext(label="kizon-172014->cs-172014", peer="cs-172014", clock=s.clock,
                      app_factory=app, peer_role="prefecture", peer_org="17",
                      reporting=LinkReporting(link_log, s.metrics, PeerCertificateCache(), 5.0))
    pki = s.config.pki_dir
    creator = MutualTLSClientCreator(server_name="cs-172014", cert=pki / "kizon-172014.pem",
                                     key=pki / "kizon-172014.key", ca=s.config.ca)
    client = TLSMemoryBIOFactory(creator, True, ChannelFactory(ctx), clock=s.clock).buildProtocol(ADDR)
    server = s.server_factory.buildProtocol(ADDR)
    pump = Pump(connect(server, FakeTransport(server, isServer=True), client,
                        FakeTransport(client, isServer=False), greet=True), s.clock)
    pump.flush()
    link_log.close()
    (line,) = [json.loads(x) for x in link_log.path.read_text().splitlines()]
    assert line["validation_status"] == "wrong_peer_identity" and line["established"] is False
    assert started == []  # no application, so no PING either
    assert s.value("juki_gateway_frames_in_total", endpoint="cs-172014", msg_type="PING") == 0


def test_a_link_refuses_a_server_whose_certificate_is_revoked(tmp_path: Path) -> None:
    """An outbound link checks the server's certificate against the CRL: a revoked endpoint gets
    no frame from the link, and the refusal is logged; unrevoked, the same link connects."""
    import datetime as dt

    from juki_gateway.certs.pki import CertificateAuthority
    from juki_gateway.gateway.connection import ChannelFactory, LinkContext, LinkReporting
    from juki_gateway.gateway.tls import PeerCertificateCache
    from juki_gateway.protocols.session import FrameSession, HandlerRegistry

    wd = make_workdir(tmp_path / "wd")
    s = Setup(wd, tmp_path)
    pki = s.config.pki_dir

    def attempt() -> tuple[list[str], str]:
        started: list[str] = []

        def app(conn_id: str, peer: Any) -> FrameSession:
            started.append(peer.name)
            return FrameSession(node="kizon-172014", conn_id=conn_id, peer=peer,
                                registry=HandlerRegistry(), seconds=s.clock.seconds)

        link_log = HandshakeLog(tmp_path / f"link{len(list(tmp_path.iterdir()))}.jsonl")
        ctx = LinkContext(label="kizon-172014->cs-172014", peer="cs-172014", clock=s.clock,
                          app_factory=app, reporting=LinkReporting(
                              link_log, s.metrics, PeerCertificateCache(), 5.0))
        creator = MutualTLSClientCreator(server_name="cs-172014", cert=pki / "kizon-172014.pem",
                                         key=pki / "kizon-172014.key", ca=s.config.ca,
                                         crl=s.config.crl)
        client = TLSMemoryBIOFactory(creator, True, ChannelFactory(ctx),
                                     clock=s.clock).buildProtocol(ADDR)
        server = s.server_factory.buildProtocol(ADDR)
        Pump(connect(server, FakeTransport(server, isServer=True), client,
                     FakeTransport(client, isServer=False), greet=True), s.clock).flush()
        link_log.close()
        return started, json.loads(link_log.path.read_text().splitlines()[0])["validation_status"]

    assert attempt() == (["cs-172014"], "ok")
    CertificateAuthority.load(pki).revoke("cs-172014", dt.datetime.now(dt.UTC))
    started, status = attempt()
    assert started == [] and status != "ok"
