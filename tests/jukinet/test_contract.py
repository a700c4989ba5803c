"""The link contract of docs/sequencing.md, attacked over real mutual TLS with real stores.

A hypothesis state machine plays a hostile existing system (既存住基) against a municipal CS:
valid frames, overlaps, gaps, duplicates, headers that lie about their body, records refused
for their content, refused numbers resent unchanged and corrected, bad numbers, wrong header
identities, reconnects. It predicts every reply from the contract's tables and, after every
step, checks the invariant against the CS's store: the last number applied is the last number
ACKed, and the records applied and queued for the next hop are exactly the ACKed ones, once
each, in order. The machine runs in a thread and drives the reactor with
``blockingCallFromThread``, so the daemon side is the real one: TLS, channel, node, SQLite.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as hs
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from twisted.internet import defer, threads
from twisted.internet.threads import blockingCallFromThread

from juki_gateway.codecs.frame import Frame, encode_frame
from juki_gateway.codecs.messages import MessageType, decode_error
from juki_gateway.gateway.jukinet.node import JukinetNode
from juki_gateway.gateway.jukinet.topology import make_chain
from juki_gateway.protocols.catalogue import link_record_lengths
from juki_gateway.protocols.intermediate.messages import ImsMessageType
from juki_gateway.protocols.jukinet.messages import JukinetMessage as M
from juki_gateway.protocols.jukinet.records import JUMINHYO_CODE_CHANGE, honnin_kakunin_record
from juki_gateway.registry_store import jukinet as st
from juki_gateway.simulators.client import FrameConnection, Identity, open_connection
from juki_gateway.simulators.resident_events import TENKYO, encode_change, new_resident, serial_of
from tests.jukinet.conftest import NOW, node_read, start_nodes, stop_nodes, wait_for

SENDER, CS = "kizon-172014", "cs-172014"
#: A failing run stops at the first failing example (printed step by step) rather than
#: shrinking it over many more runs against the live node: the tests stay bounded in time.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)
TS = NOW.strftime("%Y%m%d%H%M%S")
RECORD = 898


class Wire:
    """The hostile sender's frames and a connection to the CS, driven from a worker thread."""

    def __init__(self, reactor: Any, node: JukinetNode, port: int, pki: Path, *,
                 next_hop_down: bool) -> None:
        self.reactor = reactor
        self.next_hop_down = next_hop_down  # the CS's outbox then keeps what it queued
        self.node = node
        self.port = port
        self.ident = Identity.from_pki(pki, SENDER)
        self.rng = random.Random(7)
        self.residents = [new_resident(self.rng, i, "172014") for i in range(1, 6)]
        self.serial = 0
        self.conn: FrameConnection | None = None

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return blockingCallFromThread(self.reactor, fn, *args)

    def connect(self) -> None:
        async def go() -> FrameConnection:
            return await open_connection(self.reactor, "127.0.0.1", self.port, self.ident, CS)

        if self.conn is not None:
            self.call(self.conn.close)
        self.conn = self.call(lambda: defer.Deferred.fromCoroutine(go()))

    def exchange(self, frames: list[bytes]) -> list[Frame]:
        """Write ``frames`` back to back and wait for as many answers."""
        conn = self.conn
        assert conn is not None

        async def go() -> list[Frame]:
            return await conn.request(b"".join(frames), len(frames), timeout=5.0)

        result: list[Frame] = self.call(lambda: defer.Deferred.fromCoroutine(go()))
        return result

    def store(self, fn: Callable[[Any], Any]) -> Any:
        return self.call(node_read, self.node, fn)

    # -- records and frames -------------------------------------------------------------------
    def good(self) -> bytes:
        self.serial += 1
        who = self.residents[self.serial % len(self.residents)]
        return encode_change(who, "172014", TENKYO, self.serial, NOW.date())

    def foreign(self) -> bytes:
        """A record of another municipality: refused with 5104 (R2)."""
        self.serial += 1
        who = new_resident(self.rng, 900 + self.serial, "131016")
        return encode_change(who, "131016", TENKYO, self.serial, NOW.date())

    def code_change_of_a_stranger(self) -> bytes:
        """A 住民票コード変更 whose 旧住民票コード is nobody the CS holds: refused in the CS's
        store (5116), after the frame was accepted, so the sequencer takes it back."""
        self.serial += 1
        stranger = new_resident(self.rng, 800 + self.serial, "172014")
        new = new_resident(self.rng, 850 + self.serial, "172014")
        return honnin_kakunin_record(
            juminhyo_code=new.juminhyo_code, kanji_name=new.name_kanji, kana_name=new.name_kana,
            birth_date=new.birth_date, sex=new.sex, lg_code="172014",
            address=new.address, change_reason=JUMINHYO_CODE_CHANGE,
            change_date=NOW.strftime("%Y%m%d"), seq=self.serial,
            old_juminhyo_code=stranger.juminhyo_code)

    def bad_check_digit(self) -> bytes:
        """A valid record whose 住民票コード has its check digit changed."""
        rec = bytearray(self.good())
        rec[10] = ord("0") + (rec[10] - ord("0") + 1) % 10
        return bytes(rec)

