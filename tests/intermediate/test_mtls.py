"""The intermediate endpoint over real mutual TLS on loopback: the issue's matrix end to end."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import text

from juki_gateway.codecs.frame import Frame
from juki_gateway.codecs.messages import MessageType, decode_error
from juki_gateway.gateway.config import load_config
from juki_gateway.gateway.intermediate.service import IntermediateService
from juki_gateway.gateway.service import makeService
from juki_gateway.protocols.intermediate.answer import decode_query_result, open_answer
from juki_gateway.protocols.intermediate.decision import Reason
from juki_gateway.protocols.intermediate.messages import (
    PERMISSION_LIST_RESULT_LAYOUT,
    ImsMessageType,
    QueryStatus,
)
from juki_gateway.protocols.intermediate.permit import Permit
from juki_gateway.protocols.intermediate.signing import frame_signature_valid

from .conftest import ALICE, BOB, fukuhon_record
from .helpers import FUKUHON, PROVIDER, REQUESTER_KEY
from .helpers import make_list as _make_list
from .helpers import make_permit as _make_permit
from .mtls import connect, frame_from, make_workdir, now14, private_key, public_key
from .test_service import ATENA, FUGO, query_body

pytestmark = pytest.mark.timeout(60)
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


class Env:
    """A daemon tree (makeService) on a fresh working directory, and the network's key."""

    def __init__(self, tmp: Path, reactor: Any) -> None:
        config = load_config(make_workdir(tmp / "wd", NOW - dt.timedelta(days=1)))
        self.pki = config.pki_dir
        self.network = private_key(self.pki, "ipnw")
        self.gateway = makeService(config, reactor)
        self.reactor = reactor
        self.n = 0

    @property
    def service(self) -> IntermediateService:
        """The daemon's intermediate server (once the tree is started)."""
        return self.gateway.intermediate.service

    def permit(self, permit_id: str, **kw: Any) -> Permit:
        """A permit signed by ipnw's key, valid around the real clock's now."""
        now = dt.datetime.fromtimestamp(self.reactor.seconds(), dt.UTC)
        kw.setdefault("issued", (now - dt.timedelta(minutes=5)).strftime("%Y%m%d%H%M%S"))
        kw.setdefault("expires", (now + dt.timedelta(minutes=5)).strftime("%Y%m%d%H%M%S"))
        kw.setdefault("key", self.network)
        return _make_permit(permit_id, **kw)

    def frame(
        self,
        msg_type: int,
        body: bytes,
        count: int,
        *,
        sender: str = "ipnw",
        key: ec.EllipticCurvePrivateKey | None = None,
        timestamp: str | None = None,
        seq: int = 0,
    ) -> bytes:
        """A frame signed by ``sender``'s key, stamped now (or ``timestamp``)."""
        self.n += 1
        k = key if key is not None else private_key(self.pki, sender)
        return frame_from(k, sender, msg_type, body, count, self.n, timestamp or now14(), seq=seq)

    async def start(self) -> int:
        """Start the tree; the intermediate endpoint's bound port."""
        self.gateway.startService()
        await self.gateway.whenListening()
        return self.gateway.listeners["ims-172014"].bound_port()

    async def stop(self) -> None:
        """Stop the tree and release the store."""
        await self.gateway.stopService()  # the host closes the store


@pytest.fixture
def env(tmp_path: Path) -> Any:
    """A daemon tree with one person, a 副本 and permission list version 1 (not yet started)."""
    from twisted.internet import reactor

    from juki_gateway.gateway.intermediate.service import ImsKeys
    from juki_gateway.registry_store.engine import create_store_engine
    from juki_gateway.registry_store.migrate import upgrade

    e = Env(tmp_path, reactor)
    config = e.gateway.config
    engine = create_store_engine(config.store.url)
    upgrade(config.store.url, engine=engine)
    keys = ImsKeys.from_pki(config.pki_dir, own="ims-172014", network="ipnw")
    ims = IntermediateService(engine, keys, "ims-172014", reactor)
    ims.start()
    ims.register_fugo(ATENA, FUGO)
    ims.import_fukuhon(fukuhon_record(ATENA))
    ims.offer_permission_list(_make_list(1, key=e.network).to_bytes())
    engine.dispose()  # the daemon reads all of it from the store when it starts
    return e


