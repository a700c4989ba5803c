"""Request/response services of the Juki-net links, both the serving side and the asking side.

Serving (on a CS, prefecture or 機構 endpoint): 本人確認情報 search (R3 check, matching on 清音化かな,
外字 substitutes and 市区町村, at most ``search_limit`` records with the count of all matches, a
provision record for every search answered or refused), 個人番号
generation and 個人番号変更 (機構; a prefecture relays them), 住民票コード pools (機構), and the
consistency check (a merge join of the CS's stream against the local file, on the reader
thread, flat memory). A CS serves its existing system: searches of its own file, 個人番号 and
個人番号変更 requests it asks on of 機構 (recording the answers), and 住民票コード from its pool
(:func:`serve_juminhyo_code_draw`).

Asking (on a CS, or on the existing system's client, which asks its CS):
:func:`request_kojin_bango`, :func:`request_kojin_bango_change`, :func:`search`,
:func:`draw_juminhyo_codes`; a CS alone: :func:`request_pool`, :func:`take_juminhyo_code`,
:func:`consistency_check`.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from juki_gateway.codecs.frame import Frame
from juki_gateway.codecs.messages import MessageType, encode_error
from juki_gateway.codecs.schema import Layout
from juki_gateway.errors import JukiError
from juki_gateway.gateway.jukinet.connection import NodeConnection
from juki_gateway.gateway.jukinet.requests import RemoteError
from juki_gateway.protocols.jukinet.consistency import (
    DIGEST_SIZE,
    Diff,
    DiffKind,
    Entry,
    StreamComparer,
)
from juki_gateway.protocols.jukinet.errors import (
    BadBody,
    JuminhyoCodeChangeRefused,
    KojinBangoNotAuthentic,
    LinkProtocolError,
    NotTokureiTenshutsu,
    PoolExhausted,
    TenshutsuShomeiUnknown,
    TenshutsuShomeiWrongRequester,
    UnknownMunicipality,
    WrongSender,
)
from juki_gateway.protocols.jukinet.layouts import (
    CONSISTENCY_DIFF,
    CONSISTENCY_ENTRY,
    HONNIN_KAKUNIN,
    JUMINHYO_CODE_DRAW_REQUEST,
    KOJIN_BANGO_CHANGE_REQUEST,
    KOJIN_BANGO_REQUEST,
    KOJIN_BANGO_RESPONSE,
    MAX_CODE_DRAW,
    MOVE_IN_DELIVERY,
    POOL_ENTRY,
    POOL_REQUEST,
    SEARCH_HIT,
    SEARCH_REQUEST,
    SHORI_TSUBAN_ACK,
    SHORI_TSUBAN_NOTICE,
    TENSHUTSU_SHOMEI,
    TENSHUTSU_SHOMEI_REQUEST,
    decode_bodies,
    decode_body,
    encode_body,
)
from juki_gateway.protocols.jukinet.messages import (
    MAX_MOVE_IN_DELIVERIES,
    SHORI_TSUBAN_FETCH_LIMIT,
)
from juki_gateway.protocols.jukinet.messages import JukinetMessage as M
from juki_gateway.protocols.jukinet.numbers import NumberGenerator, validate_juminhyo_code
from juki_gateway.protocols.jukinet.routing import (
    Role,
    cs_node_id,
    prefecture_node_id,
    prefecture_of,
)
from juki_gateway.protocols.jukinet.search import (
    Candidate,
    SearchAnswer,
    SearchCriteria,
    check_narrow,
    decode_search_answer,
    encode_search_answer,
    first_hits,
    matches,
)
from juki_gateway.registry_store import jukinet as st
from juki_gateway.registry_store.residents import (
    ACTIVE,
    REPLACED,
    kojin_bango_row,
    register_kojin_bango,
    replace_kojin_bango,
)
from juki_gateway.registry_store.retention import jst_date

if TYPE_CHECKING:
    from juki_gateway.gateway.jukinet.node import JukinetNode

log = Logger(namespace="juki_gateway.jukinet")

CHUNK_ENTRIES = 2000
CHUNK_WINDOW = 8


def _decode_one(frame: Frame, layout: Layout) -> dict[str, Any]:
    if frame.header.record_count != 1:
        raise BadBody(f"{layout.name}: exactly one record expected, got {frame.header.record_count}")
    return decode_body(layout, frame.body)


def _given(v: object) -> str:
    return "" if v is None else str(v)


# -- search -------------------------------------------------------------------------------------------


def serve_search(node: JukinetNode, proto: NodeConnection, frame: Frame) -> None:
    """Answer a 本人確認情報 search, or refuse it; either way leave a provision record (R5).

    The answer holds the ``cfg.search_limit`` matches with the smallest 住民票コード and says how
    many matched in all (``search-hit``); the provision records name the residents provided.
    """
    rn = frame.header.request_no
    now = node.now()
    operator = terminal = None
    try:
        v = _decode_one(frame, SEARCH_REQUEST)
        operator, terminal = v["operator_id"], v["terminal_id"]
        criteria = SearchCriteria(
            juminhyo_code=_given(v["juminhyo_code"]), kojin_bango=_given(v["kojin_bango"]),
            name=_given(v["name"]), birth_date=_given(v["birth_date"]),
            address=_given(v["address"]), sex=_given(v["sex"]),
        )
        check_narrow(criteria)
    except JukiError as exc:
        node.metrics.search_refusals.labels(node.node_id, exc.code).inc()
        node.send_error(proto, exc, request_no=rn)
        assert node.committer is not None
        reason = exc.code
        node.committer.submit(lambda conn: st.record_provision(
            conn, kind="search", provider=node.node_id, recipient=proto.peer_id,
            subject="-", items="search", outcome="refused", detail=reason, now=now,
            operator=operator, terminal=terminal))
        return

    b = criteria.birth_date
    born = dt.date(int(b[:4]), int(b[4:6]), int(b[6:8])) if b else None
    limit = node.cfg.search_limit

    def hits(conn: Any) -> Iterator[tuple[str, bytes]]:
        for r in st.search_rows(conn, juminhyo_code=criteria.juminhyo_code,
                                kojin_bango=criteria.kojin_bango, birth_date=born):
            rec = decode_body(HONNIN_KAKUNIN, r.record)
            cand = Candidate(r.juminhyo_code, r.kojin_bango or "", r.name_kanji,
                             str(rec["kana_name"]), r.birth_date.strftime("%Y%m%d"), r.sex, r.address)
            if matches(criteria, cand):
                yield r.juminhyo_code, r.record

    def work(conn: Any) -> bytes:
        total, found = first_hits(hits(conn), limit)
        detail = f"truncated: {len(found)} of {total}" if total > len(found) else ""
        for rec_bytes in found or [b""]:
            st.record_provision(
                conn, kind="search", provider=node.node_id, recipient=proto.peer_id,
                subject=st.juminhyo_of(rec_bytes) if rec_bytes else "-", items="search",
                outcome="provided" if rec_bytes else "none_found", detail=detail, now=now,
                operator=operator, terminal=terminal)
        return encode_search_answer(total, found)

    assert node.committer is not None
    d = node.committer.submit(work)

    def answer(body: bytes) -> None:
        proto.send_frame(M.SEARCH_RESPONSE, body, record_count=len(body) // SEARCH_HIT.record_length,
                         request_no=rn)

    d.addCallbacks(answer, lambda f: node.send_error(proto, _as_juki(f.value), request_no=rn))


def search(node: JukinetNode, peer: str, criteria: SearchCriteria, *,
           operator: str | None = None, terminal: str | None = None) -> Deferred[SearchAnswer]:
    """Ask ``peer`` for matching current records on behalf of ``operator`` at ``terminal``:
    the records, how many matched in all and whether the answer was cut at the peer's search
    limit (refusals errback with RemoteError; an answer whose counts do not fit its records
    errbacks with BadBody)."""
    body = encode_body(SEARCH_REQUEST, {
        "juminhyo_code": criteria.juminhyo_code or None, "kojin_bango": criteria.kojin_bango or None,
        "name": criteria.name or None, "birth_date": criteria.birth_date or None,
        "address": criteria.address or None, "sex": criteria.sex or None,
        "operator_id": operator, "terminal_id": terminal,
    })
    d = node.request(peer, M.SEARCH_REQUEST, body, 1)
    return d.addCallback(lambda f: decode_search_answer(f.body))


# -- 個人番号 -------------------------------------------------------------------------------------------


def serve_kojin_bango(node: JukinetNode, proto: NodeConnection, frame: Frame) -> None:
    """機構 generates a 個人番号 (same number again for the same resident; none for a 住民票コード
    a 住民票コード変更 retired); a prefecture relays; a CS asks on for its existing system and
    records the number before answering it."""
    rn = frame.header.request_no
    try:
        v = _decode_one(frame, KOJIN_BANGO_REQUEST)
        if node.role is Role.MUNICIPAL_CS:
            _check_own_municipality(node, proto, str(v["lg_code"]))
    except JukiError as exc:
        node.send_error(proto, exc, request_no=rn)
        _record(node, "kojin_bango", proto.peer_id, "-", "個人番号", "refused", exc.code)
        return
    if _relayed(node, proto, frame, str(v["juminhyo_code"]), M.KOJIN_BANGO_RESPONSE,
                lambda asked: request_kojin_bango(node, asked)):
        return
    code = str(v["juminhyo_code"])
    now = node.now()

    def work(conn: Any) -> str:
        if st.retired_juminhyo_code(conn, code):
            raise JuminhyoCodeChangeRefused("that 住民票コード was retired by a 住民票コード変更")
        existing = st.kojin_bango_of(conn, code)
        if existing is not None:
            st.record_provision(conn, kind="kojin_bango", provider=node.node_id,
                                recipient=proto.peer_id, subject=code, items="個人番号",
                                outcome="provided", detail="already generated", now=now)
            return existing
        gen = NumberGenerator("kojin_bango", node.rng, lambda n: st.kojin_bango_used(conn, n))
        number = gen.draw()
        register_kojin_bango(conn, number, code, now)
        st.record_provision(conn, kind="kojin_bango", provider=node.node_id,
                            recipient=proto.peer_id, subject=code, items="個人番号",
                            outcome="provided", detail="generated", now=now)
        return number

    _answer_number(node, proto, rn, code, M.KOJIN_BANGO_RESPONSE, work)


def _answer_number(node: JukinetNode, proto: NodeConnection, rn: int, code: str,
                   response_type: int, work: Callable[[Any], str]) -> None:
    """機構's side of a 個人番号 request: ``work`` decides the number in the next group commit;
    the answer (or the refusal, recorded) goes back after the commit."""
    assert node.committer is not None
    d = node.committer.submit(work)
    d.addCallbacks(
        lambda number: proto.send_frame(
            response_type,
            encode_body(KOJIN_BANGO_RESPONSE, {"juminhyo_code": code, "kojin_bango": number}),
            record_count=1, request_no=rn),
        lambda f: _refused(node, proto, f, rn, code),
    )


def _refused(node: JukinetNode, proto: NodeConnection, failure: Failure, rn: int,
             code: str) -> None:
    """機構 refused a 個人番号 request in its store: the ERROR, and a refused provision record."""
    err = _as_juki(failure.value)
    node.send_error(proto, err, request_no=rn)
    _record(node, "kojin_bango", proto.peer_id, code, "個人番号", "refused", err.code)


def _upstream(node: JukinetNode) -> str:
    """Where a node asks for numbers: a CS its prefecture (else 機構 directly), the existing
    system its CS."""
    peers = {p.role: p.node_id for p in node.cfg.peers}
    if node.role is Role.KIZON_JUKI:
        return peers[Role.MUNICIPAL_CS]
    return peers.get(Role.PREFECTURE) or peers[Role.KIKO]


def _check_own_municipality(node: JukinetNode, proto: NodeConnection, municipality: str) -> None:
    """R2 on content at a CS: its existing system asks for the CS's own 市町村 only."""
    if municipality != node.cfg.org or municipality != proto.peer_org:
        raise WrongSender(f"{proto.peer_id} (org {proto.peer_org}) asked {node.node_id} "
                          f"(市町村 {node.cfg.org}) for 市町村 {municipality}")