def _update(seq: int, records: list[bytes], *, count: int | None = None, sender: str = SENDER,
            receiver: str = CS) -> bytes:
    """An UPDATE_NOTIFY frame (``count`` overrides the header's record_count: a lying header)."""
    return encode_frame(M.UPDATE_NOTIFY, sender, receiver, b"".join(records),
                        record_count=len(records) if count is None else count, seq=seq, timestamp=TS)


def _refusal(frame: Frame) -> tuple[str, int, int]:
    """(kind, seq, code) of a reply."""
    kind = MessageType(frame.msg_type).name
    code = decode_error(frame.body)[0] if frame.msg_type in (MessageType.ERROR, MessageType.NACK) else 0
    return kind, frame.header.seq, code


FRAME_KINDS = ("next", "next", "overlap", "duplicate", "gap", "lying_header", "wrong_sender",
               "check_digit", "resend_refused", "seq_zero", "wrong_identity", "too_many",
               "refused_in_store")
#: A frame refused by the store after acceptance leaves frames pipelined behind it without a
#: reply (docs/sequencing.md): in a burst it comes last.
LAST_IN_BURST = "refused_in_store"


def make_machine(wire: Wire) -> type[RuleBasedStateMachine]:
    """The state machine class bound to one running CS."""

    class LinkContract(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            wire.connect()
            self.expected = wire.store(lambda c: st.last_applied(c, CS, SENDER)) + 1
            self.base_versions = wire.store(st.count_versions)
            self.base_outbox = len(wire.store(lambda c: st.load_outbox(c, f"{CS}->pref-17"))[1])
            self.applied: list[bytes] = []  # ACKed in this example, in order
            self.refused: bytes | None = None  # the record refused at self.expected

        def _predict(self, kind: str, n: int) -> tuple[bytes, tuple[str, int, int]]:
            """The frame of one kind and the reply the contract promises for it."""
            e = self.expected
            if kind == "next" or (kind in ("overlap", "duplicate") and e == 1):
                recs = [wire.good() for _ in range(n)]
                self.applied += recs
                self.expected += n
                self.refused = None
                return _update(e, recs), ("ACK", e + n - 1, 0)
            if kind == "overlap":
                first = max(1, e - n)
                old = [wire.good() for _ in range(e - first)]  # skipped unread by the CS
                new = [wire.good() for _ in range(n)]
                self.applied += new
                self.expected += n
                self.refused = None
                return _update(first, [*old, *new]), ("ACK", e + n - 1, 0)
            if kind == "duplicate":
                return _update(max(1, e - n), [wire.good()]), ("ACK", e - 1, 0)
            if kind == "gap":
                return _update(e + n, [wire.good()]), ("NACK", e, 5101)
            if kind == "lying_header":
                return _update(e, [wire.good()], count=[0xFFFFFFFF, 5, 0][n % 3]), ("ERROR", e, 2112)
            if kind == "wrong_sender":
                self.refused = wire.foreign()
                return _update(e, [self.refused]), ("ERROR", e, 5104)
            if kind == "check_digit":
                self.refused = wire.bad_check_digit()
                return _update(e, [self.refused]), ("ERROR", e, 5103)
            if kind == "refused_in_store":
                self.refused = wire.code_change_of_a_stranger()
                return _update(e, [self.refused]), ("ERROR", e, 5116)
            if kind == "resend_refused":
                if self.refused is None:
                    return self._predict("gap", n)
                code = (5104 if self.refused[302:308] == b"131016"
                        else 5116 if self.refused[776:778] == JUMINHYO_CODE_CHANGE.encode()
                        else 5103)
                return _update(e, [self.refused]), ("ERROR", e, code)
            if kind == "seq_zero":
                return _update(0, [wire.good()]), ("ERROR", e, 5113)
            if kind == "wrong_identity":
                return _update(e, [wire.good()], sender="kizon-131016"), ("ERROR", e, 2113)
            assert kind == "too_many"
            return _update(e, [wire.good()] * 3001), ("ERROR", e, 2114)

        @rule(kinds=hs.lists(hs.tuples(hs.sampled_from(FRAME_KINDS), hs.integers(1, 3)),
                             min_size=1, max_size=4))
        def send_burst(self, kinds: list[tuple[str, int]]) -> None:
            """Pipelined frames: every one gets its reply, in order, as the contract says."""
            if LAST_IN_BURST in [k for k, _ in kinds]:
                kinds = kinds[:[k for k, _ in kinds].index(LAST_IN_BURST) + 1]
            predicted = [self._predict(kind, n) for kind, n in kinds]
            replies = wire.exchange([f for f, _ in predicted])
            assert [_refusal(r) for r in replies] == [p for _, p in predicted], kinds

        @rule()
        def foreign_type(self) -> None:
            """A catalogued type the CS does not take (FUGO_REQUEST) gets the role refusal 5110."""
            size = link_record_lengths()[ImsMessageType.FUGO_REQUEST]
            frame = encode_frame(ImsMessageType.FUGO_REQUEST, SENDER, CS, b"\x00" * size,
                                 record_count=1, request_no=9, timestamp=TS)
            [reply] = wire.exchange([frame])
            assert reply.msg_type == MessageType.ERROR and reply.header.request_no == 9
            assert decode_error(reply.body)[0] == 5110

        @precondition(lambda self: self.refused is not None)
        @rule()
        def corrected_resend(self) -> None:
            """The refused number resent with a corrected record is applied and ACKed."""
            e = self.expected
            rec = wire.good()
            [reply] = wire.exchange([_update(e, [rec])])
            assert _refusal(reply) == ("ACK", e, 0)
            self.applied.append(rec)
            self.expected += 1
            self.refused = None

        @rule()
        def reconnect(self) -> None:
            """A new connection keeps the expected number."""
            wire.connect()

        @invariant()
        def acks_are_exactly_the_applied_records(self) -> None:
            """ACK n ⇔ records up to n applied at the CS and queued for the prefecture, once each."""
            assert wire.store(lambda c: st.last_applied(c, CS, SENDER)) == self.expected - 1
            assert wire.store(st.count_versions) - self.base_versions == len(self.applied)
            if not wire.next_hop_down:
                return
            _acked, pending = wire.store(lambda c: st.load_outbox(c, f"{CS}->pref-17"))
            queued = [r.record for r in pending[self.base_outbox:]]
            assert [serial_of(r) for r in queued] == [serial_of(r) for r in self.applied]

        def teardown(self) -> None:
            if wire.conn is not None:
                wire.call(wire.conn.close)
                wire.conn = None

    return LinkContract


@pytest_twisted.inlineCallbacks
def test_ack_invariant_holds_against_a_hostile_sender(tmp_path: Path) -> Generator[Any, Any, None]:
    """Whatever mix of valid, lying, refused, duplicate and gapped frames a sender writes, an
    ACK for n means exactly records 1..n are applied and queued for the next hop, once each."""
    from twisted.internet import reactor

    cfgs = make_chain(tmp_path, NOW, nodes=("kizon-172014", "cs-172014", "pref-17"))
    nodes = yield start_nodes(reactor, cfgs, (CS,))  # the prefecture stays down: the CS queues
    try:
        wire = Wire(reactor, nodes[CS], nodes[CS].bound_port, tmp_path / "pki", next_hop_down=True)
        machine = make_machine(wire)
        cfg = settings(max_examples=12, stateful_step_count=12, deadline=None, derandomize=True, phases=NO_SHRINK,
                       suppress_health_check=list(HealthCheck))
        yield threads.deferToThread(run_state_machine_as_test, machine, settings=cfg)
        # the runs did reach the refusal taken back after acceptance (a check in the store)
        refused = nodes[CS].metrics.errors.labels(CS, "juminhyo_code_change_refused")
        assert refused._value.get() > 0
    finally:
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_hostile_mix_through_the_chain_reaches_kiko_exactly_once_in_order(
    tmp_path: Path,
) -> Generator[Any, Any, None]:
    """The same hostile mix sent to the CS of CS → prefecture → 機構: the numbers the CS ACKed
    are exactly the records 機構 applied, once each, in the order they were ACKed."""
    from twisted.internet import reactor

    cfgs = make_chain(tmp_path, NOW)
    nodes = yield start_nodes(reactor, cfgs, (CS, "pref-17", "kiko"))
    try:
        wire = Wire(reactor, nodes[CS], nodes[CS].bound_port, tmp_path / "pki", next_hop_down=False)
        steps = [["next", "lying_header", "next"], ["wrong_sender", "next", "resend_refused"],
                 ["gap", "seq_zero", "wrong_identity"], ["check_digit"], ["overlap", "duplicate"],
                 ["too_many", "next"], ["next", "next", "lying_header", "overlap"]]

        def drive() -> list[bytes]:
            machine = make_machine(wire)()  # in this thread: it blocks on the reactor
            for i, kinds in enumerate(steps):
                machine.send_burst([(k, 1 + i % 3) for k in kinds])
                if machine.refused is not None and i % 2:
                    machine.corrected_resend()
                if i == 3:
                    machine.reconnect()
                machine.acks_are_exactly_the_applied_records()
            machine.teardown()
            return machine.applied

        applied: list[bytes] = yield threads.deferToThread(drive)
        assert len(applied) >= 10

        def at_kiko() -> defer.Deferred[bool]:
            return node_read(nodes["kiko"], lambda c: st.count_versions(c) >= len(applied))

        yield wait_for(reactor, at_kiko, 30, "機構 applied every ACKed record")
        versions: dict[str, list[bytes]] = yield node_read(nodes["kiko"], st.versions)
        kept = sorted(serial_of(r) for recs in versions.values() for r in recs)
        assert kept == [serial_of(r) for r in applied]  # once each: no more, no fewer
        for recs in versions.values():  # in order: each resident's versions in ACK order
            serials = [serial_of(r) for r in recs]
            assert serials == sorted(serials)
        expected_at_kiko = yield node_read(nodes["kiko"], lambda c: st.last_applied(c, "kiko", "pref-17"))
        assert expected_at_kiko == len(applied)
    finally:
        yield stop_nodes(nodes)



# -- one test per defect the contract fixes ----------------------------------------------------


@defer.inlineCallbacks
def _endpoint(reactor: Any, tmp_path: Path, names: tuple[str, ...] = (CS,),
              client: str = SENDER, server: str = CS) -> Generator[Any, Any, tuple[Any, Any]]:
    """Running nodes ``names`` (the prefecture down unless named) and a connection to ``server``."""
    cfgs = make_chain(tmp_path, NOW, nodes=("kizon-172014", "cs-172014", "pref-17", "kiko"))
    nodes = yield start_nodes(reactor, cfgs, names)
    conn = yield defer.Deferred.fromCoroutine(open_connection(
        reactor, "127.0.0.1", nodes[server].bound_port, Identity.from_pki(tmp_path / "pki", client),
        server))
    return nodes, conn


def _record(serial: int, municipality: str = "172014") -> bytes:
    who = new_resident(random.Random(serial), serial, municipality)
    return encode_change(who, municipality, TENKYO, serial, NOW.date())


@defer.inlineCallbacks
def _ask(conn: FrameConnection, *frames: bytes) -> Generator[Any, Any, list[tuple[str, int, int]]]:
    replies = yield defer.Deferred.fromCoroutine(conn.request(b"".join(frames), len(frames)))
    return [_refusal(r) for r in replies]


@pytest_twisted.inlineCallbacks
def test_a_header_lying_about_its_body_does_not_burn_sequence_numbers(
    tmp_path: Path,
) -> Generator[Any, Any, None]:
    """record_count 0xFFFFFFFF (at the CS) or 5 (at the prefecture) on a one-record body gets
    ERROR 2112 naming the expected number, and the next legitimate frame is applied, not taken
    for a duplicate."""
    from twisted.internet import reactor

    nodes, conn = yield _endpoint(reactor, tmp_path, (CS,))
    try:
        got = yield _ask(conn, _update(1, [_record(1)], count=0xFFFFFFFF), _update(1, [_record(2)]))
        assert got == [("ERROR", 1, 2112), ("ACK", 1, 0)]
        applied = yield node_read(nodes[CS], lambda c: st.last_applied(c, CS, SENDER))
        assert applied == 1 and nodes[CS].inbound[SENDER].duplicates == 0
        yield conn.close()
    finally:
        yield stop_nodes(nodes)
    nodes, conn = yield _endpoint(reactor, tmp_path / "p", ("pref-17",), client=CS, server="pref-17")
    try:
        frames = [_update(s, [_record(s)], sender=CS, receiver="pref-17") for s in range(1, 6)]
        got = yield _ask(conn, *frames,
                         _update(6, [_record(6)], count=5, sender=CS, receiver="pref-17"),
                         _update(6, [_record(6)], sender=CS, receiver="pref-17"))
        assert got[-2:] == [("ERROR", 6, 2112), ("ACK", 6, 0)]
        yield conn.close()
    finally:
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_a_refused_record_keeps_its_number_and_its_corrected_resend_is_applied(
    tmp_path: Path,
) -> Generator[Any, Any, None]:
    """5104 (another municipality's record) and 5103 (a bad check digit) leave the number
    expected: resent unchanged it is refused again; corrected it is applied and ACKed."""
    from twisted.internet import reactor

    nodes, conn = yield _endpoint(reactor, tmp_path)
    try:
        bad_digit = bytearray(_record(2))
        bad_digit[10] = ord("0") + (bad_digit[10] - ord("0") + 1) % 10
        got = yield _ask(conn, _update(1, [_record(1)]), _update(2, [_record(2, "131016")]),
                         _update(3, [_record(3)]), _update(2, [_record(2, "131016")]),
                         _update(2, [bytes(bad_digit)]), _update(2, [_record(2)]))
        assert got == [("ACK", 1, 0), ("ERROR", 2, 5104), ("NACK", 2, 5101), ("ERROR", 2, 5104),
                       ("ERROR", 2, 5103), ("ACK", 2, 0)]
        versions = yield node_read(nodes[CS], st.versions)
        assert sorted(serial_of(r) for rs in versions.values() for r in rs) == [1, 2]
        yield conn.close()
    finally:
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_seq_zero_gets_an_error_and_the_connection_stays_open(tmp_path: Path) -> Generator[Any, Any, None]:
    """UPDATE_NOTIFY numbered 0 gets ERROR 5113 naming the expected number; the same
    connection then carries number 1."""
    from twisted.internet import reactor

    nodes, conn = yield _endpoint(reactor, tmp_path)
    try:
        got = yield _ask(conn, _update(0, [_record(1)]))
        assert got == [("ERROR", 1, 5113)] and not conn.is_closed
        got = yield _ask(conn, _update(1, [_record(1)]))
        assert got == [("ACK", 1, 0)]
        yield conn.close()
    finally:
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_fatal_frame_errors_are_counted_and_logged(tmp_path: Path) -> Generator[Any, Any, None]:
    """Bad magic gets ERROR 2101 and a close; a stream closed inside a frame is counted as
    truncated_frame; each is logged with the peer and the connection id."""
    from twisted.internet import reactor
    from twisted.logger import globalLogPublisher

    seen: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        if "message" in event and "node" in event:
            seen.append(str(event["message"]))

    globalLogPublisher.addObserver(observe)
    nodes, conn = yield _endpoint(reactor, tmp_path)
    try:
        cs = nodes[CS]
        ping = encode_frame(MessageType.PING, SENDER, CS, timestamp=TS)
        got = yield _ask(conn, b"XXXX" + ping[4:])
        assert got == [("ERROR", 0, 2101)]
        yield wait_for(reactor, lambda: conn.is_closed, 10, "the connection closed")
        conn2 = yield defer.Deferred.fromCoroutine(open_connection(
            reactor, "127.0.0.1", cs.bound_port, Identity.from_pki(tmp_path / "pki", SENDER), CS))
        conn2.send(_update(1, [_record(1)])[:500])
        yield conn2.close()

        def errors(code: str) -> float:
            return float(cs.metrics.errors.labels(CS, code)._value.get())

        yield wait_for(reactor, lambda: errors("truncated_frame") == 1, 10, "truncated counted")
        assert errors("bad_magic") == 1
        assert any("bad_magic" in m and SENDER in m and "[C" in m for m in seen), seen
        assert any("truncated_frame" in m and SENDER in m for m in seen), seen
    finally:
        globalLogPublisher.removeObserver(observe)
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_a_type_this_role_does_not_take_gets_the_role_refusal(tmp_path: Path) -> Generator[Any, Any, None]:
    """FUGO_REQUEST (an intermediate-server type) sent to a CS gets 5110 unexpected_message,
    not 2111 unknown type; an unknown type still gets 2111; the connection stays open."""
    from twisted.internet import reactor

    nodes, conn = yield _endpoint(reactor, tmp_path)
    try:
        size = link_record_lengths()[ImsMessageType.FUGO_REQUEST]
        fugo = encode_frame(ImsMessageType.FUGO_REQUEST, SENDER, CS, b"\x00" * size,
                            record_count=1, request_no=4, timestamp=TS)
        unknown = encode_frame(0x7E7E, SENDER, CS, timestamp=TS, request_no=5)
        got = yield _ask(conn, fugo, unknown)
        assert got == [("ERROR", 0, 5110), ("ERROR", 0, 2111)]
        got = yield _ask(conn, encode_frame(MessageType.PING, SENDER, CS, timestamp=TS))
        assert got == [("PONG", 0, 0)]
        yield conn.close()
    finally:
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_a_header_naming_another_sender_or_receiver_is_refused(
    tmp_path: Path,
) -> Generator[Any, Any, None]:
    """A header whose sender is not the certificate's name, or whose receiver is not this
    endpoint, gets ERROR 2113 naming the expected number; nothing is applied."""
    from twisted.internet import reactor

    nodes, conn = yield _endpoint(reactor, tmp_path)
    try:
        got = yield _ask(conn, _update(1, [_record(1)], sender="kizon-131016"),
                         _update(1, [_record(1)], receiver="pref-17"), _update(1, [_record(1)]))
        assert got == [("ERROR", 1, 2113), ("ERROR", 1, 2113), ("ACK", 1, 0)]
        yield conn.close()
    finally:
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_ack_invariant_holds_on_a_gateway_hosted_endpoint(tmp_path: Path) -> Generator[Any, Any, None]:
    """The same hostile sender against the CS as ``juki-gateway serve`` hosts it (the gateway's
    listener, per-peer cap and read gate in front of the node): the invariant holds there too."""
    from twisted.internet import reactor

    from juki_gateway.gateway.config import load_config
    from juki_gateway.gateway.service import makeService
    from juki_gateway.registry_store.migrate import upgrade
    from tests.gateway_support import make_workdir

    root = make_workdir(tmp_path, links=True)
    config = load_config(root / "gateway.toml")
    upgrade(config.store.url)
    gateway = makeService(config, reactor)
    gateway.startService()
    try:
        yield gateway.whenListening()
        node = gateway.jukinet.nodes[CS]
        yield wait_for(reactor, lambda: node.committer is not None, 20, "the CS store open")
        wire = Wire(reactor, node, gateway.listeners[CS].bound_port(), root / "pki",
                    next_hop_down=False)
        cfg = settings(max_examples=6, stateful_step_count=10, deadline=None, derandomize=True, phases=NO_SHRINK,
                       suppress_health_check=list(HealthCheck))
        yield threads.deferToThread(run_state_machine_as_test, make_machine(wire), settings=cfg)
    finally:
        yield gateway.stopService()


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
@pytest_twisted.inlineCallbacks
def test_ack_invariant_holds_on_a_shared_store_instance(
    store_url: str, tmp_path: Path,
) -> Generator[Any, Any, None]:
    """The same hostile sender against a CS instance sharing a PostgreSQL store (each new
    connection re-reads the sender's applied head before its frames are handled): the
    invariant holds there too."""
    from dataclasses import replace

    from twisted.internet import reactor

    cfgs = make_chain(tmp_path, NOW, nodes=("kizon-172014", "cs-172014", "pref-17"),
                      store_urls={CS: store_url})
    cfgs[CS] = replace(cfgs[CS], shared_store=True, link_poll=0.05)
    nodes = yield start_nodes(reactor, cfgs, (CS,))
    try:
        wire = Wire(reactor, nodes[CS], nodes[CS].bound_port, tmp_path / "pki", next_hop_down=True)
        cfg = settings(max_examples=5, stateful_step_count=10, deadline=None, derandomize=True, phases=NO_SHRINK,
                       suppress_health_check=list(HealthCheck))
        yield threads.deferToThread(run_state_machine_as_test, make_machine(wire), settings=cfg)
    finally:
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_ack_invariant_holds_for_move_in_notices_a_prefecture_forwards_or_holds(
    tmp_path: Path,
) -> Generator[Any, Any, None]:
    """The contract on the path 転入通知 take down from 機構, attacked by a hostile 機構 over
    real mutual TLS: 石川 forwards a notice for 金沢 on its link to 金沢's CS and holds one for
    野々市 (a CS it has no link to) until that CS fetches it. Runs, duplicates, overlaps, a gap,
    a notice for another prefecture, a broken check digit and number 0, with reconnects; after
    every step the last number applied is the last ACKed, and the notices queued for 金沢's CS
    and held for 野々市 are exactly the ACKed ones, once each, in order."""
    from twisted.internet import reactor

    from juki_gateway.protocols.jukinet.layouts import MOVE_IN_NOTICE, encode_body

    pref, hostile = "pref-17", "kiko"
    at = MOVE_IN_NOTICE.offsets[[f.name for f in MOVE_IN_NOTICE.fields].index("old_lg_code")]
    to = slice(at, at + 6)  # the destination: 転入前 市町村コード
    chain = make_chain(tmp_path, NOW, nodes=(pref, hostile, "cs-172014"))  # not cs-172031
    nodes = yield start_nodes(reactor, chain, names=(pref,))  # links down: queues stay
    node = nodes[pref]
    ident = Identity.from_pki(tmp_path / "pki", hostile)
    rng = random.Random(11)
    people = [new_resident(rng, i, "172014") for i in range(1, 40)]
    serial = [0]

    def notice(old: str) -> bytes:
        serial[0] += 1
        p = people[serial[0] % len(people)]
        return encode_body(MOVE_IN_NOTICE, {
            "juminhyo_code": p.juminhyo_code, "new_lg_code": "162019", "old_lg_code": old,
            "kanji_name": p.name_kanji, "birth_date": p.birth_date,
            "new_address": "富山県富山市新桜町７番３８号", "move_in_date": "20260401"})

    def frame(seq: int, records: list[bytes]) -> bytes:
        return encode_frame(M.MOVE_IN_NOTICE, hostile, pref, b"".join(records),
                            record_count=len(records), seq=seq, timestamp=TS)

    expected = 1
    acked: list[bytes] = []
    conn: FrameConnection | None = None

    def send(data: bytes) -> defer.Deferred[tuple[str, int, int]]:
        assert conn is not None
        return defer.Deferred.fromCoroutine(conn.request(data, 1, timeout=5.0)).addCallback(
            lambda replies: _refusal(replies[0]))

    def check() -> defer.Deferred[None]:
        def read(c: Any) -> tuple[int, list[bytes], list[bytes]]:
            _a, down = st.load_outbox(c, f"{pref}->cs-172014")
            _b, held = st.load_outbox(c, f"{pref}>cs-172031")
            return (st.last_applied(c, pref, hostile), [r.record for r in down],
                    [r.record for r in held])

        def compare(got: tuple[int, list[bytes], list[bytes]]) -> None:
            last, down, held = got
            assert last == expected - 1
            assert down == [r for r in acked if r[to] == b"172014"]
            assert held == [r for r in acked if r[to] == b"172031"]

        return node_read(node, read).addCallback(compare)

    try:
        conn = yield defer.Deferred.fromCoroutine(
            open_connection(reactor, "127.0.0.1", node.bound_port, ident, pref))
        for step in range(24):
            kind = ("run", "duplicate", "overlap", "gap", "foreign", "check_digit", "zero",
                    "reconnect")[step % 8]
            e = expected
            if kind == "run" or (kind in ("duplicate", "overlap") and e == 1):
                recs = [notice(rng.choice(("172014", "172031"))) for _ in range(1 + step % 3)]
                assert (yield send(frame(e, recs))) == ("ACK", e + len(recs) - 1, 0)
                acked += recs
                expected += len(recs)
            elif kind == "duplicate":
                assert (yield send(frame(e - 1, [acked[-1]]))) == ("ACK", e - 1, 0)
            elif kind == "overlap":
                new = notice("172031")
                assert (yield send(frame(e - 1, [acked[-1], new]))) == ("ACK", e, 0)
                acked.append(new)
                expected += 1
            elif kind == "gap":
                assert (yield send(frame(e + 2, [notice("172014")]))) == ("NACK", e, 5101)
            elif kind == "foreign":  # a notice for 東京's CS does not belong to 石川
                assert (yield send(frame(e, [notice("131016")]))) == ("ERROR", e, 5104)
            elif kind == "check_digit":
                bad = bytearray(notice("172014"))
                bad[10] = ord("0") + (bad[10] - ord("0") + 1) % 10
                assert (yield send(frame(e, [bytes(bad)]))) == ("ERROR", e, 5103)
            elif kind == "zero":
                assert (yield send(frame(0, [notice("172014")]))) == ("ERROR", e, 5113)
            else:
                assert conn is not None
                yield conn.close()
                conn = yield defer.Deferred.fromCoroutine(
                    open_connection(reactor, "127.0.0.1", node.bound_port, ident, pref))
            yield check()
        assert len(acked) >= 8 and {r[to] for r in acked} == {b"172014", b"172031"}
    finally:
        if conn is not None:
            yield conn.close()
        yield stop_nodes(nodes)
