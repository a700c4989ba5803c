"""Exactly-once, in-order delivery: the sequencing state machines under faults."""

from __future__ import annotations

import random
from collections import deque

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from juki_gateway.protocols.jukinet.errors import LinkProtocolError
from juki_gateway.protocols.jukinet.sequencing import (
    InboundSequencer,
    OutboundSequencer,
    OutFrame,
    OutRecord,
    Response,
)

UPD = 0x0101
SOU = 0x0102


def _rec(seq: int, msg_type: int = UPD) -> OutRecord:
    return OutRecord(seq, msg_type, f"r{seq}".encode())


def test_frames_batch_consecutive_records_of_one_type() -> None:
    """Consecutive records of one type share a frame, a type change starts a new frame."""
    out = OutboundSequencer(max_batch=3)
    for seq, t in enumerate([UPD, UPD, UPD, UPD, SOU, SOU, UPD], 1):
        out.add(_rec(seq, t))
    out.connection_made()
    frames = out.frames_to_send()
    assert [(f.msg_type, f.first_seq, len(f.records)) for f in frames] == [
        (UPD, 1, 3), (UPD, 4, 1), (SOU, 5, 2), (UPD, 7, 1)
    ]
    assert all(f.recovery_seq == 0 for f in frames)


def test_window_limits_records_in_flight() -> None:
    """No more than ``window`` unacked records are written; an ACK opens the window again."""
    out = OutboundSequencer(window=4, max_batch=3)
    for seq in range(1, 11):
        out.add(_rec(seq))
    out.connection_made()
    assert [f.last_seq for f in out.frames_to_send()] == [3, 4]
    assert out.on_ack(3) == [1, 2, 3]
    assert [f.last_seq for f in out.frames_to_send()] == [7]


def test_reconnect_resends_unacked_marked_with_recovery_seq() -> None:
    """After a reconnect everything unacked is sent again with 異常時更新順番号 = first resent."""
    out = OutboundSequencer(max_batch=2)
    for seq in range(1, 6):
        out.add(_rec(seq))
    out.connection_made()
    out.frames_to_send()
    out.on_ack(2)
    out.connection_lost()
    out.add(_rec(6))
    out.connection_made()
    frames = out.frames_to_send()
    assert [(f.first_seq, f.last_seq, f.recovery_seq) for f in frames] == [
        (3, 4, 3), (5, 5, 3), (6, 6, 0)
    ]
    assert out.resent_records == 3


def test_nack_rewinds_once_and_ignores_stale_nacks() -> None:
    """A NACK rewinds to the expected number; NACKs for frames sent before it do not rewind again."""
    out = OutboundSequencer(max_batch=1)
    for seq in range(1, 5):
        out.add(_rec(seq))
    out.connection_made()
    assert len(out.frames_to_send()) == 4
    assert out.on_ack(1) == [1]
    out.on_nack(2)  # frame 2 lost somewhere: resend from 2
    assert [f.first_seq for f in out.frames_to_send()] == [2, 3, 4]
    out.on_nack(2)  # stale: answers old frame 3
    out.on_nack(2)  # stale: answers old frame 4
    assert out.frames_to_send() == []
    assert out.on_ack(2) == [2]


def test_ack_for_unsent_or_backwards_is_a_protocol_error() -> None:
    """An ACK beyond what was sent, or going backwards, or with nothing in flight is refused."""
    out = OutboundSequencer()
    out.add(_rec(1))
    out.connection_made()
    out.frames_to_send()
    with pytest.raises(LinkProtocolError):
        out.on_ack(2)
    out2 = OutboundSequencer()
    with pytest.raises(LinkProtocolError):
        out2.on_ack(0)
    with pytest.raises(LinkProtocolError, match="numbering"):
        out2.add(_rec(5))


def test_receiver_applies_in_order_dedups_and_nacks_gaps() -> None:
    """n is applied only after n−1; a duplicate is re-acked; a gap gets a NACK naming the expected."""
    inb = InboundSequencer(last_applied=0)
    acc = inb.receive(1, 3)
    assert acc is not None and (acc.apply_from, acc.last_seq) == (1, 3)
    assert inb.responses() == []  # nothing before the commit
    inb.committed(3)
    assert inb.responses() == [Response("ack", 3)]
    assert inb.receive(2, 2) is None  # duplicate
    assert inb.receive(6, 1) is None  # gap
    assert inb.responses() == [Response("ack", 3), Response("nack", 4)]
    acc = inb.receive(2, 4)  # overlapping resend: apply 4..5 only
    assert acc is not None and (acc.apply_from, acc.last_seq) == (4, 5)
    assert inb.duplicates == 2 + 2 and inb.gaps == 1


def test_duplicate_ack_waits_for_pending_commit() -> None:
    """A duplicate arriving while its original is still committing is acked only after the commit."""
    inb = InboundSequencer()
    inb.receive(1, 2)
    inb.connection_changed()  # the sender reconnected before our commit finished
    assert inb.receive(1, 2) is None
    assert inb.responses() == []
    inb.committed(2)
    assert inb.responses() == [Response("ack", 2)]


