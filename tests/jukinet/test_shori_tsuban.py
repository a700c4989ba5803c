"""処理通番通知 (SHORI_TSUBAN_NOTIFY) over real mTLS: 既存住基 → CS → 都道府県 → 機構, exactly once,
and the network (ipnw, its own certificate) taking the pairs from 機構 until it acknowledges them."""

from __future__ import annotations

import random
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest_twisted
import sqlalchemy as sa
from twisted.internet import defer

from juki_gateway.certs.pki import CertificateAuthority
from juki_gateway.codecs.checkdigits import generate_juminhyo_code
from juki_gateway.codecs.frame import Frame, encode_frame
from juki_gateway.codecs.messages import MessageType, decode_error
from juki_gateway.gateway.jukinet.topology import IDENTITIES, make_chain
from juki_gateway.protocols.jukinet.layouts import (
    SHORI_TSUBAN_ACK,
    SHORI_TSUBAN_NOTICE,
    decode_bodies,
    encode_body,
)
from juki_gateway.protocols.jukinet.messages import JukinetMessage as M
from juki_gateway.registry_store import jukinet as st
from juki_gateway.registry_store.models import ProvisionRecord, table_of
from juki_gateway.simulators.client import FrameConnection, Identity, open_connection
from tests.jukinet.conftest import NOW, node_read, start_nodes, stop_nodes, wait_for

KIZON, CS, PREF, KIKO = "kizon-172014", "cs-172014", "pref-17", "kiko"
TS = NOW.strftime("%Y%m%d%H%M%S")


def pair(i: int, municipality: str = "172014") -> tuple[str, str, str]:
    """(住民票コード, 処理通番, 市町村コード) of the ``i``-th sample person."""
    return generate_juminhyo_code(random.Random(i)), f"{4711000000000000 + i:016d}", municipality


def notice(seq: int, pairs: list[tuple[str, str, str]], **header: Any) -> bytes:
    body = b"".join(encode_body(SHORI_TSUBAN_NOTICE, {
        "juminhyo_code": c, "shori_tsuban": t, "lg_code": m}) for c, t, m in pairs)
    return encode_frame(M.SHORI_TSUBAN_NOTIFY, KIZON, CS, body, record_count=len(pairs),
                        seq=seq, timestamp=TS, **header)


def reply(frame: Frame) -> tuple[str, int, int]:
    """(kind, seq, code) of a reply."""
    kind = MessageType(frame.msg_type).name
    code = (decode_error(frame.body)[0]
            if frame.msg_type in (MessageType.ERROR, MessageType.NACK) else 0)
    return kind, frame.header.seq, code


def kept(conn: sa.Connection) -> list[tuple[str, str]]:
    k = st.kiko_shori_tsuban
    return [(r.shori_tsuban, r.juminhyo_code) for r in conn.execute(
        sa.select(k.c.shori_tsuban, k.c.juminhyo_code).order_by(k.c.shori_tsuban))]


def provisions(conn: sa.Connection, outcome: str = "provided") -> list[tuple[str, str, str]]:
    p = table_of(ProvisionRecord)
    return [(r.provider, r.recipient, r.subject) for r in conn.execute(
        sa.select(p.c.provider, p.c.recipient, p.c.subject).where(
            p.c.kind == "shori_tsuban", p.c.outcome == outcome))]


@defer.inlineCallbacks
def connect(reactor: Any, pki: Path, port: int, client: str,
            server: str) -> Generator[Any, Any, FrameConnection]:
    conn = yield defer.Deferred.fromCoroutine(open_connection(
        reactor, "127.0.0.1", port, Identity.from_pki(pki, client), server))
    return conn


@defer.inlineCallbacks
def ask(conn: FrameConnection, *frames: bytes) -> Generator[Any, Any, list[Frame]]:
    replies = yield defer.Deferred.fromCoroutine(conn.request(b"".join(frames), len(frames)))
    return replies