def _relayed(node: JukinetNode, proto: NodeConnection, frame: Frame, asked: str,
             response_type: int, via_cs: Callable[[str], Deferred[str]]) -> bool:
    """The CS's and the prefecture's part of a 個人番号 request (generation or change): the
    CS asks 機構 through its own request (which records the number) and answers the existing
    system; a prefecture passes the request to 機構 and the answer back. 機構's refusals go
    back with their own codes. False at 機構, which answers itself."""
    rn = frame.header.request_no
    if node.role is Role.MUNICIPAL_CS:
        via_cs(asked).addCallbacks(
            lambda number: proto.send_frame(
                response_type,
                encode_body(KOJIN_BANGO_RESPONSE, {"juminhyo_code": asked, "kojin_bango": number}),
                record_count=1, request_no=rn),
            lambda f: _relay_refusal(node, proto, f, rn),
        )
        return True
    if node.role is Role.PREFECTURE:
        d = node.request(node.peer_with_role(Role.KIKO), frame.msg_type, frame.body, 1)
        d.addCallbacks(
            lambda f: proto.send_frame(response_type, f.body, record_count=1, request_no=rn),
            lambda f: _relay_refusal(node, proto, f, rn),
        )
        return True
    return False


def request_kojin_bango(node: JukinetNode, juminhyo_code: str) -> Deferred[str]:
    """The CS asks for a new 個人番号 (via its prefecture, else 機構 directly) and records it;
    the existing system asks its CS (and records nothing). Refusals errback with RemoteError."""
    body = encode_body(KOJIN_BANGO_REQUEST, {"juminhyo_code": juminhyo_code, "lg_code": node.cfg.org})
    d = node.request(_upstream(node), M.KOJIN_BANGO_REQUEST, body, 1)

    def got(frame: Frame) -> Deferred[str]:
        v = _decode_one(frame, KOJIN_BANGO_RESPONSE)
        number = str(v["kojin_bango"])
        if v["juminhyo_code"] != juminhyo_code:
            raise BadBody("kojin-bango-response: not the 住民票コード asked about")
        if node.role is Role.KIZON_JUKI:
            return succeed(number)
        now = node.now()
        assert node.committer is not None

        def work(conn: Any) -> str:
            register_kojin_bango(conn, number, juminhyo_code, now)
            return number

        return node.committer.submit(work)

    return d.addCallback(got)