def test_commit_failure_forgets_uncommitted_acceptance() -> None:
    """After a failed commit the same numbers are accepted again."""
    inb = InboundSequencer()
    inb.receive(1, 2)
    inb.commit_failed()
    acc = inb.receive(1, 2)
    assert acc is not None and acc.apply_from == 1


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 60),
    frames=st.lists(st.tuples(st.integers(1, 70), st.integers(1, 8)), max_size=80),
)
def test_receiver_never_applies_out_of_order_or_twice(n: int, frames: list[tuple[int, int]]) -> None:
    """Whatever frames arrive (dropped, reordered, duplicated), applied numbers are exactly 1..k."""
    inb = InboundSequencer()
    applied: list[int] = []
    for first, count in frames:
        count = min(count, n - first + 1)
        if count < 1:
            continue
        records = list(range(first, first + count))  # each record carries its own number
        acc = inb.receive(first, count)
        if acc is not None:
            assert acc.first_seq == first and acc.last_seq == first + count - 1
            applied.extend(records[acc.skip :])
            inb.committed(acc.last_seq)
        for r in inb.responses():
            if r.kind == "ack":
                assert r.seq <= len(applied)
            else:
                assert r.seq == len(applied) + 1
    assert applied == list(range(1, len(applied) + 1))


class _Link:
    """A simulated link: a sender and receiver joined by an in-order wire that may break."""

    def __init__(self, rng: random.Random, window: int, max_batch: int) -> None:
        self.rng = rng
        self.out = OutboundSequencer(window=window, max_batch=max_batch)
        self.inb = InboundSequencer()
        self.to_rx: deque[OutFrame] = deque()
        self.to_tx: deque[Response] = deque()
        self.applied: list[bytes] = []
        self.uncommitted: list[tuple[int, list[bytes]]] = []
        self.faults = 0
        self.next_seq = 1

    def enqueue(self) -> None:
        self.out.add(OutRecord(self.next_seq, UPD, str(self.next_seq).encode()))
        self.next_seq += 1

    def step(self, action: int) -> None:
        if action == 0:
            self.enqueue()
        elif action == 1 and self.out.connected:
            self.to_rx.extend(self.out.frames_to_send())
        elif action == 2 and self.to_rx:
            f = self.to_rx.popleft()
            acc = self.inb.receive(f.first_seq, len(f.records))
            if acc is not None:
                self.uncommitted.append((acc.last_seq, list(f.records[acc.skip :])))
            self.to_tx.extend(self.inb.responses())  # duplicates and gaps answer at once
        elif action == 3 and self.uncommitted:  # group commit of everything accepted
            for last, recs in self.uncommitted:
                self.applied.extend(recs)
                self.inb.committed(last)
            self.uncommitted.clear()
            if self.out.connected:
                self.to_tx.extend(self.inb.responses())
        elif action == 4 and self.to_tx:
            r = self.to_tx.popleft()
            if r.kind == "ack":
                self.out.on_ack(r.seq)
            else:
                self.out.on_nack(r.seq)
        elif action == 5:  # the connection drops: everything on the wire is lost
            if self.out.connected:
                self.faults += 1
            self.out.connection_lost()
            self.inb.connection_changed()
            self.to_rx.clear()
            self.to_tx.clear()
        elif action == 6 and not self.out.connected:
            self.out.connection_made()

    def drain(self) -> None:
        if not self.out.connected:
            self.out.connection_made()
        for _ in range(10_000):
            if self.out.depth == 0 and not self.to_rx and not self.to_tx:
                return
            for a in (1, 2, 3, 4):
                self.step(a)
        raise AssertionError("link did not drain")


@settings(max_examples=150, deadline=None)
@example(actions=[0, 6, 1, 2, 3, 5], window=1, max_batch=1)  # ack lost after commit, then resend
@given(
    actions=st.lists(st.integers(0, 6), max_size=400),
    window=st.integers(1, 20),
    max_batch=st.integers(1, 6),
)
def test_sender_and_receiver_deliver_exactly_once_in_order(
    actions: list[int], window: int, max_batch: int
) -> None:
    """Random drops, reconnects and interleavings still deliver every record exactly once, in order."""
    link = _Link(random.Random(0), window, max_batch)
    for a in actions:
        link.step(a)
    link.drain()
    sent = link.next_seq - 1
    assert link.applied == [str(i).encode() for i in range(1, sent + 1)]
    assert link.out.acked == sent


def test_long_fault_run_reports_zero_lost_zero_duplicated() -> None:
    """Thousands of updates over a link that breaks often arrive exactly once and in order."""
    rng = random.Random(20260401)
    link = _Link(rng, window=64, max_batch=16)
    weights = [30, 20, 20, 10, 20, 1, 5]
    for a in rng.choices(range(7), weights, k=30_000):
        link.step(a)
    link.drain()
    sent = link.next_seq - 1
    assert sent > 3000 and link.faults > 50
    seqs = [int(r) for r in link.applied]
    lost = len(set(range(1, sent + 1)) - set(seqs))
    duplicated = len(seqs) - len(set(seqs))
    print(f"{sent} sent, {link.faults} faults, {lost} lost, {duplicated} duplicated")
    assert (lost, duplicated) == (0, 0) and seqs == sorted(seqs)


def test_sequencer_remembers_every_message_type_queued() -> None:
    """msg_types names each message type ever added to the link, loaded or queued later."""
    out = OutboundSequencer(pending=[OutRecord(1, 0x0101, b"a")])
    out.add(OutRecord(2, 0x0102, b"b"))
    assert out.msg_types == {0x0101, 0x0102}
