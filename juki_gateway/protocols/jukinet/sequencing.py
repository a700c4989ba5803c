"""Exactly-once, in-order delivery of sequenced messages on one link (R4), sans-IO.

Every durable message a node sends on a link (update notifications, 送付先 batches, 転入通知)
takes the next 更新順番号 of that link; a frame carries a run of consecutive numbers
(``header.seq`` = the first, ``record_count`` records). Two state machines, no I/O:

* :class:`OutboundSequencer` (sender): holds the unacked records of the durable outbox, sends
  them in frames of at most ``max_batch`` records with at most ``window`` records in flight,
  advances on cumulative ACKs, goes back to the expected number on a NACK, and on reconnect
  resends everything unacked. A resent frame carries ``recovery_seq`` (異常時更新順番号) = the
  first number of the resend run; first sends carry 0.
* :class:`InboundSequencer` (receiver): accepts number n only after n−1. A frame wholly
  before the expected number is a duplicate: acked again, not re-applied. A frame starting
  after it is a gap: NACK naming the expected number. A frame overlapping it is applied from
  the expected number on. A frame refused (for its content, its header, its number) gets an
  ERROR naming the expected number, which stays expected (docs/sequencing.md). Responses are released only once the store has committed what they
  claim (``committed(upto)``), in the order the frames arrived, so an ACK never precedes the
  commit and group commit can cover many frames.

Within one connection frames and responses travel in order (TCP), so every frame gets exactly
one response, in order; the sender matches them to its in-flight list and ignores NACKs that
answer frames sent before its latest rewind.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from juki_gateway.errors import JukiError
from juki_gateway.protocols.jukinet.errors import BadSequenceNumber, LinkProtocolError


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One sequenced record in the outbox: its 更新順番号, message type and encoded body record."""

    seq: int
    msg_type: int
    record: bytes


@dataclass(frozen=True, slots=True)
class OutFrame:
    """A frame the sender should write now: records ``first_seq`` … ``last_seq`` of one type."""

    msg_type: int
    first_seq: int
    records: tuple[bytes, ...]
    recovery_seq: int

    @property
    def last_seq(self) -> int:
        """The 更新順番号 of the last record in the frame."""
        return self.first_seq + len(self.records) - 1


@dataclass(slots=True)
class _InFlight:
    generation: int
    first_seq: int
    last_seq: int