def serve_kojin_bango_change(node: JukinetNode, proto: NodeConnection, frame: Frame) -> None:
    """機構 replaces a person's 個人番号 with a new one (a prefecture relays the request, a CS
    asks on for its existing system and records both numbers): the
    old number, if it is the person's, is kept marked replaced and a fresh, never used number
    answered; a number already replaced for that 住民票コード gets the person's current one.
    Every request, answered or refused, leaves a provision record at 機構."""
    rn = frame.header.request_no
    try:
        v = _decode_one(frame, KOJIN_BANGO_CHANGE_REQUEST)
        if node.role is Role.MUNICIPAL_CS:
            _check_own_municipality(node, proto, str(v["lg_code"]))
        _check_requester(proto, str(v["lg_code"]))
    except JukiError as exc:
        node.send_error(proto, exc, request_no=rn)
        _record(node, "kojin_bango", proto.peer_id, "-", "個人番号", "refused", exc.code)
        return
    if _relayed(node, proto, frame, str(v["juminhyo_code"]), M.KOJIN_BANGO_CHANGE_RESPONSE,
                lambda asked: request_kojin_bango_change(node, asked, str(v["kojin_bango"]))):
        return
    code, old = str(v["juminhyo_code"]), str(v["kojin_bango"])
    now = node.now()

    def work(conn: Any) -> str:
        known = kojin_bango_row(conn, old)
        current = st.kojin_bango_of(conn, code)
        if known == (code, REPLACED) and current is not None:
            detail = "already changed"  # the answer was lost: the same new number again
            number = current
        elif known == (code, ACTIVE):
            detail = "changed"
            gen = NumberGenerator("kojin_bango", node.rng, lambda n: st.kojin_bango_used(conn, n))
            number = gen.draw()
            replace_kojin_bango(conn, old, number, code, on=jst_date(now), now=now)
        else:
            raise KojinBangoNotAuthentic(
                "the 個人番号 to replace is not 機構's number of that 住民票コード")
        st.record_provision(conn, kind="kojin_bango", provider=node.node_id,
                            recipient=proto.peer_id, subject=code, items="個人番号",
                            outcome="provided", detail=detail, now=now)
        return number

    _answer_number(node, proto, rn, code, M.KOJIN_BANGO_CHANGE_RESPONSE, work)


def _check_requester(proto: NodeConnection, municipality: str) -> None:
    """R2 on content: a CS (or an existing system) asks for its own residents, a prefecture
    for its own CSs'."""
    role = proto.peer_role
    if role in (Role.MUNICIPAL_CS, Role.KIZON_JUKI) and municipality != proto.peer_org:
        raise WrongSender(f"{proto.peer_id} (org {proto.peer_org}) asked for 市町村 {municipality}")
    if role == Role.PREFECTURE and prefecture_of(municipality) != proto.peer_org:
        raise WrongSender(
            f"{proto.peer_id} (prefecture {proto.peer_org}) asked for 市町村 {municipality}")