def results(frame: Frame) -> list[Any]:
    """The decoded query results of a QUERY_RESULT frame."""
    assert frame.msg_type == ImsMessageType.QUERY_RESULT
    size = len(frame.body) // frame.header.record_count
    return [decode_query_result(frame.body[i : i + size]) for i in range(0, len(frame.body), size)]


@pytest_twisted.ensureDeferred
async def test_matrix_over_mutual_tls(env: Env, tmp_path: Path) -> None:
    """Answer, every refusal, hold, release, refuse and an unsigned frame, over real mTLS."""
    from twisted.internet import reactor

    port = await env.start()
    ims_key = public_key(env.pki, "ims-172014")
    try:
        ipnw = await connect(reactor, env.pki, port, "ipnw")
        # 1. valid query: answered, signed by the server, requester opens exactly the items
        ipnw.transport.write(env.frame(ImsMessageType.INFO_QUERY, query_body(env.permit("m-1")), 1))
        [frame] = await ipnw.take(1)
        assert frame_signature_valid(ims_key, frame)
        [answer] = results(frame)
        assert answer.status is QueryStatus.ANSWERED
        assert open_answer(answer, REQUESTER_KEY, PROVIDER) == {
            "shimei": FUKUHON["shimei"],
            "jusho": FUKUHON["jusho"],
        }
        # 2. every refusal, in one multi-record frame
        other = ec.generate_private_key(ec.SECP256R1())
        cases = [
            (env.permit("m-2", key=other), Reason.BAD_SIGNATURE),
            (env.permit("m-3", expires="20200101000000", issued="20190101000000"), Reason.EXPIRED),
            (env.permit("m-1"), Reason.REPLAYED),
            (env.permit("m-4", provider="ims-131016"), Reason.WRONG_PROVIDER),
            (env.permit("m-5", items=("seibetsu",)), Reason.NOT_PERMITTED),
            (env.permit("m-6", fugo="g" * 32), Reason.UNKNOWN_FUGO),
        ]
        body = b"".join(query_body(p) for p, _ in cases)
        ipnw.transport.write(env.frame(ImsMessageType.INFO_QUERY, body, len(cases)))
        [frame] = await ipnw.take(1)
        got = results(frame)
        assert [r.reason for r in got] == [r for _, r in cases]
        assert all(r.status is QueryStatus.REFUSED and r.sealed is None for r in got)
        # 3. flagged person: held (set pending confirmation already blocks)
        env.service.flag_request_set(ALICE, ATENA, (), "01", "20271231")
        body = query_body(env.permit("m-7")) + query_body(env.permit("m-8"))
        ipnw.transport.write(env.frame(ImsMessageType.INFO_QUERY, body, 2))
        [frame] = await ipnw.take(1)
        assert [r.status for r in results(frame)] == [QueryStatus.HELD, QueryStatus.HELD]
        held = env.service.held_list(BOB)
        env.service.held_release(BOB, held[0].held_id)
        env.service.held_refuse(BOB, held[1].held_id)
        ipnw.transport.write(env.frame(MessageType.PING, b"", 0))
        pong, released, withheld = await ipnw.take(3)
        assert pong.msg_type == MessageType.PONG
        [rel] = results(released)
        assert rel.status is QueryStatus.RELEASED
        assert open_answer(rel, REQUESTER_KEY, PROVIDER)["shimei"] == FUKUHON["shimei"]
        [wh] = results(withheld)
        assert wh.status is QueryStatus.WITHHELD and wh.sealed is None
        assert env.service.pending_deliveries() == 2  # resent until acknowledged
        ipnw.transport.write(
            frame_from(
                env.network,
                "ipnw",
                MessageType.ACK,
                b"",
                0,
                0,
                now14(),
                seq=withheld.header.seq,
            )
        )
        ipnw.transport.write(env.frame(MessageType.PING, b"", 0))
        [pong] = await ipnw.take(1)
        assert env.service.pending_deliveries() == 0
        # 4. a frame signed by the wrong key is refused, not acted on
        bad = env.frame(ImsMessageType.INFO_QUERY, query_body(env.permit("m-9")), 1, key=other)
        ipnw.transport.write(bad)
        [err] = await ipnw.take(1)
        assert err.msg_type == MessageType.ERROR and decode_error(err.body)[0] == 6602
        # 5. an older permission list is refused over the wire
        stale = _make_list(1, key=env.network).to_bytes()
        ipnw.transport.write(env.frame(ImsMessageType.PERMISSION_LIST, stale, len(stale)))
        [res] = await ipnw.take(1)
        values = PERMISSION_LIST_RESULT_LAYOUT.decode(res.body)
        assert values["result_code"] == "6302" and values["kept_version"] == 1
        # 6. the flag store unreadable: nothing answered automatically
        with env.service.engine.begin() as conn:
            conn.execute(text("ALTER TABLE ims_flag RENAME TO ims_flag_gone"))
        ipnw.transport.write(
            env.frame(ImsMessageType.INFO_QUERY, query_body(env.permit("m-10")), 1)
        )
        [frame] = await ipnw.take(1)
        [r] = results(frame)
        assert r.status is QueryStatus.HELD and r.reason is Reason.HELD_FLAG_STORE
        ipnw.transport.loseConnection()
    finally:
        await env.stop()