class OutboundSequencer:
    """The sender side of a sequenced link (outbox window, resend on NACK and on reconnect)."""

    def __init__(
        self,
        *,
        acked: int = 0,
        pending: Iterable[OutRecord] = (),
        window: int = 10_000,
        max_batch: int = 500,
    ) -> None:
        if window < 1 or max_batch < 1:
            raise ValueError("window and max_batch must be positive")
        self.acked = acked
        self.last_seq = acked
        self.window = window
        self.max_batch = max_batch
        self._pending: dict[int, OutRecord] = {}
        self._sent_upto = acked
        # Highest number ever written on any connection: anything at or below it is a resend.
        self._max_sent = acked
        self._recovery_from = 0
        self._generation = 0
        self._in_flight: deque[_InFlight] = deque()
        self.connected = False
        self.resent_records = 0
        self.rewinds = 0
        #: the number the peer refused (ERROR): nothing is sent from it until a reconnection
        self.blocked: int | None = None
        #: every message type ever queued on this link
        self.msg_types: set[int] = set()
        for rec in pending:
            self.add(rec)
        # Records loaded from a durable outbox may have been sent before a restart.
        self._max_sent = self.last_seq

    # -- feeding the outbox --------------------------------------------------------------------
    def add(self, rec: OutRecord) -> None:
        """Queue a record the store has made durable; numbers must follow on without a gap."""
        if rec.seq != self.last_seq + 1:
            raise LinkProtocolError(
                f"outbox numbering broken: next 更新順番号 should be {self.last_seq + 1}, "
                f"got {rec.seq}"
            )
        self._pending[rec.seq] = rec
        self.last_seq = rec.seq
        self.msg_types.add(rec.msg_type)

    @property
    def depth(self) -> int:
        """Records queued and not yet acknowledged."""
        return self.last_seq - self.acked

    @property
    def in_flight_frames(self) -> int:
        """Frames written on the current connection that still await their response."""
        return len(self._in_flight)

    def pending_record(self, seq: int) -> OutRecord:
        """The unacked record with number ``seq``."""
        return self._pending[seq]

    # -- connection lifecycle -------------------------------------------------------------------
    def connection_made(self) -> None:
        """A (re)connection: everything unacked will be sent again, marked as a resend (a
        refused number is tried again too)."""
        self.connected = True
        self.blocked = None
        self._rewind(self.acked + 1)

    def connection_lost(self) -> None:
        """The link went down: frames in flight are forgotten; the outbox keeps everything."""
        self.connected = False
        self._in_flight.clear()

    def _rewind(self, start: int) -> None:
        self._generation += 1
        self._sent_upto = start - 1
        if self._max_sent >= start:
            self._recovery_from = start
            self.rewinds += 1

    # -- sending ----------------------------------------------------------------------------------
    def frames_to_send(self) -> list[OutFrame]:
        """Frames to write now, within the window; empty when disconnected or nothing is due."""
        out: list[OutFrame] = []
        if not self.connected or self.blocked is not None:
            return out
        while self._sent_upto < self.last_seq and self._sent_upto - self.acked < self.window:
            first = self._sent_upto + 1
            msg_type = self._pending[first].msg_type
            resend = first <= self._max_sent
            limit = min(
                self.last_seq,
                first + self.max_batch - 1,
                self.acked + self.window,
                self._max_sent if resend else self.last_seq,
            )
            records: list[bytes] = []
            seq = first
            while seq <= limit:
                rec = self._pending[seq]
                if rec.msg_type != msg_type:
                    break
                records.append(rec.record)
                seq += 1
            frame = OutFrame(msg_type, first, tuple(records), self._recovery_from if resend else 0)
            if resend:
                self.resent_records += len(records)
            self._sent_upto = frame.last_seq
            self._max_sent = max(self._max_sent, frame.last_seq)
            self._in_flight.append(_InFlight(self._generation, first, frame.last_seq))
            out.append(frame)
        return out

    # -- responses --------------------------------------------------------------------------------
    def _pop_in_flight(self, what: str) -> _InFlight:
        if not self._in_flight:
            raise LinkProtocolError(f"peer sent a {what} with no frame awaiting a response")
        return self._in_flight.popleft()

    def _advance(self, upto: int) -> list[int]:
        if upto > self._max_sent:
            raise LinkProtocolError(f"peer acknowledged 更新順番号 {upto}, never sent")
        if upto < self.acked:
            raise LinkProtocolError(
                f"peer acknowledged {upto} after acknowledging {self.acked}: it lost committed data"
            )
        done = list(range(self.acked + 1, upto + 1))
        for seq in done:
            del self._pending[seq]
        self.acked = upto
        if self._sent_upto < upto:
            self._sent_upto = upto
        return done

    def on_ack(self, seq: int) -> list[int]:
        """A cumulative ACK up to ``seq``; returns the numbers newly acknowledged."""
        self._pop_in_flight("ACK")
        return self._advance(seq)

    def on_refused(self, expected: int) -> list[int]:
        """An ERROR answering a sequenced frame: everything before ``expected`` is acked; the
        record numbered ``expected`` was refused, so the link blocks there (resending the same
        record would be refused again) until the next connection."""
        flight = self._pop_in_flight("ERROR")
        done = self._advance(expected - 1)
        if flight.generation == self._generation:
            self._rewind(expected)
            self.blocked = expected
        return done

    def on_nack(self, expected: int) -> list[int]:
        """A NACK naming the expected number: everything before it is acked; resend from it."""
        flight = self._pop_in_flight("NACK")
        done = self._advance(expected - 1)
        if flight.generation == self._generation:
            self._rewind(expected)
        return done


@dataclass(frozen=True, slots=True)
class Accepted:
    """Apply records ``skip`` … of the frame: they hold numbers ``first_seq + skip`` … ``last_seq``."""

    first_seq: int
    skip: int
    last_seq: int

    @property
    def apply_from(self) -> int:
        """The first 更新順番号 to apply."""
        return self.first_seq + self.skip


@dataclass(frozen=True, slots=True)
class Response:
    """What to write back: an ACK (``seq`` = last applied), a NACK (``seq`` = expected) or an
    ERROR refusing the frame (``seq`` = expected, ``error`` = why)."""

    kind: Literal["ack", "nack", "error"]
    seq: int
    error: JukiError | None = None


@dataclass(frozen=True, slots=True)
class _Queued:
    response: Response
    needs_durable: int