def request_kojin_bango_change(node: JukinetNode, juminhyo_code: str,
                               kojin_bango: str) -> Deferred[str]:
    """The CS asks 機構 (via its prefecture, else directly) to replace ``kojin_bango``, the
    person's number, and records the answer: the new number active, the old one kept, marked
    replaced (the existing system asks its CS and records nothing). Fires with the new number
    (refusals errback with RemoteError)."""
    peer = _upstream(node)
    body = encode_body(KOJIN_BANGO_CHANGE_REQUEST, {
        "juminhyo_code": juminhyo_code, "lg_code": node.cfg.org, "kojin_bango": kojin_bango})
    d = node.request(peer, M.KOJIN_BANGO_CHANGE_REQUEST, body, 1)

    def got(frame: Frame) -> Deferred[str]:
        v = _decode_one(frame, KOJIN_BANGO_RESPONSE)
        number = str(v["kojin_bango"])
        if v["juminhyo_code"] != juminhyo_code or number == kojin_bango:
            raise BadBody("kojin-bango-response: not a new number for the 住民票コード asked about")
        if node.role is Role.KIZON_JUKI:
            return succeed(number)
        now = node.now()
        assert node.committer is not None

        def work(conn: Any) -> str:
            replace_kojin_bango(conn, kojin_bango, number, juminhyo_code, on=jst_date(now),
                                now=now)
            return number

        return node.committer.submit(work)

    return d.addCallback(got)


# -- 住民票コード pools ---------------------------------------------------------------------------------


def serve_pool(node: JukinetNode, proto: NodeConnection, frame: Frame) -> None:
    """機構 hands out unused, never-issued 住民票コード."""
    rn = frame.header.request_no
    try:
        v = _decode_one(frame, POOL_REQUEST)
        count = int(v["count"])
        if not 1 <= count <= 10_000:
            raise BadBody(f"pool_request.count must be 1–10000, got {count}")
    except JukiError as exc:
        node.send_error(proto, exc, request_no=rn)
        return
    municipality = str(v["lg_code"])
    now = node.now()

    def work(conn: Any) -> list[str]:
        codes = NumberGenerator("juminhyo_code", node.rng,
                                lambda c: st.juminhyo_code_known(conn, c)).draw_many(count)
        st.record_issued_codes(conn, codes, municipality, now)
        return codes

    assert node.committer is not None
    d = node.committer.submit(work)
    d.addCallbacks(
        lambda codes: proto.send_frame(
            M.POOL_RESPONSE, b"".join(encode_body(POOL_ENTRY, {"juminhyo_code": c}) for c in codes),
            record_count=len(codes), request_no=rn),
        lambda f: node.send_error(proto, _as_juki(f.value), request_no=rn),
    )


def serve_shori_tsuban_fetch(node: JukinetNode, proto: NodeConnection, frame: Frame) -> None:
    """機構 hands the network its (住民票コード, 処理通番) pairs: forget what the request
    acknowledges, answer what is still kept (at most :data:`SHORI_TSUBAN_FETCH_LIMIT`), and leave
    a provision record for each pair the network acknowledged taking."""
    rn = frame.header.request_no
    try:
        acked = [str(v["shori_tsuban"]) for v in decode_bodies(SHORI_TSUBAN_ACK, frame.body)]
    except JukiError as exc:
        node.send_error(proto, exc, request_no=rn)
        return
    now, network, node_id = node.now(), proto.peer_id, node.node_id

    def work(conn: Any) -> list[tuple[str, str, str]]:
        if acked:
            taken = st.kept_shori_tsuban(conn, acked)
            st.record_provisions(conn, [st.provision_row(
                kind="shori_tsuban", provider=node_id, recipient=network, subject=code,
                items="処理通番", outcome="provided", detail="", now=now) for code in taken])
        return st.take_shori_tsuban(conn, acked, SHORI_TSUBAN_FETCH_LIMIT)

    assert node.committer is not None
    d = node.committer.submit(work)
    d.addCallbacks(
        lambda pairs: proto.send_frame(
            M.SHORI_TSUBAN_LIST, b"".join(encode_body(SHORI_TSUBAN_NOTICE, {
                "juminhyo_code": c, "shori_tsuban": t, "lg_code": m}) for t, c, m in pairs),
            record_count=len(pairs), request_no=rn),
        lambda f: node.send_error(proto, _as_juki(f.value), request_no=rn),
    )


def request_pool(node: JukinetNode, count: int) -> Deferred[int]:
    """The CS asks 機構 for ``count`` unused 住民票コード and adds them to its pool."""
    kiko = node.peer_with_role(Role.KIKO)
    body = encode_body(POOL_REQUEST, {"lg_code": node.cfg.org, "count": count})
    d = node.request(kiko, M.POOL_REQUEST, body, 1)

    def got(frame: Frame) -> Deferred[int]:
        codes = [str(r["juminhyo_code"]) for r in decode_bodies(POOL_ENTRY, frame.body)]
        now = node.now()
        assert node.committer is not None
        d2 = node.committer.submit(lambda conn: st.pool_add(conn, codes, now))

        def added(_: object) -> int:
            assert node.pool is not None
            node.pool.add(codes)
            node.pool_metrics()
            return len(codes)

        return d2.addCallback(added)

    def counted(result: object) -> object:
        ok = not isinstance(result, Failure)
        node.metrics.pool_refills.labels(node.node_id, "ok" if ok else "failed").inc()
        return result

    return d.addCallback(got).addBoth(counted)


def take_juminhyo_code(node: JukinetNode) -> Deferred[str]:
    """Hand one code from the pool to the existing system, chosen at random; warns when low."""
    assert node.pool is not None and node.committer is not None
    try:
        code = node.pool.take()
    except PoolExhausted as exc:
        from twisted.internet.defer import fail

        return fail(exc)
    node.pool_metrics()
    if node.pool.is_low:
        log.warn("{node}: 住民票コード pool low: {n} left (low water {lw}); ask 機構 for more", event="pool_low",
                 node=node.node_id, n=len(node.pool), lw=node.pool.low_water)
    return node.committer.submit(lambda conn: st.pool_remove(conn, code)).addCallback(lambda _: code)