@pytest_twisted.ensureDeferred
async def test_linkage_system_may_not_query(env: Env, tmp_path: Path) -> None:
    """bango-renkei can register 副本 but an information query from it is refused."""
    from twisted.internet import reactor

    port = await env.start()
    try:
        renkei = await connect(reactor, env.pki, port, "renkei-172014")
        renkei.transport.write(
            env.frame(
                ImsMessageType.INFO_QUERY, query_body(env.permit("r-1")), 1, sender="renkei-172014"
            )
        )
        [err] = await renkei.take(1)
        assert err.msg_type == MessageType.ERROR and decode_error(err.body)[0] == 6603
        renkei.transport.write(
            env.frame(
                ImsMessageType.FUKUHON_REGISTER,
                fukuhon_record(ATENA) + fukuhon_record("172014000000999"),
                2,
                sender="renkei-172014",
            )
        )
        [report] = await renkei.take(1)
        assert report.msg_type == ImsMessageType.FUKUHON_REPORT
        from juki_gateway.protocols.intermediate.messages import FUKUHON_REPORT_LAYOUT

        results = FUKUHON_REPORT_LAYOUT.decode_many(report.body)
        assert [(r["atena_no"], r["result_code"]) for r in results] == [
            (ATENA, "0000"), ("172014000000999", "6402")]
        renkei.transport.loseConnection()
    finally:
        await env.stop()


