"""The Juki-net node: one endpoint (municipal CS, prefecture, 機構, or the existing system's
client) assembled from its parts, one module each:

* :mod:`.nodestore` — the store: engine, migrations, the writer and reader threads, and what
  the node resumes from after a restart;
* :mod:`.inbound` — what peers send: sequencing, validation and routing, flow control, group
  commit, replies in order (docs/sequencing.md);
* :mod:`.outbound` — the links: outbox, pump, replies to what it sent, settling;
* :mod:`.requests` — requests it sends (correlated by ``request_no``) and serves
  (:mod:`.services`).

This module builds them, opens each connection's frame channel, and dispatches frames to them.
Flow of a sequenced message (update notification, 送付先 batch, 転入通知)::

    peer frame → NodeConnection → FrameChannel (header checks) → node.frame_received
      → Inbound.sequenced: InboundSequencer.offer, records validated (layouts, check digits, R2)
      → GroupCommitter: apply + inbox row + outbox rows for the next hop, one transaction
      → after COMMIT: ACK back; Outbound.forward → OutboundSequencer.add → pump
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from juki_gateway.codecs.frame import Frame, FrameHeader
from juki_gateway.codecs.messages import MessageType, encode_error
from juki_gateway.codecs.schema import Layout
from juki_gateway.errors import JukiError, loggable
from juki_gateway.gateway.config import AllowRule
from juki_gateway.gateway.jukinet.connection import NodeConnection
from juki_gateway.gateway.jukinet.inbound import Inbound
from juki_gateway.gateway.jukinet.metrics import JukinetMetrics
from juki_gateway.gateway.jukinet.nodestore import NodeStore, Resume
from juki_gateway.gateway.jukinet.outbound import Outbound, OutLink
from juki_gateway.gateway.jukinet.requests import REQUEST_REPLIES, RemoteError, Requests
from juki_gateway.protocols.catalogue import LINK_MESSAGES
from juki_gateway.protocols.channel import Catalogue, ChannelCounts, FrameChannel, Refused
from juki_gateway.protocols.jukinet.errors import (
    SearchTooBroad,
    UnexpectedMessage,
    UnknownMunicipality,
)
from juki_gateway.protocols.jukinet.messages import (
    JUKINET_MESSAGES,
    SEQUENCED_TYPES,
    JukinetMessage,
)
from juki_gateway.protocols.jukinet.numbers import (
    JuminhyoCodePool,
)
from juki_gateway.protocols.jukinet.routing import Role
from juki_gateway.protocols.jukinet.search import DEFAULT_SEARCH_LIMIT
from juki_gateway.protocols.session import msg_type_name
from juki_gateway.registry_store.asyncstore import GroupCommitter

if TYPE_CHECKING:
    from juki_gateway.gateway.connection import LinkReporting
    from juki_gateway.gateway.jukinet.shared import SharedLinks

log = Logger(namespace="juki_gateway.jukinet")

M = JukinetMessage
ERROR, ACK, NACK, PING, PONG = (MessageType.ERROR, MessageType.ACK, MessageType.NACK,
                                MessageType.PING, MessageType.PONG)

#: The body layout of each sequenced type (their records are validated and stored), from the
#: one message catalogue, looked up once here rather than per frame.
_LAYOUT_OF: Mapping[int, Layout] = {
    t: layout for t in SEQUENCED_TYPES if (layout := JUKINET_MESSAGES[t].layout) is not None}


#: Every catalogued type is decoded, so a type of another link (FUGO_REQUEST sent to a CS) gets
#: the role's refusal (5110), not "unknown type" (2111).
_CATALOGUE = Catalogue(LINK_MESSAGES)
_ANY_CONNECTION = frozenset({PING, PONG, ERROR})
_REPLIES = _ANY_CONNECTION | REQUEST_REPLIES | {ACK, NACK}


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """An outbound link's peer: its node id, role, organisation and address."""

    node_id: str
    role: str
    org: str
    host: str
    port: int