def fetch(n: int, acks: list[str]) -> bytes:
    body = b"".join(encode_body(SHORI_TSUBAN_ACK, {"shori_tsuban": t}) for t in acks)
    return encode_frame(M.SHORI_TSUBAN_FETCH, "ipnw", KIKO, body, record_count=len(acks),
                        request_no=n, timestamp=TS)


@pytest_twisted.inlineCallbacks
def test_pairs_reach_kiko_exactly_once_and_the_network_takes_them_until_acknowledged(
    tmp_path: Path,
) -> Generator[Any, Any, None]:
    """A resend is a duplicate (ACK, not applied again), a gap is NACKed, another municipality's
    record is refused (R2 on content); 機構 alone keeps the pairs, answers them to ipnw until it
    acknowledges them; every hop leaves a provision record."""
    from twisted.internet import reactor

    cfgs = make_chain(tmp_path, NOW)
    pki = tmp_path / "pki"
    CertificateAuthority.load(pki).issue(IDENTITIES["ipnw"], NOW)  # the network's certificate
    nodes = yield start_nodes(reactor, cfgs, (CS, PREF, KIKO))
    try:
        kizon = yield connect(reactor, pki, nodes[CS].bound_port, KIZON, CS)
        first, second = [pair(1), pair(2)], [pair(3)]
        got = yield ask(kizon, notice(1, first), notice(1, first), notice(4, [pair(9)]),
                        notice(3, second))
        assert [reply(f) for f in got] == [("ACK", 2, 0), ("ACK", 2, 0), ("NACK", 3, 5101),
                                           ("ACK", 3, 0)]
        got = yield ask(kizon, notice(4, [pair(4, "131016")]))
        assert [reply(f) for f in got] == [("ERROR", 4, 5104)]
        yield kizon.close()

        def at_kiko() -> defer.Deferred[bool]:
            return node_read(nodes[KIKO], lambda c: len(kept(c)) == 3)

        yield wait_for(reactor, at_kiko, 20, "the pairs at 機構")
        want = sorted((t, c) for c, t, _ in first + second)
        assert (yield node_read(nodes[KIKO], kept)) == want
        for name in (CS, PREF):  # only 機構 keeps them
            assert (yield node_read(nodes[name], kept)) == []
        for name, provider in ((CS, KIZON), (PREF, CS), (KIKO, PREF)):
            got_p = yield node_read(nodes[name], provisions)
            assert sorted(got_p) == sorted((provider, name, c) for c, _t, _m in first + second)
        refused = yield node_read(nodes[CS], lambda c: provisions(c, "refused"))
        assert refused == [(KIZON, CS, "-")]  # the refused frame too (R5), naming nobody

        # a peer with the network's certificate (not a prefecture) takes them from 機構
        ipnw = yield connect(reactor, pki, nodes[KIKO].bound_port, "ipnw", KIKO)
        [answer] = yield ask(ipnw, fetch(1, []))
        assert answer.msg_type == M.SHORI_TSUBAN_LIST and answer.header.request_no == 1
        listed = sorted((str(v["shori_tsuban"]), str(v["juminhyo_code"]))
                        for v in decode_bodies(SHORI_TSUBAN_NOTICE, answer.body))
        assert listed == want
        [again] = yield ask(ipnw, fetch(2, []))  # not acknowledged: answered again
        assert again.body == answer.body
        [rest] = yield ask(ipnw, fetch(3, [want[0][0]]))
        assert [str(v["shori_tsuban"]) for v in decode_bodies(SHORI_TSUBAN_NOTICE, rest.body)] \
            == [t for t, _ in want[1:]]
        [done] = yield ask(ipnw, fetch(4, [t for t, _ in want[1:]]))
        assert done.msg_type == M.SHORI_TSUBAN_LIST and done.header.record_count == 0
        assert (yield node_read(nodes[KIKO], kept)) == []
        taken = yield node_read(nodes[KIKO], provisions)
        assert sorted(p for p in taken if p[1] == "ipnw") == sorted(
            (KIKO, "ipnw", c) for _t, c in want)
        yield ipnw.close()
    finally:
        yield stop_nodes(nodes)