@pytest_twisted.ensureDeferred
async def test_fugo_is_obtained_through_the_network(env: Env, tmp_path: Path) -> None:
    """bango-renkei asks for a 符号 (団体内統合宛名番号 only), the server asks ipnw for a 処理通番,
    bango-renkei learns it while pending, ipnw delivers the 符号 under it, bango-renkei gets it."""
    from twisted.internet import reactor

    from juki_gateway.protocols.intermediate.fugo import issue_fugo
    from juki_gateway.protocols.intermediate.messages import (
        FUGO_ISSUE_RESPONSE_LAYOUT,
        FUGO_REQUEST_LAYOUT,
        FUGO_RESPONSE_LAYOUT,
        SHORI_TSUBAN_ISSUE_LAYOUT,
        SHORI_TSUBAN_REQUEST_LAYOUT,
    )

    port = await env.start()
    try:
        renkei = await connect(reactor, env.pki, port, "renkei-172014")
        ipnw = await connect(reactor, env.pki, port, "ipnw")
        ask = FUGO_REQUEST_LAYOUT.encode({"atena_no": "172014000000002"})

        async def asked() -> dict[str, object]:
            renkei.transport.write(
                env.frame(ImsMessageType.FUGO_REQUEST, ask, 1, sender="renkei-172014"))
            [resp] = await renkei.take(1)
            assert resp.msg_type == ImsMessageType.FUGO_RESPONSE, decode_error(resp.body)
            return FUGO_RESPONSE_LAYOUT.decode(resp.body)

        first = await asked()
        assert first["result_code"] == "6608" and first["fugo"] is None
        assert first["shori_tsuban"] is None  # not issued yet
        assert (await asked())["shori_tsuban"] is None  # asked once of ipnw only
        ipnw.transport.write(env.frame(MessageType.PING, b"", 0))
        pong, request = await ipnw.take(2)
        assert pong.msg_type == MessageType.PONG
        assert request.msg_type == ImsMessageType.SHORI_TSUBAN_REQUEST
        req = SHORI_TSUBAN_REQUEST_LAYOUT.decode(request.body)
        assert req["organisation"] == "ims-172014" and len(str(req["request_id"])) == 16
        ipnw.transport.write(env.frame(MessageType.ACK, b"", 0, seq=request.header.seq))
        # a 処理通番 for a request nobody made is refused
        stray = SHORI_TSUBAN_ISSUE_LAYOUT.encode(
            {"organisation": "ims-172014", "request_id": "ffffffffffffffff",
             "shori_tsuban": "1000000000000001"})
        ipnw.transport.write(env.frame(ImsMessageType.SHORI_TSUBAN_ISSUE, stray, 1))
        [err] = await ipnw.take(1)
        assert err.msg_type == MessageType.ERROR and decode_error(err.body)[0] == 6610
        tsuban = "4711000000000042"
        issue = SHORI_TSUBAN_ISSUE_LAYOUT.encode({**req, "shori_tsuban": tsuban})
        ipnw.transport.write(env.frame(ImsMessageType.SHORI_TSUBAN_ISSUE, issue, 1))
        [ack] = await ipnw.take(1)
        assert ack.msg_type == MessageType.ACK
        pending = await asked()
        assert pending["result_code"] == "6608" and pending["shori_tsuban"] == tsuban
        # (the 住民票コード travels 既存住基 → CS → 都道府県 → 機構 → ipnw with the 処理通番)
        fugo = issue_fugo(b"network secret", "ims-172014", "24727059608")
        unknown = FUGO_ISSUE_RESPONSE_LAYOUT.encode(
            {"organisation": "ims-172014", "shori_tsuban": "1000000000000001", "fugo": fugo})
        ipnw.transport.write(env.frame(ImsMessageType.FUGO_ISSUE_RESPONSE, unknown, 1))
        [err] = await ipnw.take(1)
        assert err.msg_type == MessageType.ERROR and decode_error(err.body)[0] == 6610
        issued = FUGO_ISSUE_RESPONSE_LAYOUT.encode(
            {"organisation": "ims-172014", "shori_tsuban": tsuban, "fugo": fugo})
        for _ in range(2):  # a repeat (an ACK lost) is taken again
            ipnw.transport.write(env.frame(ImsMessageType.FUGO_ISSUE_RESPONSE, issued, 1))
            [ack] = await ipnw.take(1)
            assert ack.msg_type == MessageType.ACK
        assert await asked() == {
            "atena_no": "172014000000002",
            "fugo": fugo,
            "shori_tsuban": None,
            "result_code": "0000",
        }
        renkei.transport.loseConnection()
        ipnw.transport.loseConnection()
    finally:
        await env.stop()