@dataclass(frozen=True)
class NodeConfig:
    """Everything one node needs (built from gateway.toml or by tests)."""

    node_id: str
    role: str
    org: str
    store_url: str
    cert: Path
    key: Path
    ca: Path
    crl: Path
    # the endpoint a hosting gateway serves for the node (see gateway/jukinet/standalone.py);
    # None: no endpoint (a pure client such as kizon-juki)
    host: str = "127.0.0.1"
    port: int | None = None
    allow: tuple[AllowRule, ...] = ()
    peers: tuple[PeerAddress, ...] = ()
    # Records in flight per outbound link, and records per frame. Large frames make large
    # group-commit transactions at the next hop (a 本人確認情報 row's page is written once per
    # transaction however many of its residents changed): 3,000 898-byte records are a 2.7 MB
    # frame, and 3,000 送付先 records (2,029 bytes) stay under the links' 8 MiB frame limit.
    window: int = 40_000
    max_batch: int = 3000
    commit_delay: float = 0.002
    # Records one group-commit transaction applies at most (frames are never split: a larger
    # frame is a transaction of its own). A backlog then flows down the chain in transactions
    # of this size, each hop applying one while the next hop applies the previous one, rather
    # than as one transaction of everything queued (hops one after the other).
    commit_records: int = 3000
    # Records one 本人確認情報 search answer carries at most (1–MAX_SEARCH_LIMIT); the answer
    # says how many matched in all and whether it was cut (docs/messages.md, "Search (R3)").
    search_limit: int = DEFAULT_SEARCH_LIMIT
    pool_low_water: int = 100
    retry_initial: float = 0.05
    retry_max: float = 1.0
    send_outbox: bool = True  # False for tools (consistency-check) sharing a daemon's store
    # Several instances of this node (same identity) share one PostgreSQL store: inbound heads
    # are re-read from the store on each new connection, and each outbound link is driven by
    # whichever instance holds its lease (see juki_gateway.gateway.jukinet.shared).
    shared_store: bool = False
    instance: str = ""  # this instance's name in link leases (default: pid and a random tag)
    lease_ttl: float = 3.0
    link_poll: float = 0.1
    # SQLite only: "background" (the store's WAL checkpointer thread, off the commit path) or
    # "autocheckpoint" (SQLite's own checkpoint inside the committing call; benchmarks compare)
    sqlite_checkpoint: str = "background"