def serve_juminhyo_code_draw(node: JukinetNode, proto: NodeConnection, frame: Frame) -> None:
    """The CS hands its existing system unused 住民票コード from its pool, at random; when the
    draw would leave the pool at or under its low-water mark it first asks 機構 for more (a
    failed refill is logged by its code and the pool gives what it has). Refused (5106), taking
    nothing, when the pool holds fewer than asked."""
    rn = frame.header.request_no
    try:
        v = _decode_one(frame, JUMINHYO_CODE_DRAW_REQUEST)
        _check_own_municipality(node, proto, str(v["lg_code"]))
        count = int(v["count"])
        if not 1 <= count <= MAX_CODE_DRAW:
            raise BadBody(f"juminhyo_code_draw_request.count must be 1–{MAX_CODE_DRAW}, got {count}")
    except JukiError as exc:
        node.send_error(proto, exc, request_no=rn)
        return
    pool, committer = node.pool, node.committer
    assert pool is not None and committer is not None
    refill: Deferred[object] = succeed(None)
    if len(pool) - count <= pool.low_water:
        want = min(10_000, max(count, 2 * pool.low_water))

        def refill_failed(f: Failure) -> None:
            log.warn("{node}: 住民票コード pool refill from 機構 failed: {code}", event="pool_refill_failed",
                     node=node.node_id, code=_as_juki(f.value).code)

        refill = maybeDeferred(request_pool, node, want).addErrback(refill_failed)

    def take(_: object) -> Deferred[list[str]]:
        if len(pool) < count:
            raise PoolExhausted(f"the 住民票コード pool holds {len(pool)}, {count} asked for")
        codes = [pool.take() for _ in range(count)]
        node.pool_metrics()

        def work(conn: Any) -> list[str]:
            for c in codes:
                st.pool_remove(conn, c)
            return codes

        return committer.submit(work)

    refill.addCallback(take).addCallbacks(
        lambda codes: proto.send_frame(
            M.JUMINHYO_CODE_DRAW_RESPONSE,
            b"".join(encode_body(POOL_ENTRY, {"juminhyo_code": c}) for c in codes),
            record_count=len(codes), request_no=rn),
        lambda f: node.send_error(proto, _as_juki(f.value), request_no=rn),
    )


def draw_juminhyo_codes(node: JukinetNode, count: int) -> Deferred[list[str]]:
    """The existing system asks its CS for ``count`` unused 住民票コード (refusals errback with
    RemoteError; an answer of another count errbacks with BadBody)."""
    body = encode_body(JUMINHYO_CODE_DRAW_REQUEST, {"lg_code": node.cfg.org, "count": count})
    d = node.request(_upstream(node), M.JUMINHYO_CODE_DRAW_REQUEST, body, 1)

    def got(frame: Frame) -> list[str]:
        codes = [str(r["juminhyo_code"]) for r in decode_bodies(POOL_ENTRY, frame.body)]
        if len(codes) != count or len(set(codes)) != count:
            raise BadBody(f"juminhyo-code-draw answer: {len(codes)} codes for {count} asked")
        return codes

    return d.addCallback(got)


# -- consistency check ------------------------------------------------------------------------------------


def _entries_from_chunk(body: bytes) -> list[Entry]:
    size = CONSISTENCY_ENTRY.record_length
    if len(body) % size:
        raise BadBody(f"consistency chunk of {len(body)} bytes is not whole entries of {size}")
    out = []
    for i in range(0, len(body), size):
        code = body[i:i + 11].decode("ascii", "replace")
        validate_juminhyo_code(code)  # the same check the reference layout decode applies
        out.append(Entry(code, body[i + 11:i + 11 + DIGEST_SIZE]))
    return out


def _diff_body(diffs: list[Diff]) -> bytes:
    empty = b"\x00" * HONNIN_KAKUNIN.record_length
    return b"".join(
        d.kind.value.encode("ascii") + d.juminhyo_code.encode("ascii") + (d.peer_record or empty)
        for d in diffs
    )


def serve_consistency(node: JukinetNode, proto: NodeConnection, frame: Frame) -> None:
    """The peer's side of 整合性確認: compare each chunk against the local file, answer DIFFs."""
    rn = frame.header.request_no
    state = proto.state.get(("cc", rn))
    if state is None:
        municipality = proto.peer_org
        comparer = StreamComparer(st.iter_entries(node.engine, municipality, with_records=True))
        state = proto.state[("cc", rn)] = {"comparer": comparer, "chain": succeed(None)}
    comparer = state["comparer"]
    if frame.msg_type == M.CONSISTENCY_CHUNK:
        try:
            entries = _entries_from_chunk(frame.body)
        except JukiError as exc:
            node.send_error(proto, exc, request_no=rn)
            proto.state.pop(("cc", rn), None)
            _record(node, "consistency", proto.peer_id, "-", "整合性確認", "refused", exc.code)
            return

        def step(_: object) -> Deferred[list[Diff]]:
            return node.read(lambda: comparer.feed(entries))
    else:
        def step(_: object) -> Deferred[list[Diff]]:
            return node.read(comparer.finish)

    def reply(diffs: list[Diff]) -> None:
        proto.send_frame(M.CONSISTENCY_DIFF, _diff_body(diffs), record_count=len(diffs), request_no=rn)
        provided = [d for d in diffs if d.peer_record]
        if provided:  # our 本人確認情報 went to the CS: one provision record each (R5)
            now = node.now()
            rows = [st.provision_row(
                kind="consistency", provider=node.node_id, recipient=proto.peer_id,
                subject=d.juminhyo_code, items="本人確認情報", outcome="provided",
                detail=DiffKind(d.kind).name, now=now) for d in provided]
            assert node.committer is not None
            node.committer.submit(lambda conn: st.record_provisions(conn, rows))
        if frame.msg_type == M.CONSISTENCY_END:
            proto.send_frame(M.CONSISTENCY_END, seq=comparer.compared, request_no=rn)
            proto.state.pop(("cc", rn), None)
            _record(node, "consistency", proto.peer_id, "-", "整合性確認", "provided",
                    f"{comparer.compared} compared")

    def failed(f: Any) -> None:
        err = _as_juki(f.value)
        node.send_error(proto, err, request_no=rn)
        proto.state.pop(("cc", rn), None)
        _record(node, "consistency", proto.peer_id, "-", "整合性確認", "refused", err.code)

    state["chain"] = state["chain"].addCallback(step).addCallbacks(reply, failed)