@pytest_twisted.ensureDeferred
async def test_randomized_queries_over_mutual_tls(env: Env, tmp_path: Path) -> None:
    """1,000 random queries over mTLS about 100 people, 25 flagged: none answered about them."""
    import random

    from twisted.internet import reactor

    from juki_gateway.protocols.intermediate.flags import FlagScope
    from juki_gateway.protocols.intermediate.permission_list import PermissionEntry

    from .helpers import REQUESTER

    rng = random.Random(6)
    port = await env.start()  # the setup below goes through the running daemon's server
    svc = env.service
    items_all = ("shimei", "jusho", "seinengappi")
    svc.offer_permission_list(
        _make_list(
            2,
            [PermissionEntry(REQUESTER, k, frozenset(items_all)) for k in (1, 2)],
            key=env.network,
        ).to_bytes()
    )
    people = [(f"{i + 5000:015d}", f"{i + 7:032x}") for i in range(100)]
    for atena, fugo in people:
        svc.register_fugo(atena, fugo)
    svc.import_fukuhon(b"".join(fukuhon_record(a) for a, _ in people))
    covered: dict[str, FlagScope] = {}
    for atena, _ in rng.sample(people, 25):
        scope = rng.choice([FlagScope(), FlagScope(kouban=2), FlagScope(item="jusho")])
        flag = svc.flag_request_set(
            ALICE, atena, () if scope == FlagScope() else (scope,), "01", "20991231"
        )
        if rng.random() < 0.5:
            svc.flag_confirm(BOB, flag.flag_id)
        covered[atena] = scope
    try:
        ipnw = await connect(reactor, env.pki, port, "ipnw")
        answered_flagged = answered = 0
        for f in range(10):
            asked, bodies = [], []
            for i in range(100):
                atena, fugo = rng.choice(people)
                kouban = rng.choice((1, 2))
                items = frozenset(rng.sample(items_all, rng.randint(1, 3)))
                permit = env.permit(f"x-{f}-{i}", fugo=fugo, kouban=kouban, items=items)
                asked.append((atena, kouban, items))
                bodies.append(query_body(permit))
            ipnw.transport.write(env.frame(ImsMessageType.INFO_QUERY, b"".join(bodies), 100))
            [frame] = await ipnw.take(1)
            for result, (atena, kouban, items) in zip(results(frame), asked, strict=True):
                hit = atena in covered and covered[atena].matches(kouban, items)
                if result.status is QueryStatus.ANSWERED:
                    answered += 1
                    answered_flagged += hit
                else:
                    assert result.status is QueryStatus.HELD and hit
        assert answered_flagged == 0 and answered > 500
        ipnw.transport.loseConnection()
    finally:
        await env.stop()


@pytest_twisted.ensureDeferred
async def test_the_server_runs_off_the_reactor_and_answers_in_request_order(env: Env) -> None:
    """Over mTLS, every call of the intermediate server runs on its store thread, never on the
    reactor's; a slow query batch does not let a later PING's PONG overtake its answer."""
    import threading
    import time

    from twisted.internet import reactor

    port = await env.start()
    service = env.service
    threads: set[str] = set()
    honest_queries, honest_claims = service.handle_queries, service.claim_deliveries

    def slow_queries(bodies: list[bytes]) -> list[bytes]:
        threads.add(threading.current_thread().name)
        time.sleep(0.3)  # a slow store: the reactor keeps reading meanwhile
        return honest_queries(bodies)

    def claims(worker: str) -> list[Any]:
        threads.add(threading.current_thread().name)
        return honest_claims(worker)

    service.handle_queries = slow_queries  # type: ignore[method-assign]
    service.claim_deliveries = claims  # type: ignore[method-assign]
    try:
        ipnw = await connect(reactor, env.pki, port, "ipnw")
        ipnw.transport.write(env.frame(ImsMessageType.INFO_QUERY, query_body(env.permit("o-1")), 1)
                             + env.frame(MessageType.PING, b"", 0))
        first, second = await ipnw.take(2)
        assert (first.msg_type, second.msg_type) == (ImsMessageType.QUERY_RESULT, MessageType.PONG)
        assert threads == {"PoolThread-ims-172014-store-0"}  # the one store thread
        assert threading.main_thread().name not in threads
        ipnw.transport.loseConnection()
    finally:
        await env.stop()


