"""A Juki-net node's outbound side: its links, the outbox pump, replies, settling.

Each configured peer is one :class:`OutLink`: an :class:`OutboundSequencer` over the durable
outbox, the current connection (a reconnecting ``ClientService``), and timing bookkeeping for
the ack-latency and oldest-unacked metrics. Records reach a link from :meth:`Outbound.originate`
(this node's own) or :meth:`Outbound.forward` (what the inbound side committed for the next
hop). Replies to sequenced frames arrive in :meth:`Outbound.reply` (docs/sequencing.md, "What a
sender does with the replies"); acknowledged runs are dropped from the outbox by
:meth:`Outbound._settle`, one statement per link at a time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twisted.application.internet import ClientService
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from juki_gateway.certs.identity import PeerIdentity
from juki_gateway.codecs.frame import Frame
from juki_gateway.codecs.messages import MessageType, decode_error
from juki_gateway.errors import JukiError, loggable
from juki_gateway.gateway.connection import LinkContext, link_service
from juki_gateway.gateway.jukinet.connection import NodeConnection
from juki_gateway.protocols.jukinet.errors import LinkProtocolError
from juki_gateway.protocols.jukinet.messages import JukinetMessage as M
from juki_gateway.protocols.jukinet.sequencing import OutboundSequencer, OutRecord
from juki_gateway.registry_store import jukinet as st

if TYPE_CHECKING:
    from juki_gateway.gateway.jukinet.node import JukinetNode, PeerAddress

log = Logger(namespace="juki_gateway.jukinet")
ACK, NACK, ERROR = MessageType.ACK, MessageType.NACK, MessageType.ERROR


@dataclass
class OutLink:
    """One outbound link: its sequencer, current connection and timing bookkeeping."""

    peer: PeerAddress
    name: str
    seq: OutboundSequencer
    proto: NodeConnection | None = None
    service: ClientService | None = None
    sent_at: deque[tuple[int, float]] = field(default_factory=deque)
    added_at: deque[tuple[int, float]] = field(default_factory=deque)
    resent_seen: int = 0
    active: bool = True  # shared store: this instance holds the link's lease
    generation: int = 0
    settle_upto: int = 0  # highest 更新順番号 the peer acknowledged
    settled: int = 0  # … and dropped from the durable outbox
    settling: bool = False
    #: reactor time the oldest unacknowledged record was queued (None: nothing unacknowledged)
    oldest_since: float | None = None
    metrics_ready: bool = False


class Outbound:
    """The links of one node (see the module docstring)."""

    def __init__(self, node: JukinetNode) -> None:
        self.node = node
        self.links: dict[str, OutLink] = {}
        self._ports: dict[str, int] = {}
        self._connected = False

    # -- set-up -----------------------------------------------------------------------------
    def load(self, outboxes: Mapping[str, tuple[int, list[OutRecord]]]) -> None:
        """Build the links from the durable outboxes read at start-up."""
        node, cfg = self.node, self.node.cfg
        now = node.reactor.seconds()
        for p in cfg.peers:
            acked, pending = outboxes[p.node_id]
            if not cfg.send_outbox:
                acked, pending = 0, []
            seq = OutboundSequencer(acked=acked, pending=pending, window=cfg.window,
                                    max_batch=cfg.max_batch)
            link = OutLink(p, node.link_name(p.node_id), seq)
            if pending:
                link.added_at.append((seq.last_seq, now))
            if node.shared is not None:
                link.active = False
                link.seq = OutboundSequencer(window=cfg.window, max_batch=cfg.max_batch)
                link.added_at.clear()
            self.links[p.node_id] = link
            self.link_metrics(link)

    def connect(self, ports: Mapping[str, int] | None = None) -> None:
        """Start the reconnecting clients; ``ports`` overrides peer ports (ephemeral in tests)."""
        self._ports.update(ports or {})
        self._connected = True
        for link in self.links.values():
            if link.service is None and link.active:
                self.start_client(link)

    def start_client(self, link: OutLink) -> None:
        """Start the reconnecting client of one link (once :meth:`connect` was called)."""
        if not self._connected or link.service is not None:
            return
        node, cfg, p = self.node, self.node.cfg, link.peer

        def app(conn_id: str, peer: PeerIdentity) -> NodeConnection:
            return NodeConnection(node, peer, conn_id, outbound_peer=p.node_id)

        reporting = node.link_reporting(link) if node.link_reporting is not None else None
        ctx = LinkContext(label=link.name, peer=p.node_id, clock=node.reactor, app_factory=app,
                          peer_role=p.role, peer_org=p.org, reporting=reporting)
        svc = link_service(ctx, reactor=node.reactor, host=p.host,
                           port=self._ports.get(p.node_id, p.port), cert=cfg.cert, key=cfg.key,
                           ca=cfg.ca, backoff_initial=cfg.retry_initial, backoff_max=cfg.retry_max,
                           cache=reporting.cache if reporting is not None else None,
                           crl=cfg.crl)
        link.service = svc
        svc.startService()

    def stop(self) -> list[Deferred[Any]]:
        """Stop every link's client service."""
        return [link.service.stopService() for link in self.links.values()
                if link.service is not None]

    # -- connections ------------------------------------------------------------------------
    def connection_ready(self, proto: NodeConnection) -> None:
        """A link connection finished its handshake: resend everything unacknowledged."""
        assert proto.outbound_peer is not None
        link = self.links[proto.outbound_peer]
        if not link.active:
            proto.abort()  # the lease moved to another instance meanwhile
            return
        if link.proto is not None and link.proto is not proto:
            link.proto.abort()
        link.proto = proto
        link.seq.connection_made()
        self.node.metrics.link_blocked.labels(self.node.node_id, link.peer.node_id).set(0)
        link.sent_at.clear()
        self.pump(link)

    def connection_lost(self, proto: NodeConnection) -> None:
        """A link connection closed: the link queues until the next one."""
        assert proto.outbound_peer is not None
        link = self.links.get(proto.outbound_peer)
        if link is not None and link.proto is proto:
            link.proto = None
            link.seq.connection_lost()
            link.sent_at.clear()

    # -- sending ----------------------------------------------------------------------------
    def originate(self, peer: str, msg_type: int, records: Sequence[bytes]) -> Deferred[list[int]]:
        """Queue records of this node's own on the link to ``peer`` (durably first); fires with
        their 更新順番号 once committed."""
        node = self.node
        link = self.links[peer]
        now = node.now()
        recs = list(records)
        assert node.committer is not None
        d = node.committer.submit(lambda conn: st.enqueue(conn, link.name, msg_type, recs, now),
                                  weight=max(1, len(recs)))

        def queued(out: list[OutRecord]) -> list[int]:
            if node.shared is not None:
                node.shared.kick()
                return [r.seq for r in out]
            for r in out:
                link.seq.add(r)
            if out:
                link.added_at.append((out[-1].seq, node.reactor.seconds()))
            self.pump(link)
            return [r.seq for r in out]

        return d.addCallback(queued)

    def forward(self, forwarded: Mapping[str, list[OutRecord]], msg_type: int) -> None:
        """Records the inbound side committed for the next hops: queue and send them."""
        node = self.node
        if node.shared is not None and forwarded:
            node.shared.kick()  # the lease holder (maybe another instance) picks them up
            for peer, recs in forwarded.items():
                node.msg(peer, msg_type, "forwarded", len(recs))
            return
        now = node.reactor.seconds()
        for peer, recs in forwarded.items():
            link = self.links[peer]
            for r in recs:
                link.seq.add(r)
            link.added_at.append((recs[-1].seq, now))
            node.msg(peer, msg_type, "forwarded", len(recs))
            self.pump(link)

    def pump(self, link: OutLink) -> None:
        """Write the frames the link's window allows now."""
        node = self.node
        if not node.cfg.send_outbox:
            return
        if link.proto is None or link.proto.closed:
            self.link_metrics(link)
            return
        now = node.reactor.seconds()
        for f in link.seq.frames_to_send():
            link.proto.send_frame(f.msg_type, b"".join(f.records), record_count=len(f.records),
                                  seq=f.first_seq, recovery_seq=f.recovery_seq)
            link.sent_at.append((f.last_seq, now))
        if link.seq.resent_records != link.resent_seen:
            node.metrics.resends.labels(node.node_id, link.peer.node_id).inc(
                link.seq.resent_records - link.resent_seen)
            link.resent_seen = link.seq.resent_records
        self.link_metrics(link)

    def link_metrics(self, link: OutLink) -> None:
        """Outbox depth, and when the oldest unacknowledged record was queued.

        The age gauge is computed when scraped (from ``oldest_since``, a float the scrape
        thread reads whole), so it keeps growing while a link is down and nothing else runs.
        """
        node, peer = self.node, link.peer.node_id
        m = node.metrics
        m.outbox_depth.labels(node.node_id, peer).set(link.seq.depth)
        while link.added_at and link.added_at[0][0] <= link.seq.acked:
            link.added_at.popleft()
        link.oldest_since = link.added_at[0][1] if link.added_at else None
        if not link.metrics_ready:  # once per link: the scrape-time age, every series at 0
            link.metrics_ready = True
            seconds = node.reactor.seconds

            def age() -> float:
                since = link.oldest_since
                return 0.0 if since is None else max(seconds() - since, 0.0)

            m.oldest_unacked.labels(node.node_id, peer).set_function(age)
            m.resends.labels(node.node_id, peer)
            m.gaps.labels(node.node_id, peer)
            m.link_blocked.labels(node.node_id, peer)

    # -- replies ----------------------------------------------------------------------------
    def reply(self, proto: NodeConnection, frame: Frame) -> None:
        """ACK, NACK or ERROR answering a sequenced frame on a link."""
        node = self.node
        assert proto.outbound_peer is not None
        link = self.links[proto.outbound_peer]
        if link.proto is not proto:
            return  # a stale connection's late frame
        mt, seq = frame.msg_type, frame.seq
        if mt in (ACK, ERROR, NACK) and seq > link.seq.acked and M.SOUFUSAKI_BATCH in link.seq.msg_types:
            # (update links never carry 送付先: no per-record scan of what an ACK covers there)
            upto = seq if mt == ACK else seq - 1
            sent_soufusaki = [
                r.record for s in range(link.seq.acked + 1, min(upto, link.seq.last_seq) + 1)
                if (r := link.seq.pending_record(s)).msg_type == M.SOUFUSAKI_BATCH
            ]
        else:
            sent_soufusaki = []
        try:
            if mt == ACK:
                self._acked(link, link.seq.on_ack(seq))
            elif mt == NACK:
                node.metrics.gaps.labels(node.node_id, link.peer.node_id).inc()
                self._acked(link, link.seq.on_nack(seq))
            elif mt == ERROR and seq > 0 and frame.header.request_no == 0:
                self._refused(link, frame)
            elif mt == ERROR:
                code, name, _detail = decode_error(frame.body)  # its text may quote our record
                log.warn("{node}: error from {peer}: {name} ({code})", event="peer_error", node=node.node_id,
                         peer=link.peer.node_id, name=name, code=code)
                return
            else:
                raise LinkProtocolError(f"unexpected message 0x{mt:04X} on an outbound link")
            if sent_soufusaki:
                at = node.now()
                assert node.committer is not None
                node.committer.submit(lambda conn: st.settle_soufusaki(conn, sent_soufusaki, at))
        except JukiError as exc:
            log.error("{node}: link to {peer} broken: {why}", event="link_broken", node=node.node_id,
                      peer=link.peer.node_id, why=loggable(exc))
            node.send_error(proto, exc)
            proto.abort()
            return
        self.pump(link)

    def _refused(self, link: OutLink, frame: Frame) -> None:
        """The peer refused the record at ``frame.seq``: the link blocks there (docs/sequencing.md)."""
        node, seq = self.node, frame.seq
        code, name, _detail = decode_error(frame.body)  # its text may quote our record
        blocked_before = link.seq.blocked
        self._acked(link, link.seq.on_refused(seq))
        if link.seq.blocked is not None and blocked_before is None:
            log.error("{node}: {peer} refused 更新順番号 {seq}: {name} ({code}); the "
                      "link is blocked at {seq} until it reconnects", event="link_blocked", node=node.node_id,
                      peer=link.peer.node_id, seq=seq, name=name, code=code)
            node.metrics.messages.labels(node.node_id, link.peer.node_id, "SEQUENCED",
                                         "refused").inc()
            node.metrics.link_blocked.labels(node.node_id, link.peer.node_id).set(1)

    def _acked(self, link: OutLink, done: list[int]) -> None:
        if not done:
            return
        node, peer = self.node, link.peer.node_id
        now = node.reactor.seconds()
        upto = done[-1]
        while link.sent_at and link.sent_at[0][0] <= upto:
            _, t = link.sent_at.popleft()
            latency = now - t
            node.metrics.ack_latency.labels(node.node_id, peer).observe(latency)
            for cb in node.ack_observers:
                cb(peer, latency)
        node.metrics.messages.labels(node.node_id, peer, "SEQUENCED", "acked").inc(len(done))
        link.settle_upto = upto
        self._settle(link)

    def _settle(self, link: OutLink) -> None:
        """Drop acknowledged records from the durable outbox, one statement at a time per link:
        acks that arrive meanwhile are covered by the next one (a record acked but not yet
        dropped is merely resent after a crash, and the peer acks it as a duplicate)."""
        node = self.node
        if link.settling or link.settle_upto <= link.settled:
            return
        link.settling = True
        name, upto, at = link.name, link.settle_upto, node.now()
        assert node.committer is not None

        def done(_: object) -> None:
            link.settling = False
            link.settled = max(link.settled, upto)
            self._settle(link)

        def failed(f: Failure) -> None:
            link.settling = False
            log.failure("{node}: settling {link} failed", f, event="settle_failed", node=node.node_id, link=name)

        node.committer.submit(lambda conn: st.settle(conn, name, upto, at)).addCallbacks(done, failed)