class JukinetNode(Service):
    """The domain service of one Juki-net node; see the module docstring."""

    def __init__(
        self,
        cfg: NodeConfig,
        reactor: Any,
        *,
        metrics: JukinetMetrics | None = None,
        rng: random.Random | None = None,
        link_reporting: Callable[[OutLink], LinkReporting] | None = None,
    ) -> None:
        self.cfg = cfg
        # where a hosting daemon has each outbound link report (handshake log, link status,
        # liveness PINGs); None: the links report nothing beyond the node's own metrics
        self.link_reporting = link_reporting
        self.node_id = cfg.node_id
        self.role = Role(cfg.role)
        self.reactor = reactor
        self.metrics = metrics if metrics is not None else JukinetMetrics()
        self.rng = rng if rng is not None else random.SystemRandom()
        self.outbound = Outbound(self)
        self.links = self.outbound.links  # (the same dict: tests and the host read it)
        self.receiving = Inbound(self)
        # (the same dicts: tests, the host and shared links read them)
        self.inbound = self.receiving.sequencers
        self.inbound_conn = self.receiving.conns
        self.requests = Requests(self)
        self.pending = self.requests.pending  # (the same dict)
        self.pool: JuminhyoCodePool | None = None
        #: the port the hosting gateway's listener bound for this node's endpoint (None: none)
        self.endpoint_port: int | None = None
        self.ready: Deferred[None] = Deferred()
        self.on_commit = self.receiving.on_commit
        self.ack_observers: list[Callable[[str, float], None]] = []
        self._ts_at = -1
        self._ts = ""
        self.storage = NodeStore(cfg, reactor)
        self.shared: SharedLinks | None = None

    # -- lifecycle ----------------------------------------------------------------------------------
    def startService(self) -> None:
        super().startService()
        if self.cfg.shared_store:
            from juki_gateway.gateway.jukinet.shared import SharedLinks

            self.shared = SharedLinks(self)
        links = {p.node_id: self.link_name(p.node_id) for p in self.cfg.peers}
        d = self.storage.open(links, with_pool=self.role is Role.MUNICIPAL_CS)
        d.addCallback(self._loaded)
        d.addCallbacks(lambda _: self.ready.callback(None), self.ready.errback)

    def _loaded(self, resume: Resume) -> None:
        self.receiving.load(resume.applied)
        if self.role is Role.MUNICIPAL_CS:
            self.pool = JuminhyoCodePool(resume.pool, self.rng, low_water=self.cfg.pool_low_water)
            self.pool_metrics()
            for result in ("ok", "failed"):  # series from the start: the pool alert needs them
                self.metrics.pool_refills.labels(self.node_id, result)
        if self.role in (Role.PREFECTURE, Role.KIKO):  # the search servers (R3): a series
            self.metrics.search_refusals.labels(self.node_id, SearchTooBroad.code)  # from the start
        self.outbound.load(resume.outboxes)
        if self.shared is not None:
            self.shared.start()

    @property
    def engine(self) -> Any:
        """The store's SQLAlchemy engine (None until opened)."""
        return self.storage.engine

    @property
    def committer(self) -> GroupCommitter | None:
        """Every write of the node goes through this group committer (None until opened)."""
        return self.storage.committer

    def connect(self, ports: Mapping[str, int] | None = None) -> None:
        """Start the outbound links (reconnecting clients); ``ports`` overrides peer ports
        (tests whose peers listen on ephemeral ports)."""
        self.outbound.connect(ports)

    def start_client(self, link: OutLink) -> None:
        """Start the reconnecting client of one outbound link (once :meth:`connect` was called)."""
        self.outbound.start_client(link)

    @property
    def bound_port(self) -> int:
        """The port the hosting gateway listens on for this node (useful with port 0)."""
        assert self.endpoint_port is not None, f"{self.node_id} is not served by a gateway"
        return self.endpoint_port

    def stopService(self) -> Deferred[None]:
        super().stopService()
        ds: list[Deferred[Any]] = []
        if self.shared is not None:
            ds.append(self.shared.stop())
        ds.extend(self.outbound.stop())
        self.receiving.stop()
        from twisted.internet.defer import DeferredList

        d: Deferred[Any] = DeferredList(ds)
        d.addCallback(lambda _: self.storage.flush())

        def stop_pools(_: object) -> None:
            if self.shared is not None:
                self.shared.pool.stop()
            self.storage.stop()

        d.addCallback(stop_pools)
        return d

    # -- helpers --------------------------------------------------------------------------------------
    def link_name(self, peer: str) -> str:
        """The name of the link from this node to ``peer`` (outbox rows, metrics)."""
        return f"{self.node_id}->{peer}"

    def timestamp(self) -> str:
        """The header timestamp (UTC, from the reactor's clock)."""
        now = int(self.reactor.seconds())
        if now != self._ts_at:
            self._ts_at = now
            self._ts = time.strftime("%Y%m%d%H%M%S", time.gmtime(now))
        return self._ts

    def now(self) -> dt.datetime:
        """The reactor's time as a naive UTC datetime (store columns)."""
        return dt.datetime.fromtimestamp(self.reactor.seconds(), dt.UTC).replace(tzinfo=None)

    def count_error(self, code: str) -> None:
        """Count a refusal sent by this node."""
        self.metrics.errors.labels(self.node_id, code).inc()

    def send_error(self, proto: NodeConnection, exc: JukiError, *, request_no: int = 0,
                    seq: int = 0) -> None:
        self.count_error(exc.code)
        log.info("{node}: refused {peer}: {why}", event="peer_refused", node=self.node_id, peer=proto.peer_id,
                 why=loggable(exc))
        proto.send_frame(ERROR, encode_error(exc.wire_code, exc.code, exc.message), record_count=1,
                         request_no=request_no, seq=seq)

    def msg(self, peer: str, msg_type: int, result: str, n: int = 1) -> None:
        """Count records or messages by peer, type and result."""
        try:
            name = JukinetMessage(msg_type).name
        except ValueError:
            name = f"0x{msg_type:04X}"
        self.metrics.messages.labels(self.node_id, peer, name, result).inc(n)

    # -- connections ---------------------------------------------------------------------------------
    def connection_ready(self, proto: NodeConnection) -> None:
        """A connection finished its handshake."""
        if proto.outbound_peer is not None:
            self.outbound.connection_ready(proto)

    def connection_lost(self, proto: NodeConnection) -> None:
        """A connection closed: outbound links queue; requests waiting on it fail."""
        if proto.outbound_peer is not None:
            self.outbound.connection_lost(proto)
            self.requests.link_down(proto.outbound_peer)
        else:
            if self.shared is not None:
                self.shared.connection_lost(proto)
            self.receiving.connection_lost(proto)

    # -- the frame channel ------------------------------------------------------------------------------
    def open_channel(self, proto: NodeConnection) -> FrameChannel:
        """The frame channel of a connection whose peer is known (docs/sequencing.md)."""
        admit = (self._admit_reply if proto.outbound_peer is not None
                 else self.receiving.admit_for(proto.peer_role))

        def say(message: str) -> None:
            log.info("{node}: {message}", event="session_note", node=self.node_id, message=message)

        return FrameChannel(local=self.node_id, peer=proto.peer_id, timestamp=self.timestamp,
                            catalogue=_CATALOGUE, admit=admit, log=say, conn_id=proto.conn_id)

    def peer_with_role(self, role: Role) -> str:
        """The configured peer with ``role`` (UnknownMunicipality when there is none)."""
        for p in self.cfg.peers:
            if p.role == role:
                return p.node_id
        raise UnknownMunicipality(f"{self.node_id} has no link to a {role}")

    def _admit_reply(self, h: FrameHeader) -> JukiError | None:
        """The header check of an outbound link: replies to what this node sends."""
        if h.msg_type in _REPLIES:
            return None
        return UnexpectedMessage(f"{msg_type_name(h.msg_type)} is not a reply on a link to "
                                 f"{h.sender}")

    def frames_counted(self, counts: ChannelCounts) -> None:
        """A connection's frame tallies: refused and broken frames are refusals sent."""
        for code, n in counts.errors.items():
            self.metrics.errors.labels(self.node_id, code).inc(n)

    def frame_refused(self, proto: NodeConnection, event: Refused) -> list[bytes] | None:
        """The channel refused a frame from its header: answer it (None: ERROR at once)."""
        h = event.header
        if proto.outbound_peer is not None:
            if h.request_no and h.request_no in self.pending:
                self.requests.fail(h.request_no, RemoteError(event.error.wire_code, event.error.code,
                                                             event.error.message))
                return []
            # an unreadable reply on a sequenced link: the in-order pairing of replies to frames
            # is lost, so drop the connection (the outbox resends on the next one)
            log.warn("{node}: unreadable reply from {peer} [{conn}]: {why}; reconnecting", event="reply_unreadable",
                     node=self.node_id, peer=proto.peer_id, conn=proto.conn_id,
                     why=loggable(event.error))
            proto.abort()
            return []
        if h.msg_type in SEQUENCED_TYPES and h.request_no == 0:
            self.receiving.sequenced(proto, h, None, event.error)  # its ERROR waits in order
            return []
        return None

    def frame_received(self, proto: NodeConnection, frame: Frame) -> None:
        """Dispatch one frame that passed the channel's checks."""
        mt = frame.msg_type
        if proto.outbound_peer is not None:
            if mt == PONG:
                return
            if self.requests.answer(frame):
                return
            self.outbound.reply(proto, frame)
            return
        if mt in SEQUENCED_TYPES:
            self.receiving.sequenced(proto, frame.header, frame.body, None)
        else:
            self.requests.serve(proto, frame)
        # PONG, ERROR: taken in silently (an ERROR is never answered with an ERROR)

    # -- sending sequenced messages -------------------------------------------------------------------------
    def originate(self, peer: str, msg_type: int, records: Sequence[bytes]) -> Deferred[list[int]]:
        """Queue records of this node's own on the link to ``peer`` (durably first); fires with
        their 更新順番号 once committed."""
        return self.outbound.originate(peer, msg_type, records)

    # -- requests ------------------------------------------------------------------------------------------
    def request(self, peer: str, msg_type: int, body: bytes, record_count: int,
                on_frame: Callable[[Frame], None] | None = None, *,
                seq: int = 0) -> Deferred[Frame]:
        """Send a request on the link to ``peer``; fires with the response frame (see
        :meth:`Requests.send`)."""
        return self.requests.send(peer, msg_type, body, record_count, on_frame, seq=seq)

    def finish_request(self, rn: int, frame: Frame) -> None:
        """Complete a streaming request."""
        self.requests.finish(rn, frame)

    @property
    def last_request_no(self) -> int:
        """The number of the request sent last."""
        return self.requests.last_request_no

    def pool_metrics(self) -> None:
        """The 住民票コード pool gauges."""
        if self.pool is not None:
            self.metrics.pool_size.labels(self.node_id).set(len(self.pool))
            self.metrics.pool_low.labels(self.node_id).set(1 if self.pool.is_low else 0)

    def read(self, fn: Callable[[], Any]) -> Deferred[Any]:
        """Run a blocking read on the node's reader thread."""
        return self.storage.read(fn)