@pytest_twisted.ensureDeferred
async def test_a_reissued_key_signs_without_a_restart(env: Env) -> None:
    """The key that checks a peer's frame signatures is the one in the certificate it presented:
    after ipnw's certificate and key are re-issued, its next connection signs with the new key
    and is answered (the daemon used to keep the key it first read from pki/ipnw.pem)."""
    import datetime as dt

    from twisted.internet import reactor

    from juki_gateway.certs.identity import PeerIdentity
    from juki_gateway.certs.pki import CertificateAuthority

    port = await env.start()
    try:
        first = await connect(reactor, env.pki, port, "ipnw")
        first.transport.write(env.frame(ImsMessageType.INFO_QUERY, query_body(env.permit("k-1")), 1))
        [frame] = await first.take(1)
        assert results(frame)[0].status is QueryStatus.ANSWERED
        first.transport.loseConnection()
        old = (env.pki / "ipnw.key").read_bytes()
        CertificateAuthority.load(env.pki).issue(PeerIdentity("ipnw", "ipnw", "ipnw"),
                                                 dt.datetime.now(dt.UTC))
        assert (env.pki / "ipnw.key").read_bytes() != old
        again = await connect(reactor, env.pki, port, "ipnw")  # presents the new certificate
        again.transport.write(env.frame(ImsMessageType.INFO_QUERY, query_body(env.permit("k-2")), 1))
        [frame] = await again.take(1)
        assert frame.msg_type == ImsMessageType.QUERY_RESULT
        assert results(frame)[0].status is QueryStatus.ANSWERED
        again.transport.loseConnection()
    finally:
        await env.stop()


@pytest_twisted.ensureDeferred
async def test_a_frame_stamped_outside_the_window_is_refused_and_the_link_kept(env: Env) -> None:
    """Over mTLS, a validly signed query stamped 10 minutes in the past or the future gets
    ERROR 6612 for its request number, is not acted on (its permit stays unspent) and is
    counted; the same query stamped now is then answered on the same connection."""
    from twisted.internet import reactor

    port = await env.start()
    try:
        ipnw = await connect(reactor, env.pki, port, "ipnw")
        body = query_body(env.permit("t-1"))
        for offset in (-600, 600):
            ipnw.transport.write(env.frame(ImsMessageType.INFO_QUERY, body, 1,
                                           timestamp=now14(offset)))
            [err] = await ipnw.take(1)
            assert err.msg_type == MessageType.ERROR and err.header.request_no == env.n
            assert decode_error(err.body)[:2] == (6612, "ims_frame_time_outside_window")
        ipnw.transport.write(env.frame(ImsMessageType.INFO_QUERY, body, 1))
        [frame] = await ipnw.take(1)
        assert results(frame)[0].status is QueryStatus.ANSWERED
        counted = env.gateway.metrics.registry.get_sample_value(
            "juki_gateway_frame_errors_total",
            {"endpoint": "ims-172014", "code": "ims_frame_time_outside_window"})
        assert counted == 2
        ipnw.transport.loseConnection()
    finally:
        await env.stop()


@pytest_twisted.ensureDeferred
async def test_a_malformed_query_gets_6601_and_a_refused_provision_record(env: Env) -> None:
    """Over mTLS, a query whose item mask is not 16 flags of 0/1 gets ERROR 6601
    (`ims_malformed_message`) for its frame only: a good frame sent in the same breath is
    answered, the connection stays open, and the refusal is a provision record."""
    from twisted.internet import reactor

    from juki_gateway.protocols.intermediate.messages import INFO_QUERY_LAYOUT
    from juki_gateway.registry_store.models import ProvisionRecord

    port = await env.start()
    try:
        ipnw = await connect(reactor, env.pki, port, "ipnw")
        good = query_body(env.permit("x-1"))
        layout = INFO_QUERY_LAYOUT.layout
        items = layout.field_named("items")
        at = layout.offsets[layout.fields.index(items)]
        bad = good[:at] + b"2" * items.width + good[at + items.width:]  # not a flag
        ipnw.transport.write(env.frame(ImsMessageType.INFO_QUERY, bad, 1)
                             + env.frame(ImsMessageType.INFO_QUERY, query_body(env.permit("x-2")), 1))
        first, second = await ipnw.take(2)
        assert first.msg_type == MessageType.ERROR
        assert decode_error(first.body)[:2] == (6601, "ims_malformed_message")
        assert results(second)[0].status is QueryStatus.ANSWERED
        pr = ProvisionRecord.__table__
        with env.service.engine.connect() as conn:
            refused = [(r.outcome, r.detail) for r in conn.execute(
                pr.select().where(pr.c.outcome == "refused"))]
        assert refused == [("refused", "6601 ims_malformed_message")]
        ipnw.transport.loseConnection()
    finally:
        await env.stop()