@dataclass
class ConsistencyReport:
    """What a consistency check found."""

    peer: str
    compared: int = 0
    sent: int = 0
    differences: list[tuple[str, str, list[str]]] = field(default_factory=list)  # kind, code, items

    def counts(self) -> dict[str, int]:
        """Differences by kind."""
        out = {k.name: 0 for k in DiffKind}
        for kind, _, _ in self.differences:
            out[DiffKind(kind).name] += 1
        return out

    def format(self, limit: int = 50) -> str:
        """The human-readable report the CLI prints."""
        c = self.counts()
        lines = [
            f"consistency check with {self.peer}: {self.sent} records sent, {self.compared} compared",
            f"  missing at {self.peer}: {c['MISSING_AT_PEER']}",
            f"  missing at the CS: {c['MISSING_AT_CS']}",
            f"  differing items: {c['DIFFERS']}",
        ]
        for kind, code, items in self.differences[:limit]:
            lines.append(f"  {DiffKind(kind).name:16} {code} {','.join(items)}")
        if len(self.differences) > limit:
            lines.append(f"  … {len(self.differences) - limit} more")
        if not self.differences:
            lines.append("  files are identical")
        return "\n".join(lines)


def _differing_items(cs_record: bytes | None, peer_record: bytes) -> list[str]:
    if cs_record is None or not peer_record.strip(b"\x00"):
        return []
    a, b = decode_body(HONNIN_KAKUNIN, cs_record), decode_body(HONNIN_KAKUNIN, peer_record)
    return [f.label for f in HONNIN_KAKUNIN.fields if a[f.name] != b[f.name]]


def consistency_check(node: JukinetNode, peer: str, *, municipality: str | None = None,
                      chunk: int = CHUNK_ENTRIES, window: int = CHUNK_WINDOW) -> Deferred[ConsistencyReport]:
    """Stream the CS's whole file to ``peer`` in chunks and collect the differences it reports.

    At most ``window`` chunks are unanswered at a time; the file is read in key ranges on the
    reader thread, so memory stays flat however large the file.
    """
    report = ConsistencyReport(peer)
    it: Iterator[Entry] = st.iter_entries(node.engine, municipality or node.cfg.org)
    done: Deferred[ConsistencyReport] = Deferred()
    outstanding = [0]
    exhausted = [False]
    rn_box: list[int] = []
    diffs_raw: list[tuple[str, str, bytes]] = []

    def on_frame(frame: Frame) -> None:
        if frame.msg_type == M.CONSISTENCY_DIFF:
            size = CONSISTENCY_DIFF.record_length
            body = frame.body
            for i in range(0, len(body), size):
                kind = body[i:i + 1].decode("ascii")
                code = body[i + 1:i + 12].decode("ascii")
                diffs_raw.append((kind, code, body[i + 12:i + size]))
            outstanding[0] -= 1
            pump()
        elif frame.msg_type == M.CONSISTENCY_END:
            report.compared = frame.seq
            node.finish_request(rn_box[0], frame)

    def read_chunk() -> list[Entry]:
        return list(itertools.islice(it, chunk))

    reading = [False]

    def pump() -> None:
        if exhausted[0] or reading[0] or outstanding[0] >= window:
            return
        reading[0] = True
        node.read(read_chunk).addCallback(send_chunk).addErrback(done.errback)

    def send(msg_type: int, body: bytes, count: int) -> None:
        link = node.links[peer]
        if not rn_box:
            d = node.request(peer, msg_type, body, count, on_frame=on_frame)
            rn_box.append(node.last_request_no)
            d.addCallbacks(lambda _: finish(), done.errback)
        elif link.proto is None or link.proto.closed:
            if not done.called:
                done.errback(JukiError(f"link to {peer} went down during the check"))
        else:
            link.proto.send_frame(msg_type, body, record_count=count, request_no=rn_box[0])

    def send_chunk(entries: list[Entry]) -> None:
        reading[0] = False
        outstanding[0] += 1
        if not entries:
            exhausted[0] = True
            send(M.CONSISTENCY_END, b"", 0)
            return
        report.sent += len(entries)
        send(M.CONSISTENCY_CHUNK, b"".join(e.juminhyo_code.encode("ascii") + e.digest for e in entries),
             len(entries))
        pump()

    def finish() -> None:
        codes = [code for kind, code, _ in diffs_raw if kind == DiffKind.DIFFERS.value]
        if not codes:
            report.differences = [(k, c, []) for k, c, _ in diffs_raw]
            done.callback(report)
            return

        def load() -> dict[str, bytes]:
            with node.engine.connect() as conn:
                return st.records_of(conn, codes)

        def build(mine: dict[str, bytes]) -> None:
            report.differences = [
                (k, c, _differing_items(mine.get(c), rec) if k == DiffKind.DIFFERS.value else [])
                for k, c, rec in diffs_raw
            ]
            done.callback(report)

        node.read(load).addCallbacks(build, done.errback)

    pump()
    return done


# -- 特例転入: the 転出証明書情報 -------------------------------------------------------------------

