"""A Juki-net node's inbound side: sequencing, flow control and group commit of what peers send.

Every sequenced frame (docs/sequencing.md) goes through :meth:`Inbound.sequenced`: the
sender's :class:`InboundSequencer` offers it (duplicate → ACK, gap → NACK, a bad number →
ERROR), its records are validated (layouts, check digits, R2 on content) and routed, and one
group-commit work item applies them with the inbox row and the outbox rows for the next hop.
Only after COMMIT does :meth:`Inbound._committed` release the ACK and hand the forwarded
records to the outbound side. A refusal keeps the expected number and its ERROR waits behind
the replies to earlier frames. While the next transaction is already full, the connection
stops being read (flow control).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger
from twisted.python.failure import Failure

from juki_gateway.codecs.frame import FrameHeader
from juki_gateway.codecs.messages import MessageType, encode_error
from juki_gateway.codecs.schema import Layout
from juki_gateway.errors import JukiError, loggable
from juki_gateway.protocols.jukinet.errors import (
    BadSequenceNumber,
    RefusedInStore,
    SequenceGap,
    UnexpectedMessage,
    UnknownMunicipality,
    WrongSender,
)
from juki_gateway.protocols.jukinet.layouts import (
    MOVE_IN_NOTICE,
    SHORI_TSUBAN_NOTICE,
    SOUFUSAKI,
    decode_body,
)
from juki_gateway.protocols.jukinet.messages import (
    ACCEPTS,
    JUKINET_MESSAGES,
    SEQUENCED_TYPES,
)
from juki_gateway.protocols.jukinet.messages import JukinetMessage as M
from juki_gateway.protocols.jukinet.records import JUMINHYO_CODE_CHANGE, code_change_of
from juki_gateway.protocols.jukinet.routing import Role, cs_node_id, next_hop, prefecture_of
from juki_gateway.protocols.jukinet.sequencing import InboundSequencer, OutRecord
from juki_gateway.protocols.session import msg_type_name
from juki_gateway.registry_store import jukinet as st

if TYPE_CHECKING:
    from juki_gateway.gateway.jukinet.connection import NodeConnection
    from juki_gateway.gateway.jukinet.node import JukinetNode

log = Logger(namespace="juki_gateway.jukinet")
ACK, NACK, ERROR, PING, PONG = (MessageType.ACK, MessageType.NACK, MessageType.ERROR,
                                MessageType.PING, MessageType.PONG)
_ANY_CONNECTION = frozenset({PING, PONG, ERROR})

#: The body layout of each sequenced type (their records are validated and stored), from the
#: one message catalogue, looked up once here rather than per frame.
_LAYOUT_OF: Mapping[int, Layout] = {
    t: layout for t in SEQUENCED_TYPES if (layout := JUKINET_MESSAGES[t].layout) is not None}


def kizon_link(cs: str) -> str:
    """The outbox link of the 転入通知 a CS hands to its existing system (fetched, not pushed)."""
    return f"{cs}>kizon-juki"


def held_link(prefecture: str, municipality: str) -> str:
    """The outbox link of the 転入通知 a prefecture holds for a CS of its own it has no link to
    (that CS fetches them)."""
    return f"{prefecture}>{cs_node_id(municipality)}"


#: The provision-record kind of each sequenced type (R5).
_PROVISION_KIND: Mapping[int, str] = {
    M.UPDATE_NOTIFY: "update_notify", M.SOUFUSAKI_BATCH: "soufusaki",
    M.MOVE_IN_NOTICE: "move_in_notice", M.SHORI_TSUBAN_NOTIFY: "shori_tsuban"}


class Inbound:
    """The inbound side of one node (see the module docstring)."""

    def __init__(self, node: JukinetNode) -> None:
        self.node = node
        self.sequencers: dict[str, InboundSequencer] = {}  # by sender
        self.conns: dict[str, NodeConnection] = {}  # each sender's current connection
        # Inbound connections not read from while the next group commit is already full;
        # how often that happened, and the most records ever queued for the next commit.
        self._paused: set[NodeConnection] = set()
        self.read_pauses = 0
        self.max_queued_records = 0
        self.on_commit: list[Callable[[str, int, int], None]] = []  # (sender, msg_type, count)

    def load(self, applied: Mapping[str, int]) -> None:
        """Each sender's last applied number, read from the store at start-up."""
        for sender, last in applied.items():
            self.sequencers[sender] = InboundSequencer(last)

    def connection_lost(self, proto: NodeConnection) -> None:
        """A sender's connection closed: its pending replies are moot."""
        if self.conns.get(proto.peer_id) is proto:
            del self.conns[proto.peer_id]
            inb = self.sequencers.get(proto.peer_id)
            if inb is not None:
                inb.connection_changed()

    def stop(self) -> None:
        """Drop every sender's connection."""
        for proto in list(self.conns.values()):
            proto.abort()

    def admit_for(self, peer_role: str) -> Callable[[FrameHeader], JukiError | None]:
        """The header check of an inbound connection: the types this role takes from that role."""
        role = self.node.role

        def admit(h: FrameHeader) -> JukiError | None:
            mt = h.msg_type
            if mt in _ANY_CONNECTION:
                return None
            allowed = ACCEPTS.get((role, mt))
            if allowed is None:
                return UnexpectedMessage(f"{role} endpoint does not take message type {msg_type_name(mt)}")
            if peer_role not in allowed:
                return WrongSender(f"{peer_role} may not send {msg_type_name(mt)} to {role}")
            return None

        return admit

    # -- sequenced frames ----------------------------------------------------------------------
    def sequencer_of(self, proto: NodeConnection) -> InboundSequencer:
        """The sender's sequencer, bound to this connection (a newer connection replaces one)."""
        sender = proto.peer_id
        inb = self.sequencers.get(sender)
        if inb is None:
            inb = self.sequencers[sender] = InboundSequencer(0)
        current = self.conns.get(sender)
        if current is not proto:
            if current is not None:
                current.abort()
            inb.connection_changed()
            self.conns[sender] = proto
        return inb

    def sequenced(self, proto: NodeConnection, h: FrameHeader, body: bytes | None,
                   error: JukiError | None) -> None:
        """One sequenced frame (``error``: the channel refused it from its header)."""
        sender = proto.peer_id
        if self.node.shared is not None and self.node.shared.hold_inbound(proto, h, body, error):
            return
        inb = self.sequencer_of(proto)
        if h.recovery_seq:
            self.node.msg(sender, h.msg_type, "resent_received", h.record_count)
        if error is not None:  # refused from its header: counted by the channel
            self._refuse(proto, inb, h, error)
            return
        try:
            acc = inb.offer(h.seq, h.record_count)
        except BadSequenceNumber as exc:
            self._refuse(proto, inb, h, exc, count=True)
            return
        if acc is None:
            if h.seq > inb.expected:
                self.node.metrics.gaps.labels(self.node.node_id, sender).inc()
                self.node.msg(sender, h.msg_type, "gap", h.record_count)
                log.info("{node}: sequence gap from {peer}: expected {exp}, got {got}", event="sequence_gap",
                         node=self.node.node_id, peer=sender, exp=inb.expected, got=h.seq)
            else:
                self.node.msg(sender, h.msg_type, "duplicate", h.record_count)
            self.flush(sender)
            return
        assert body is not None
        size = _LAYOUT_OF[h.msg_type].record_length
        records = [body[i * size:(i + 1) * size] for i in range(acc.skip, h.record_count)]
        try:
            rows, forwards = self._check_and_route(proto, h.msg_type, records, acc.apply_from)
        except JukiError as exc:
            self._refuse(proto, inb, h, exc, count=True)
            return
        inb.accept(acc)
        now = self.node.now()
        first, last = acc.apply_from, acc.last_seq
        msg_type = h.msg_type

        node_id = self.node.node_id

        at_kiko = self.node.role is Role.KIKO
        across = self.node.role in (Role.PREFECTURE, Role.KIKO)  # several senders per person

        def work(conn: Any) -> dict[str, list[OutRecord]]:
            st.check_next(conn, node_id, sender, first)
            if msg_type == M.UPDATE_NOTIFY:
                if at_kiko:
                    st.check_kojin_bango(conn, rows)
                stale = st.apply_rows(conn, rows, now, across_senders=across)
                provisions = st.received_provisions(
                    "update_notify", records, provider=sender, recipient=node_id, now=now)
                for i in stale:  # received, but an other municipality's newer version stays
                    provisions[i].update(outcome="superseded", detail="older than the current "
                                         "version from another 市町村: not applied")
                st.record_provisions(conn, provisions)
            elif msg_type == M.SOUFUSAKI_BATCH:
                numbers = st.check_soufusaki(conn, records) if at_kiko else None
                st.store_soufusaki(conn, records, now, numbers)
                st.record_provisions(conn, st.received_provisions(
                    "soufusaki", records, provider=sender, recipient=node_id, now=now))
            elif msg_type == M.SHORI_TSUBAN_NOTIFY:
                if at_kiko:
                    st.keep_shori_tsuban(conn, rows, now)
                st.record_provisions(conn, [st.provision_row(
                    kind="shori_tsuban", provider=sender, recipient=node_id, subject=code,
                    items="処理通番", outcome="provided", detail="", now=now)
                    for _tsuban, code, _lg in rows])
            elif msg_type == M.MOVE_IN_NOTICE and rows:
                held: dict[str, list[bytes]] = {}
                for link, record in rows:
                    st.record_provision(conn, kind="move_in_notice", provider=sender,
                                        recipient=self.node.node_id,
                                        subject=st.notice_subject(record), items="転入通知",
                                        outcome="provided", detail="", now=now)
                    held.setdefault(link, []).append(record)
                # ... and held for whoever fetches them (MOVE_IN_NOTICE_FETCH): a CS's existing
                # system, or a CS the prefecture has no link to
                for link, records_held in held.items():
                    st.enqueue(conn, link, msg_type, records_held, now)
                if self.node.role is Role.MUNICIPAL_CS:  # the 特例転入 is done
                    st.forget_tenshutsu_shomei(conn, [st.notice_subject(r) for _l, r in rows])
            st.record_applied(conn, self.node.node_id, sender, last, msg_type, now)
            return {peer: st.enqueue(conn, self.node.link_name(peer), msg_type, recs, now)
                    for peer, recs in forwards.items() if recs}

        assert self.node.committer is not None
        d = self.node.committer.submit(work, weight=max(1, len(records)))
        d.addCallbacks(self._committed, self._commit_failed,
                       callbackArgs=(sender, msg_type, last, len(records)),
                       errbackArgs=(sender, h, first))
        d.addBoth(self._resume_reading)
        queued = self.node.committer.queued_weight
        self.max_queued_records = max(self.max_queued_records, queued)
        if queued >= self.node.cfg.commit_records:
            # Flow control: the next transaction is full, so stop decoding what the peer sends
            # (TCP pushes back on it) until a batch starts. Otherwise the reactor thread decodes
            # a whole backlog ahead of the store and holds the GIL the store thread needs
            # between SQLite calls, and the first transaction (what the next hop waits for)
            # takes as long as decoding everything.
            proto.pause()
            self._paused.add(proto)
            self.read_pauses += 1

    def _refuse(self, proto: NodeConnection, inb: InboundSequencer, h: FrameHeader,
                error: JukiError, *, count: bool = False) -> None:
        """Refuse a sequenced frame: its ERROR names the expected number, which stays expected,
        and waits behind the replies to earlier frames."""
        if count:
            self.node.count_error(error.code)
            self._record_refusal(proto.peer_id, h, error)
        expected = inb.refuse(error)
        self.node.msg(proto.peer_id, h.msg_type, "refused", h.record_count)
        log.info("{node}: refused 更新順番号 {seq} from {peer} [{conn}]: {why}; "
                 "{exp} stays expected", event="update_refused", node=self.node.node_id, seq=h.seq, peer=proto.peer_id,
                 conn=proto.conn_id, why=loggable(error), exp=expected)
        self.flush(proto.peer_id)

    def _record_refusal(self, sender: str, h: FrameHeader, error: JukiError) -> None:
        """A refused frame's provision record (R5: refused provisions are recorded too): one
        per frame, by kind, with the refusal's code (the records are not trusted enough to name
        their subjects)."""
        kind = _PROVISION_KIND.get(h.msg_type)
        committer = self.node.committer
        if kind is None or committer is None:
            return
        node_id, now, code = self.node.node_id, self.node.now(), error.code
        detail = f"{code} ({h.record_count} records from 更新順番号 {h.seq})"
        committer.submit(lambda conn: st.record_provision(
            conn, kind=kind, provider=sender, recipient=node_id, subject="-",
            items=JUKINET_MESSAGES[h.msg_type].name, outcome="refused", detail=detail, now=now))

    def _resume_reading(self, passthrough: object) -> object:
        if self._paused and self.node.committer is not None and (
                self.node.committer.queued_weight < self.node.cfg.commit_records):
            paused, self._paused = self._paused, set()
            for proto in paused:
                proto.resume()
        return passthrough

    def _check_and_route(self, proto: NodeConnection, msg_type: int, records: Sequence[bytes],
                         first_seq: int) -> tuple[list[Any], dict[str, list[bytes]]]:
        """Validate records (layout, check digits, R2 content) and decide where they go next."""
        forwards: dict[str, list[bytes]] = {}
        rows: list[Any] = []
        if msg_type == M.UPDATE_NOTIFY:
            rows = st.rows_from_records(records, first_seq)
            for municipality in {row.municipality_code for row in rows}:
                self._check_origin(proto, municipality)
            # a 住民票コード変更 must name its old code (whether this file holds it as current
            # is the store's to say, when the change is applied)
            for i in [i for i, row in enumerate(rows) if row.change_reason == JUMINHYO_CODE_CHANGE]:
                code_change_of(i, rows[i].juminhyo_code, rows[i].record)
            target = self._update_target()
            if target is not None:
                forwards[target] = list(records)
        elif msg_type == M.SOUFUSAKI_BATCH:
            for r in records:
                v = decode_body(SOUFUSAKI, r)
                self._check_origin(proto, str(v["lg_code"]))
            if self.node.role is Role.MUNICIPAL_CS:
                forwards[self.node.peer_with_role(Role.KIKO)] = list(records)
        elif msg_type == M.SHORI_TSUBAN_NOTIFY:
            for r in records:
                v = decode_body(SHORI_TSUBAN_NOTICE, r)
                self._check_origin(proto, str(v["lg_code"]))
                rows.append((str(v["shori_tsuban"]), str(v["juminhyo_code"]), str(v["lg_code"])))
            target = self._update_target()
            if target is not None:
                forwards[target] = list(records)
        elif msg_type == M.MOVE_IN_NOTICE:
            came = Role(proto.peer_role)
            for r in records:
                v = decode_body(MOVE_IN_NOTICE, r)
                dest = str(v["old_lg_code"])
                hop = next_hop(self.node.role, self.node.node_id, dest,
                               came_from=None if came is Role.KIZON_JUKI else came)
                if hop is None:
                    rows.append((kizon_link(self.node.node_id), r))
                elif hop in self.node.links:
                    forwards.setdefault(hop, []).append(r)
                elif self.node.role is Role.PREFECTURE and came is Role.KIKO:
                    rows.append((held_link(self.node.node_id, dest), r))  # fetched by that CS
                else:
                    raise UnknownMunicipality(f"{self.node.node_id} has no link to {hop} for {dest}")
        return rows, forwards

    def _check_origin(self, proto: NodeConnection, municipality: str) -> None:
        """R2 on content: a CS speaks only for its own residents, a prefecture for its own CSs."""
        role = proto.peer_role
        if role in (Role.KIZON_JUKI, Role.MUNICIPAL_CS) and municipality != proto.peer_org:
            raise WrongSender(f"{proto.peer_id} (org {proto.peer_org}) sent a record of 市町村 {municipality}")
        if role == Role.PREFECTURE and prefecture_of(municipality) != proto.peer_org:
            raise WrongSender(f"{proto.peer_id} (prefecture {proto.peer_org}) sent a record of 市町村 {municipality}")
        if self.node.role is Role.MUNICIPAL_CS and municipality != self.node.cfg.org:
            raise WrongSender(f"{self.node.node_id} keeps only 市町村 {self.node.cfg.org}, not {municipality}")
        if self.node.role is Role.PREFECTURE and prefecture_of(municipality) != self.node.cfg.org:
            raise WrongSender(f"{self.node.node_id} serves prefecture {self.node.cfg.org}, not {municipality}")

    def _update_target(self) -> str | None:
        if self.node.role is Role.MUNICIPAL_CS:
            return self.node.peer_with_role(Role.PREFECTURE)
        if self.node.role is Role.PREFECTURE:
            return self.node.peer_with_role(Role.KIKO)
        return None

    def _committed(self, forwarded: dict[str, list[OutRecord]], sender: str, msg_type: int,
                   last: int, count: int) -> None:
        inb = self.sequencers[sender]
        inb.committed(last)
        self.node.msg(sender, msg_type, "applied", count)
        for cb in self.on_commit:
            cb(sender, msg_type, count)
        self.flush(sender)
        self.node.outbound.forward(forwarded, msg_type)

    def _commit_failed(self, reason: Failure, sender: str, h: FrameHeader, first: int) -> None:
        inb = self.sequencers[sender]
        error = reason.value
        if isinstance(error, RefusedInStore) and isinstance(error, JukiError):
            # refused by a check in the store: only this frame's work was rolled back
            self.node.count_error(error.code)
            self._record_refusal(sender, h, error)
            inb.refuse_accepted(first, error)
            self.node.msg(sender, h.msg_type, "refused", h.record_count)
            log.info("{node}: refused 更新順番号 {seq} from {peer}: {why}; {exp} stays expected", event="update_refused",
                     node=self.node.node_id, seq=first, peer=sender, why=loggable(error),
                     exp=first)
            self.flush(sender)
            return
        if reason.check(st.OutOfOrderCommit) and first > inb.expected:
            return  # queued behind a frame refused above: never applied, the sender resends it
        if reason.check(st.OutOfOrderCommit):
            log.info("{node}: dropped work queued behind a failed commit from {peer}", event="queued_work_dropped",
                     node=self.node.node_id, peer=sender)
        else:
            log.failure("{node}: commit failed for frames from {peer}", reason, event="commit_failed",
                        node=self.node.node_id, peer=sender)
        inb.commit_failed()
        proto = self.conns.pop(sender, None)
        if proto is not None:
            proto.abort()

    def flush(self, sender: str) -> None:
        inb = self.sequencers[sender]
        proto = self.conns.get(sender)
        for r in inb.responses():
            if proto is None or proto.closed:
                continue
            if r.kind == "ack":
                proto.send_frame(ACK, seq=r.seq)
            elif r.kind == "error":
                err = r.error
                assert err is not None
                proto.send_frame(ERROR, encode_error(err.wire_code, err.code, err.message),
                                 record_count=1, seq=r.seq)
            else:
                gap = SequenceGap(r.seq, 0)
                proto.send_frame(NACK, encode_error(gap.wire_code, gap.code,
                                                    f"expected 更新順番号 {r.seq}"),
                                 record_count=1, seq=r.seq)