#: The largest 更新順番号 (the header field is a u64).
MAX_SEQ = (1 << 64) - 1


class InboundSequencer:
    """The receiver side of a sequenced link: apply n only after n−1, ack only after commit.

    ``expected`` − 1 is always the last number accepted; it moves only in :meth:`accept`, so a
    gap, a duplicate, a refused frame or a bad number never moves it (docs/sequencing.md).
    """

    def __init__(self, last_applied: int = 0) -> None:
        self.durable = last_applied
        self.expected = last_applied + 1
        self._queue: deque[_Queued] = deque()
        self.duplicates = 0
        self.gaps = 0
        self.refusals = 0

    def offer(self, first_seq: int, count: int) -> Accepted | None:
        """A frame with ``count`` records from ``first_seq``: what would be applied, or None for a
        duplicate (ACK queued) or a gap (NACK queued). Nothing moves until :meth:`accept` or
        :meth:`refuse`; raises BadSequenceNumber (nothing queued) for an impossible range."""
        if first_seq < 1 or count < 1 or first_seq + count - 1 > MAX_SEQ:
            raise BadSequenceNumber(
                f"更新順番号 {first_seq} with {count} records is not a run of numbers 1…{MAX_SEQ}")
        last = first_seq + count - 1
        if last < self.expected:
            self.duplicates += count
            self._queue.append(_Queued(Response("ack", self.expected - 1), self.expected - 1))
            return None
        if first_seq > self.expected:
            self.gaps += 1
            self._queue.append(_Queued(Response("nack", self.expected), self.expected - 1))
            return None
        return Accepted(first_seq, self.expected - first_seq, last)

    def accept(self, acc: Accepted) -> None:
        """Take the records of an offered frame: the expected number moves past them and their
        ACK waits for their commit."""
        if acc.apply_from != self.expected:
            raise LinkProtocolError(f"accepting from {acc.apply_from}, but {self.expected} is expected")
        self.duplicates += acc.skip
        self.expected = acc.last_seq + 1
        self._queue.append(_Queued(Response("ack", acc.last_seq), acc.last_seq))

    def refuse(self, error: JukiError) -> int:
        """Refuse a frame: ERROR naming the expected number (which stays expected), in order."""
        self.refusals += 1
        self._queue.append(_Queued(Response("error", self.expected, error), self.expected - 1))
        return self.expected

    def refuse_accepted(self, first: int, error: JukiError) -> int:
        """Refuse, after all, the accepted frame whose records start at ``first``: a check that
        needs the store (機構's 個人番号 authenticity) failed, so nothing from ``first`` on was
        applied. ``first`` is expected again; the replies queued for it and for anything
        accepted after it are dropped (their claims no longer hold) and one ERROR naming
        ``first`` takes their place, in order."""
        if not self.durable < first < self.expected:
            raise LinkProtocolError(
                f"refusing from {first}, but only {self.durable + 1}…{self.expected - 1} await commit")
        self.refusals += 1
        self.expected = first
        self._queue = deque(q for q in self._queue if q.needs_durable < first)
        self._queue.append(_Queued(Response("error", first, error), first - 1))
        return first

    def receive(self, first_seq: int, count: int) -> Accepted | None:
        """:meth:`offer` and, when there is something to apply, :meth:`accept` at once."""
        acc = self.offer(first_seq, count)
        if acc is not None:
            self.accept(acc)
        return acc

    def committed(self, upto: int) -> None:
        """The store has durably applied everything up to ``upto``."""
        if upto >= self.expected:
            raise LinkProtocolError(f"commit of {upto} reported, but only {self.expected - 1} accepted")
        self.durable = max(self.durable, upto)

    def responses(self) -> list[Response]:
        """Responses whose claims are now durable, in arrival order."""
        out: list[Response] = []
        while self._queue and self._queue[0].needs_durable <= self.durable:
            out.append(self._queue.popleft().response)
        return out

    def connection_changed(self) -> None:
        """The sender's connection dropped or was replaced: its pending responses are moot.

        Accepted records whose commit is still running stay accepted; a resend of them on the
        next connection is a duplicate whose ACK waits for that commit.
        """
        self._queue.clear()

    def commit_failed(self) -> None:
        """A commit failed: forget uncommitted acceptances (the caller drops the connection)."""
        self.expected = self.durable + 1
        self._queue.clear()