_SHOMEI_ITEMS = "転出証明書情報"


def serve_tenshutsu_shomei_notify(node: JukinetNode, proto: NodeConnection, frame: Frame) -> None:
    """The CS keeps the 転出証明書情報 its existing system gives it at a 転出届 (one per
    住民票コード, a later one replacing it) and answers once that is committed."""
    rn = frame.header.request_no
    try:
        v = _decode_one(frame, TENSHUTSU_SHOMEI)
        old, new = str(v["old_lg_code"]), str(v["new_lg_code"])
        _check_own_municipality(node, proto, old)
        if new == old:
            raise BadBody("tenshutsu-shomei: 転出先 and 転出元 are one 市町村")
    except JukiError as exc:
        node.send_error(proto, exc, request_no=rn)
        return
    code, tokurei, record, now = str(v["juminhyo_code"]), v["tokurei"] == "1", frame.body, node.now()
    assert node.committer is not None
    d = node.committer.submit(
        lambda conn: st.keep_tenshutsu_shomei(conn, code, new, tokurei, record, now))
    d.addCallbacks(
        lambda _: proto.send_frame(M.TENSHUTSU_SHOMEI_ACCEPTED, b"", record_count=0,
                                   request_no=rn),
        lambda f: node.send_error(proto, _as_juki(f.value), request_no=rn))


def _linked(node: JukinetNode, peer: str, municipality: str) -> str:
    if peer not in node.links:
        raise UnknownMunicipality(f"{node.node_id} has no link to {peer} for 市町村 {municipality}")
    return peer


def _shomei_next_hop(node: JukinetNode, proto: NodeConnection, old: str, new: str) -> str | None:
    """Where a 転出証明書情報 request goes from this node (None: this CS answers it), after the
    checks of docs/moves.md (5104 wrong asker or hop, 5105 no link on the way)."""
    came = proto.peer_role
    if node.role is Role.MUNICIPAL_CS:
        if came == Role.KIZON_JUKI:
            _check_own_municipality(node, proto, new)
            return _upstream(node)
        if old != node.cfg.org:
            raise WrongSender(f"{node.node_id} (市町村 {node.cfg.org}) was asked for the "
                              f"転出証明書情報 of 市町村 {old}")
        return None
    if node.role is Role.PREFECTURE:
        if came == Role.MUNICIPAL_CS:
            _check_requester(proto, new)
            if prefecture_of(old) != node.cfg.org:
                return node.peer_with_role(Role.KIKO)
        elif prefecture_of(old) != node.cfg.org:
            raise WrongSender(f"{node.node_id} serves prefecture {node.cfg.org}, not 市町村 {old}")
        return _linked(node, cs_node_id(old), old)
    _check_requester(proto, new)  # 機構
    return _linked(node, prefecture_node_id(prefecture_of(old)), old)


def serve_tenshutsu_shomei_request(node: JukinetNode, proto: NodeConnection,
                                   frame: Frame) -> None:
    """A 特例転入's request for the 転出証明書情報: passed on towards the old municipality's CS
    (the answer or refusal relayed back), or answered by that CS from its store with a
    provision record either way (docs/moves.md)."""
    rn = frame.header.request_no
    try:
        v = _decode_one(frame, TENSHUTSU_SHOMEI_REQUEST)
        code, old, new = str(v["juminhyo_code"]), str(v["old_lg_code"]), str(v["new_lg_code"])
        if old == new:
            raise BadBody("tenshutsu-shomei-request: 転出元 and 転入先 are one 市町村")
        hop = _shomei_next_hop(node, proto, old, new)
    except JukiError as exc:
        node.send_error(proto, exc, request_no=rn)
        _record(node, "tenshutsu_shomei", proto.peer_id, "-", _SHOMEI_ITEMS, "refused", exc.code)
        return
    if hop is not None:
        d = node.request(hop, M.TENSHUTSU_SHOMEI_REQUEST, frame.body, 1)
        d.addCallback(lambda f: _shomei_of(f, code))
        d.addCallbacks(
            lambda body: proto.send_frame(M.TENSHUTSU_SHOMEI_RESPONSE, body, record_count=1,
                                          request_no=rn),
            lambda f: _relay_refusal(node, proto, f, rn))
        return
    born, now, recipient = str(v["birth_date"]), node.now(), cs_node_id(new)

    def work(conn: Any) -> bytes | JukiError:
        kept = st.tenshutsu_shomei_of(conn, code)
        subject = "-"
        try:
            if kept is None or str(decode_body(TENSHUTSU_SHOMEI, kept[2])["birth_date"]) != born:
                raise TenshutsuShomeiUnknown(
                    "no 転出証明書情報 of that person is kept here (住民票コード or 生年月日)")
            subject = code
            declared, tokurei, record = kept
            if not tokurei:
                raise NotTokureiTenshutsu("the person moved out with a paper 転出証明書")
            if declared != new:
                raise TenshutsuShomeiWrongRequester(
                    f"the person declared another 転出先 than 市町村 {new}")
        except JukiError as exc:
            st.record_provision(conn, kind="tenshutsu_shomei", provider=node.node_id,
                                recipient=recipient, subject=subject, items=_SHOMEI_ITEMS,
                                outcome="refused", detail=exc.code, now=now)
            return exc
        st.record_provision(conn, kind="tenshutsu_shomei", provider=node.node_id,
                            recipient=recipient, subject=code, items=_SHOMEI_ITEMS,
                            outcome="provided", detail="", now=now)
        return record

    def answer(result: bytes | JukiError) -> None:
        if isinstance(result, JukiError):
            node.send_error(proto, result, request_no=rn)
        else:
            proto.send_frame(M.TENSHUTSU_SHOMEI_RESPONSE, result, record_count=1, request_no=rn)

    assert node.committer is not None
    node.committer.submit(work).addCallbacks(
        answer, lambda f: node.send_error(proto, _as_juki(f.value), request_no=rn))


