"""Several instances of one Juki-net node (same identity) sharing one PostgreSQL store.

Used for the prefecture's redundant daemons: both accept CS connections and apply what
arrives through the shared store, and the outbound links (prefecture → 機構 …) are driven by
whichever instance holds each link's lease.

* Inbound: the in-memory :class:`InboundSequencer` of an instance may be stale (the other
  instance applied frames meanwhile), so on every new connection from a sender the instance
  re-reads that sender's inbox head from the store (through the writer, after its own queued
  commits) before it answers any frame of that connection. The store itself is the last
  word: ``check_next`` takes a per-(receiver, sender) advisory lock on PostgreSQL and refuses
  a frame that does not follow the committed head, and the inbox key refuses a duplicate.
* Outbound: every ``link_poll`` seconds one job on a dedicated thread takes or renews the
  lease of each link (``link_lease``; expiry from the injected clock) and, for links held,
  reads outbox records queued since (by either instance: numbers are handed out under the
  counter's row lock, so what is visible is a gap-free run). On takeover the send state is
  reloaded from the outbox (everything unacknowledged is resent, marked as a resend; the
  receiver's inbox makes that idempotent). On losing a lease the link is dropped.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from juki_gateway.codecs.frame import FrameHeader
from juki_gateway.errors import JukiError
from juki_gateway.gateway.jukinet.connection import NodeConnection
from juki_gateway.protocols.jukinet.sequencing import InboundSequencer, OutboundSequencer, OutRecord
from juki_gateway.registry_store import jukinet as st

if TYPE_CHECKING:
    from juki_gateway.gateway.jukinet.node import JukinetNode
    from juki_gateway.gateway.jukinet.outbound import OutLink

log = Logger(namespace="juki_gateway.jukinet.shared")

#: Per link: (lease held, acked if the state was (re)loaded else None, records).
TickResult = dict[str, tuple[bool, int | None, list[OutRecord]]]
_TAIL_LIMIT = 5000


class SharedLinks:
    """The shared-store part of one :class:`JukinetNode` instance."""

    def __init__(self, node: JukinetNode) -> None:
        self.node = node
        cfg = node.cfg
        tag = cfg.instance or f"{os.getpid()}-{node.rng.getrandbits(32):08x}"
        self.holder = f"{cfg.node_id}/{tag}"
        self.pool = ThreadPool(1, 1, name=f"{cfg.node_id}-links")
        self.pool.start()
        self._loop: LoopingCall | None = None
        self._running = False
        self._again = False
        self._resyncing: dict[str, tuple[NodeConnection, list[tuple[FrameHeader, bytes | None, JukiError | None]]]] = {}
        self.takeovers = 0

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start polling leases and outbox tails."""
        self._loop = LoopingCall(self.kick)
        self._loop.clock = self.node.reactor
        self._loop.start(self.node.cfg.link_poll, now=True).addErrback(
            lambda f: log.failure("{holder}: lease polling stopped", f, event="lease_polling_stopped", holder=self.holder))

    def stop(self) -> Deferred[None]:
        """Stop polling (the node stops the thread pool with its own)."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return succeed(None)

    # -- outbound: leases and outbox tails ----------------------------------------------------------
    def kick(self) -> None:
        """Run one lease/outbox job now (or right after the one running)."""
        if self._running:
            self._again = True
            return
        node = self.node
        if not node.running or node.engine is None:
            return
        self._running = True
        self._again = False
        wanted = {p: (link.name, link.seq.last_seq if link.active else None)
                  for p, link in node.links.items()}
        gens = {p: link.generation for p, link in node.links.items()}
        now = node.now()
        until = now + dt.timedelta(seconds=node.cfg.lease_ttl)
        d = deferToThreadPool(node.reactor, self.pool, self._work, wanted, now, until)
        d.addCallbacks(self._done, self._failed, callbackArgs=(gens,))
        d.addBoth(self._finished)

    def _work(self, wanted: dict[str, tuple[str, int | None]], now: dt.datetime,
              until: dt.datetime) -> TickResult:
        out: TickResult = {}
        with self.node.engine.begin() as conn:
            for peer, (name, last) in wanted.items():
                if not st.take_lease(conn, name, self.holder, now, until):
                    out[peer] = (False, None, [])
                elif last is None:
                    acked, pending = st.load_outbox(conn, name)
                    out[peer] = (True, acked, pending)
                else:
                    out[peer] = (True, None, st.outbox_after(conn, name, last, _TAIL_LIMIT))
        return out

    def _done(self, result: TickResult, gens: dict[str, int]) -> None:
        node = self.node
        if not node.running:
            return
        for peer, (held, acked, recs) in result.items():
            link = node.links[peer]
            if link.generation != gens[peer]:
                continue
            if not held:
                if link.active:
                    self._deactivate(link)
                continue
            if acked is not None:
                self._activate(link, acked, recs)
                continue
            added = 0
            for r in recs:
                if r.seq == link.seq.last_seq + 1:
                    link.seq.add(r)
                    added += 1
            if added:
                link.added_at.append((link.seq.last_seq, node.reactor.seconds()))
                node.outbound.pump(link)
            if len(recs) >= _TAIL_LIMIT:
                self._again = True

    def _failed(self, reason: Failure) -> None:
        log.failure("{holder}: lease/outbox poll failed", reason, event="lease_poll_failed", holder=self.holder)

    def _finished(self, result: object) -> None:
        if isinstance(result, Failure):
            log.failure("{holder}: lease/outbox poll result not applied", result, event="lease_poll_not_applied", holder=self.holder)
        self._running = False
        if self._again:
            self.node.reactor.callLater(0, self.kick)

    def _activate(self, link: OutLink, acked: int, pending: list[OutRecord]) -> None:
        node = self.node
        link.generation += 1
        link.active = True
        link.seq = OutboundSequencer(acked=acked, pending=pending, window=node.cfg.window,
                                     max_batch=node.cfg.max_batch)
        link.sent_at.clear()
        link.added_at.clear()
        if pending:
            link.added_at.append((link.seq.last_seq, node.reactor.seconds()))
        self.takeovers += 1
        log.info("{holder}: took over link {link} (acked {acked}, {n} unacknowledged)", event="link_taken_over",
                 holder=self.holder, link=link.name, acked=acked, n=len(pending))
        node.start_client(link)
        node.outbound.link_metrics(link)

    def _deactivate(self, link: OutLink) -> None:
        node = self.node
        log.warn("{holder}: lost the lease of link {link}", event="link_lease_lost", holder=self.holder, link=link.name)
        link.generation += 1
        link.active = False
        svc, proto = link.service, link.proto
        link.service = None
        link.proto = None
        link.seq = OutboundSequencer(window=node.cfg.window, max_batch=node.cfg.max_batch)
        link.sent_at.clear()
        link.added_at.clear()
        if svc is not None:
            svc.stopService()
        if proto is not None:
            proto.abort()

    # -- inbound: re-read the head on a new connection ----------------------------------------------
    def hold_inbound(self, proto: NodeConnection, h: FrameHeader, body: bytes | None,
                     error: JukiError | None) -> bool:
        """Whether a sequenced frame waits for its connection's head re-read (True: held here)."""
        node = self.node
        sender = proto.peer_id
        held = self._resyncing.get(sender)
        if held is not None and held[0] is proto:
            held[1].append((h, body, error))
            return True
        if node.inbound_conn.get(sender) is proto:
            return False
        current = node.inbound_conn.get(sender)
        if current is not None:
            current.abort()
        node.inbound_conn[sender] = proto
        self._resyncing[sender] = (proto, [(h, body, error)])
        assert node.committer is not None
        d = node.committer.submit(lambda conn: st.last_applied(conn, node.node_id, sender))
        d.addCallbacks(self._head_read, self._head_failed, callbackArgs=(sender, proto),
                       errbackArgs=(sender, proto))
        return True

    def _head_read(self, head: int, sender: str, proto: NodeConnection) -> None:
        node = self.node
        held = self._resyncing.get(sender)
        if held is None or held[0] is not proto:
            return
        del self._resyncing[sender]
        if proto.closed or node.inbound_conn.get(sender) is not proto:
            return
        log.info("{holder}: new connection from {peer}: its applied head is {head}", event="inbox_head",
                 holder=self.holder, peer=sender, head=head)
        node.inbound[sender] = InboundSequencer(head)
        for h, body, error in held[1]:
            if proto.closed:
                break
            node.receiving.sequenced(proto, h, body, error)

    def _head_failed(self, reason: Failure, sender: str, proto: NodeConnection) -> None:
        log.failure("{holder}: could not read the inbox head of {peer}", reason, event="inbox_head_unreadable",
                    holder=self.holder, peer=sender)
        held = self._resyncing.get(sender)
        if held is not None and held[0] is proto:
            del self._resyncing[sender]
        proto.abort()

    def connection_lost(self, proto: NodeConnection) -> None:
        """Forget frames held for a connection that went away."""
        held = self._resyncing.get(proto.peer_id)
        if held is not None and held[0] is proto:
            del self._resyncing[proto.peer_id]