def _shomei_of(frame: Frame, code: str) -> bytes:
    """The one `tenshutsu-shomei` record of an answer, checked to be about ``code``."""
    if _decode_one(frame, TENSHUTSU_SHOMEI)["juminhyo_code"] != code:
        raise BadBody("tenshutsu-shomei: not the 住民票コード asked about")
    return frame.body


def register_tenshutsu_shomei(node: JukinetNode, values: dict[str, Any]) -> Deferred[None]:
    """The existing system gives its CS a 転出証明書情報 (``values``: the layout's items)."""
    d = node.request(_upstream(node), M.TENSHUTSU_SHOMEI_NOTIFY,
                     encode_body(TENSHUTSU_SHOMEI, values), 1)
    return d.addCallback(lambda _: None)


def request_tenshutsu_shomei(node: JukinetNode, juminhyo_code: str, birth_date: str,
                             old_municipality: str, *, operator: str | None = None,
                             terminal: str | None = None) -> Deferred[dict[str, Any]]:
    """The existing system of the new municipality asks (through its CS) for a person's
    転出証明書情報 (特例転入); fires with its items (refusals errback with RemoteError)."""
    body = encode_body(TENSHUTSU_SHOMEI_REQUEST, {
        "juminhyo_code": juminhyo_code, "birth_date": birth_date,
        "old_lg_code": old_municipality, "new_lg_code": node.cfg.org,
        "operator_id": operator, "terminal_id": terminal})
    d = node.request(_upstream(node), M.TENSHUTSU_SHOMEI_REQUEST, body, 1)
    return d.addCallback(lambda f: decode_body(TENSHUTSU_SHOMEI, _shomei_of(f, juminhyo_code)))


# -- 転入通知 to the existing system (and to a CS its prefecture has no link to) ----------------------


def serve_move_in_fetch(node: JukinetNode, proto: NodeConnection, frame: Frame) -> None:
    """The old municipality's CS hands the 転入通知 it received to its existing system (a
    prefecture those it holds for a CS of its own it has no link to): the deliveries up to the
    header's seq are forgotten (the asker has processed them), the next ones (at most
    MAX_MOVE_IN_DELIVERIES) are answered; nothing is lost if an answer is, since only an
    acknowledgement forgets."""
    from juki_gateway.gateway.jukinet.inbound import held_link, kizon_link

    rn = frame.header.request_no
    own = (prefecture_of(proto.peer_org) if node.role is Role.PREFECTURE else proto.peer_org)
    if own != node.cfg.org:
        node.send_error(proto, WrongSender(
            f"{proto.peer_id} (org {proto.peer_org}) may not fetch the 転入通知 {node.node_id} "
            f"(org {node.cfg.org}) holds"), request_no=rn)
        return
    link = (held_link(node.node_id, proto.peer_org) if node.role is Role.PREFECTURE
            else kizon_link(node.node_id))
    acked, now = frame.header.seq, node.now()

    def work(conn: Any) -> bytes:
        answered = st.answered_upto(conn, link)
        if acked > answered:  # an acknowledgement of deliveries never handed out forgets nothing
            raise LinkProtocolError(
                f"acknowledges delivery {acked}, but only 1…{answered} were handed out")
        st.settle(conn, link, acked, now)
        _last, pending = st.load_outbox(conn, link)
        due = [r for r in pending if r.seq > acked][:MAX_MOVE_IN_DELIVERIES]
        if due:
            st.mark_answered(conn, link, due[-1].seq)
        return b"".join(encode_body(MOVE_IN_DELIVERY, {"delivery_no": r.seq, "notice": r.record})
                        for r in due)

    assert node.committer is not None
    d = node.committer.submit(work)
    d.addCallbacks(
        lambda body: proto.send_frame(M.MOVE_IN_NOTICE_LIST, body,
                                      record_count=len(body) // MOVE_IN_DELIVERY.record_length,
                                      request_no=rn),
        lambda f: node.send_error(proto, _as_juki(f.value), request_no=rn))


def fetch_move_in_notices(node: JukinetNode, cs: str, acked: int) -> Deferred[list[tuple[int, bytes]]]:
    """The existing system's side: (delivery_no, 転入通知 record) not yet acknowledged, after
    acknowledging everything up to ``acked``."""
    d = node.request(cs, M.MOVE_IN_NOTICE_FETCH, b"", 0, seq=acked)
    return d.addCallback(lambda f: [
        (int(v["delivery_no"]), bytes(v["notice"]))
        for v in decode_bodies(MOVE_IN_DELIVERY, f.body)])


def _record(node: JukinetNode, kind: str, recipient: str, subject: str, items: str,
            outcome: str, detail: str) -> None:
    """Leave one provision record (R5) in the node's store, in the next group commit."""
    now = node.now()
    assert node.committer is not None
    node.committer.submit(lambda conn: st.record_provision(
        conn, kind=kind, provider=node.node_id, recipient=recipient, subject=subject,
        items=items, outcome=outcome, detail=detail, now=now))


def _relay_refusal(node: JukinetNode, proto: NodeConnection, failure: Failure, rn: int) -> None:
    """A relayed request failed: 機構's refusal goes back to the asker as 機構 sent it (its
    code, name and detail), anything else (the link to 機構 down …) as this node's error."""
    err = failure.value
    if isinstance(err, RemoteError):
        node.count_error(err.remote_name)
        proto.send_frame(MessageType.ERROR, encode_error(err.remote_code, err.remote_name, err.detail),
                         record_count=1, request_no=rn)
        return
    node.send_error(proto, _as_juki(err), request_no=rn)


def _as_juki(exc: BaseException | None) -> JukiError:
    if isinstance(exc, JukiError):
        return exc
    return JukiError(f"internal error: {type(exc).__name__}")


__all__ = ["ConsistencyReport", "MessageType"]
