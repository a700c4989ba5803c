"""The conformance suite: the rules R1–R12 that apply to one role, run against any implementation.

Each :class:`Case` names its rule (its id starts with it: ``R4-duplicate``), the seed section it
comes from, and what it checks; it runs over real mutual TLS against ``--target`` and ends PASS,
FAIL (with what was seen instead), SKIP (with what it would need) or ERROR (the target could not
be tested: unreachable, not TLS). The report is text plus JUnit XML (``--junit FILE``; one
``testcase`` per case, ``failure``/``skipped``/``error`` elements). docs/conformance.md is the
tester's guide: certificates, which identity, what each case changes on the target, resetting.

Before any case, ``R1-accepted-peer`` proves the identity given (``--cert``/``--key``) can
connect: a TCP connection, a completed TLS handshake and a PING answered with PONG. If it
cannot, the suite stops with an ERROR: a refusal case can only pass against a target that speaks
TLS (a closed port or a plain-TCP listener "refuses" everything). A refusal case passes only
when the target refused at the TLS layer (during the handshake, or by closing right after it
without answering); a failed TCP connection there is an ERROR.

The identity must be a *conformance identity*: a certificate issued for the suite (CN starting
``conf-``), never one of the target's real peers. The sequenced cases (R4) send real
更新順番号-numbered updates as that identity; the target keeps a separate sequence per sender,
so the suite has its own and the target's real links are untouched. As any other name they are
skipped: they would consume that peer's numbers. Their records are synthetic residents of
``--municipality`` (default: the identity's own 市町村 for a CS or an existing system), marked
``操作者ID``/``操作端末ID`` ``CONFORMANCE`` so that the target's operators can find them.
With ``--pki DIR`` holding the CA's key (``ca.key``), the suite also issues throwaway
certificates for the refusal cases (expired, wrong role, other org).
``--flagged-fugo`` names a 符号 of a person the target holds under an auto-response-block flag.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from juki_gateway.codecs.frame import Frame, encode_frame
from juki_gateway.codecs.messages import MessageType, decode_error
from juki_gateway.errors import JukiError, UsageError
from juki_gateway.protocols.jukinet.messages import JukinetMessage
from juki_gateway.simulators.client import (
    STAGE_CONNECT,
    STAGE_HANDSHAKE,
    ExchangeTimeout,
    FrameConnection,
    Identity,
    PeerRefused,
    open_connection,
    timestamp,
)
from juki_gateway.simulators.drivers import update_record
from juki_gateway.simulators.population import build_population

#: Roles the suite can test, the node name it expects by default, and the role it refuses.
ROLE_DEFAULTS: dict[str, tuple[str, str]] = {
    "municipal-cs": ("cs-172014", "ipnw"),
    "prefecture": ("pref-17", "kizon-juki"),
    "kiko": ("kiko", "kizon-juki"),
    "intermediate": ("ims-172014", "kizon-juki"),
}
SEQUENCED_ROLES = frozenset({"municipal-cs", "prefecture", "kiko"})
SEARCH_ROLES = frozenset({"prefecture", "kiko"})
#: The CN prefix of a conformance identity: sequenced updates are sent only as one.
CONFORMANCE_PREFIX = "conf-"
#: 操作者ID and 操作端末ID of every record the suite sends, to find them at the target.
CONFORMANCE_MARK = "CONFORMANCE"
#: The case that proves the identity can connect; it runs first, and on failure stops the suite.
PREFLIGHT = "R1-accepted-peer"


@dataclass
class CaseResult:
    """How one case ended."""

    case_id: str
    rule: str
    seed: str
    title: str
    status: str  # pass | fail | skip | error
    detail: str
    seconds: float


class CaseFailed(Exception):
    """Raised inside a case: the target did not behave as the rule requires."""


class CaseSkipped(Exception):
    """Raised inside a case: it cannot run with what the tester gave."""


class CaseError(Exception):
    """Raised inside a case: the target could not be tested (unreachable, not TLS)."""


@dataclass(frozen=True, slots=True)
class Target:
    """The implementation under test and how to reach it."""

    role: str
    host: str
    port: int
    server_name: str
    peer: Identity
    pki: Path | None = None
    flagged_fugo: str | None = None
    #: the 市町村コード of the records the sequenced cases send (default: the identity's own)
    municipality: str | None = None
    #: how long to wait for a connection, a handshake or an answer
    timeout: float = 8.0


@dataclass(frozen=True, slots=True)
class Case:
    """One conformance case."""

    case_id: str
    rule: str
    seed: str
    title: str
    roles: frozenset[str]
    run: Callable[[Suite], Awaitable[str]]


@dataclass
class Suite:
    """Runs the cases of one role against one target."""

    reactor: Any
    target: Target
    results: list[CaseResult] = field(default_factory=list)
    #: the intermediate server cases distributed their permission list (once per run)
    permission_list_sent: bool = False
    _tmp: Path | None = None
    _seq_base: int | None = None

    # -- helpers for cases ----------------------------------------------------------------
    async def connect(self, ident: Identity | None = None, *, probe: bool = True) -> FrameConnection:
        """A connection as ``ident`` (default: the accepted peer)."""
        t = self.target
        return await open_connection(self.reactor, t.host, t.port, ident or t.peer, t.server_name,
                                     timeout=t.timeout, probe=probe,
                                     probe_frame=self.ping(ident or t.peer))

    def ping(self, ident: Identity) -> bytes:
        """A PING frame from ``ident``."""
        return encode_frame(MessageType.PING, ident.name, self.target.server_name,
                            timestamp=timestamp(self.reactor))

    def workdir(self) -> Path:
        """A scratch directory for throwaway certificates."""
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="juki-conformance-"))
        return self._tmp

    def issue(self, name: str, role: str, org: str, *, expired: bool = False,
              other_ca: bool = False) -> Identity:
        """A throwaway certificate: from the target's CA (needs --pki) or from a rogue CA."""
        from juki_gateway.certs.identity import PeerIdentity
        from juki_gateway.certs.pki import CertificateAuthority, write_pair

        now = dt.datetime.fromtimestamp(self.reactor.seconds(), dt.UTC)
        tmp = self.workdir()
        if other_ca:
            ca = CertificateAuthority.create(tmp / "rogue-ca", now, common_name="rogue CA")
        else:
            if self.target.pki is None or not (self.target.pki / "ca.key").exists():
                raise CaseSkipped("needs --pki DIR holding the target CA's ca.key")
            ca = CertificateAuthority.load(self.target.pki)
        kwargs: dict[str, Any] = {}
        if expired:
            kwargs = {"not_before": now - dt.timedelta(days=10),
                      "not_after": now - dt.timedelta(days=1)}
        label = f"{name}-{'expired' if expired else 'rogue' if other_ca else 'issued'}"
        cert, key = ca.issue(PeerIdentity(name, role, org), now, write=False, **kwargs)
        write_pair(tmp, label, cert, key)
        return Identity(name, tmp / f"{label}.pem", tmp / f"{label}.key", self.target.peer.ca)

    async def expect_refused(self, ident: Identity) -> str:
        """The connection as ``ident`` must get nothing: refused at the TLS layer (an alert or a
        close during or right after the handshake) or no answer at all. A failed TCP connection
        proves nothing: an ERROR, not a pass."""
        try:
            conn = await self.connect(ident)
        except PeerRefused as exc:
            if exc.stage == STAGE_CONNECT:
                raise CaseError(exc.message) from None
            when = "in the handshake" if exc.stage == STAGE_HANDSHAKE else "after the handshake"
            return f"refused {when} ({exc.alert or exc.message})"
        except ExchangeTimeout as exc:
            return f"got nothing ({exc.message} within {self.target.timeout:g} s)"
        await conn.close()
        raise CaseFailed(f"{ident.name}'s connection was answered (PONG)")

    async def preflight(self) -> str:
        """The accepted identity connects: TCP, a completed TLS handshake, PING answered by PONG."""
        t = self.target
        where = f"{t.host}:{t.port}"
        try:
            conn = await self.connect()
        except PeerRefused as exc:
            if exc.stage == STAGE_CONNECT:
                raise CaseError(f"{exc.message}: is the target running?") from None
            reason = exc.alert or ""
            if "certificate verify failed" in reason:
                raise CaseError(f"{where}'s certificate does not chain to --ca {t.peer.ca} or "
                                f"does not name {t.server_name} (--server-name)") from None
            if exc.stage == STAGE_HANDSHAKE and "alert" not in reason:
                # no TLS alert came back: an OpenSSL error of our own (wrong version number,
                # packet length too long) or the connection closed mid-handshake
                raise CaseError(f"{where} did not complete a TLS handshake ({exc.message}): "
                                "is it a TLS endpoint?") from None
            raise CaseError(f"{where} refused {t.peer.name}, the identity it must accept "
                            f"({exc.alert or exc.message}): see docs/conformance.md, "
                            "\"Certificates\"") from None
        except ExchangeTimeout as exc:
            if exc.stage == STAGE_HANDSHAKE:
                raise CaseError(f"{where} accepted a TCP connection but no TLS handshake within "
                                f"{t.timeout:g} s: is it a TLS endpoint?") from None
            raise CaseError(f"{where} completed the TLS handshake but did not answer a PING "
                            f"within {t.timeout:g} s") from None
        try:
            if conn.unsolicited:
                raise CaseError(f"{where} answered a PING with {_describe(conn.unsolicited[0])}, "
                                "not PONG")
        finally:
            await conn.close()
        return f"{t.peer.name}: TCP connected, TLS handshake completed, PING answered with PONG"

    def sender(self) -> Identity:
        """The identity sequenced updates are sent as: only a conformance identity."""
        name = self.target.peer.name
        if not name.startswith(CONFORMANCE_PREFIX):
            raise CaseSkipped(
                f"sequenced updates are sent only as a conformance identity (CN {CONFORMANCE_PREFIX}"
                f"…): as {name} they would take {name}'s 更新順番号 at the target and break its "
                "real link (docs/conformance.md)")
        return self.target.peer

    def municipality(self) -> str:
        """The 市町村コード of the records the sequenced cases send."""
        if self.target.municipality is not None:
            return self.target.municipality
        role, org = _peer_role(self)
        if role in ("kizon-juki", "municipal-cs"):
            return org
        raise CaseSkipped(f"a {role} identity sends records of one of its 市町村: give "
                          "--municipality CODE (a test 市町村 of its prefecture)")

    def close(self) -> None:
        """Remove the scratch directory."""
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    # -- running --------------------------------------------------------------------------
    async def run(self, cases: list[Case]) -> list[CaseResult]:
        """Prove the identity can connect, then run every case that applies to the target's
        role, in order; a target that cannot be reached over TLS ends the run with an ERROR."""
        todo = [c for c in cases if self.target.role in c.roles]
        first = next((c for c in todo if c.case_id == PREFLIGHT), PREFLIGHT_CASE)
        try:
            result = await self._one(first)
            if result.status != "pass":
                if result.status == "fail":  # a refused or silent identity: nothing else can run
                    result.status = "error"
                return self.results
            for case in todo:
                if case.case_id != PREFLIGHT:
                    await self._one(case)
        finally:
            self.close()
        return self.results

    async def _one(self, case: Case) -> CaseResult:
        started = time.monotonic()
        try:
            detail = await case.run(self)
            status = "pass"
        except CaseFailed as exc:
            status, detail = "fail", str(exc)
        except CaseSkipped as exc:
            status, detail = "skip", str(exc)
        except CaseError as exc:
            status, detail = "error", str(exc)
        except PeerRefused as exc:
            status = "error" if exc.stage == STAGE_CONNECT else "fail"
            detail = f"{type(exc).__name__}: {exc}"
        except (JukiError, OSError) as exc:
            status, detail = "fail", f"{type(exc).__name__}: {exc}"
        result = CaseResult(case.case_id, case.rule, case.seed, case.title, status, detail,
                            time.monotonic() - started)
        self.results.append(result)
        return result


# -- the cases --------------------------------------------------------------------------------


def _error_of(frame: Frame) -> tuple[int, str]:
    code, name, _detail = decode_error(frame.body)
    return code, name


async def case_no_certificate(s: Suite) -> str:
    return await s.expect_refused(Identity(s.target.peer.name, None, None, s.target.peer.ca))


async def case_unknown_ca(s: Suite) -> str:
    peer = s.target.peer
    return await s.expect_refused(s.issue(peer.name, "kizon-juki", "172014", other_ca=True))


async def case_expired(s: Suite) -> str:
    peer = s.target.peer
    role, org = _peer_role(s)
    return await s.expect_refused(s.issue(peer.name, role, org, expired=True))


def _peer_role(s: Suite) -> tuple[str, str]:
    from juki_gateway.certs.pki import load_certificate
    from juki_gateway.gateway.tls import describe_certificate

    assert s.target.peer.cert is not None
    ident = describe_certificate(load_certificate(s.target.peer.cert)).identity
    if ident is None:
        raise CaseSkipped("the --cert given carries no juki identity")
    return ident.role, ident.org


async def case_wrong_role(s: Suite) -> str:
    refused_role = ROLE_DEFAULTS[s.target.role][1]
    return await s.expect_refused(s.issue(f"conf-{refused_role}", refused_role, "172014"))


async def case_wrong_org(s: Suite) -> str:
    role, _org = _peer_role(s)
    other = {"kizon-juki": "131016", "municipal-cs": "162019", "bango-renkei": "131016"}.get(role)
    if other is None:
        raise CaseSkipped(f"no organisation rule applies to peers of role {role}")
    return await s.expect_refused(s.issue(f"conf-{other}", role, other))


async def case_ping(s: Suite) -> str:
    return await s.preflight()


async def _expect_error(s: Suite, data: bytes, want_code: str | None = None) -> tuple[Frame, FrameConnection]:
    conn = await s.connect()
    try:
        [answer] = await conn.request(data, 1, timeout=s.target.timeout)
    except (PeerRefused, ExchangeTimeout) as exc:
        raise CaseFailed(f"no ERROR frame: {exc.message}") from None
    if answer.header.msg_type != MessageType.ERROR:
        raise CaseFailed(f"answered with message type 0x{answer.header.msg_type:04X}, not ERROR")
    _code, name = _error_of(answer)
    if want_code is not None and name != want_code:
        raise CaseFailed(f"ERROR code {name}, expected {want_code}")
    return answer, conn


async def case_bad_magic(s: Suite) -> str:
    ping = s.ping(s.target.peer)
    answer, conn = await _expect_error(s, b"XXXX" + ping[4:], "bad_magic")
    try:
        await conn.request(ping, 1, timeout=3.0)
    except (PeerRefused, ExchangeTimeout):
        return f"ERROR {_error_of(answer)[0]} bad_magic, then the connection closed"
    raise CaseFailed("the connection stayed open after a frame that broke synchronisation")


async def case_unknown_type(s: Suite) -> str:
    frame = encode_frame(0x7E7E, s.target.peer.name, s.target.server_name,
                         timestamp=timestamp(s.reactor))
    answer, conn = await _expect_error(s, frame)
    [pong] = await conn.request(s.ping(s.target.peer), 1, timeout=s.target.timeout)
    await conn.close()
    if pong.header.msg_type != MessageType.PONG:
        raise CaseFailed("the connection did not survive an unknown message type")
    return f"ERROR {'/'.join(map(str, _error_of(answer)))}; connection survived"


async def case_body_length(s: Suite) -> str:
    seq, sender = 1, s.target.peer
    if s.target.role in SEQUENCED_ROLES:
        # a sequenced type, at the number the target expects next: an old number would be
        # acknowledged as a duplicate without being read, a later one answered with a gap
        updates = _Updates(s)
        sender = updates.sender
        first = await s.connect(sender)
        seq = await updates.base(first) + 1
        await first.close()
        s._seq_base = None  # whether a refused number counts as used is the target's choice
    mt = (JukinetMessage.UPDATE_NOTIFY if s.target.role in SEQUENCED_ROLES else 0x0631)
    frame = encode_frame(mt, sender.name, s.target.server_name, b"\x00" * 7,
                         record_count=1, seq=seq, timestamp=timestamp(s.reactor))
    answer, conn = await _expect_error(s, frame)
    await conn.close()
    return f"ERROR {'/'.join(map(str, _error_of(answer)))}"


class _Updates:
    """Sequenced UPDATE_NOTIFY frames from the conformance sender, numbered after what the
    target has applied from it; synthetic residents of the conformance 市町村, marked."""

    def __init__(self, s: Suite) -> None:
        self.s = s
        self.sender = s.sender()
        lg_code = s.municipality()
        pop = build_population(20, seed=int(s.reactor.seconds()) % 100000, as_of=dt.date(2026, 4, 1))
        # no 個人番号: only 機構 generates them, and 機構 refuses one it did not generate
        self.records = [update_record(r, "tenkyo", "20260401", lg_code=lg_code,
                                      with_kojin_bango=False, operator_id=CONFORMANCE_MARK,
                                      terminal_id=CONFORMANCE_MARK) for r in pop]

    def frame(self, seq: int) -> bytes:
        body = self.records[seq % len(self.records)]
        return encode_frame(JukinetMessage.UPDATE_NOTIFY, self.sender.name,
                            self.s.target.server_name, body, record_count=1, seq=seq,
                            timestamp=timestamp(self.s.reactor))

    async def connect(self) -> FrameConnection:
        return await self.s.connect(self.sender)

    async def send(self, conn: FrameConnection, seq: int) -> Frame:
        [answer] = await conn.request(self.frame(seq), 1, timeout=self.s.target.timeout)
        return answer

    async def base(self, conn: FrameConnection) -> int:
        """The last number the target applied from the sender (learned by sending number 1:
        applied on a first run, acknowledged as a duplicate naming the last one after)."""
        if self.s._seq_base is None:
            answer = await self.send(conn, 1)
            if answer.header.msg_type != MessageType.ACK:
                raise CaseFailed(f"number 1 answered with {_describe(answer)}, not ACK")
            self.s._seq_base = answer.header.seq
        return self.s._seq_base


def _describe(frame: Frame) -> str:
    mt = frame.header.msg_type
    if mt in (MessageType.ERROR, MessageType.NACK):
        code, name = _error_of(frame)
        return f"{'ERROR' if mt == MessageType.ERROR else 'NACK'} {code} {name} (seq {frame.header.seq})"
    return f"{MessageType(mt).name if mt in MessageType._value2member_map_ else hex(mt)} seq {frame.header.seq}"


def _is_ack(frame: Frame, seq: int) -> bool:
    return frame.header.msg_type == MessageType.ACK and frame.header.seq == seq


async def case_in_order(s: Suite) -> str:
    u = _Updates(s)
    conn = await u.connect()
    base = await u.base(conn)
    for seq in (base + 1, base + 2):
        answer = await u.send(conn, seq)
        if not _is_ack(answer, seq):
            raise CaseFailed(f"number {seq} answered with {_describe(answer)}, expected ACK {seq}")
    s._seq_base = base + 2
    await conn.close()
    return f"numbers {base + 1} and {base + 2} acknowledged in order"


async def case_duplicate(s: Suite) -> str:
    """Applied twice shows in the numbers: the duplicate's ACK names a later number, or the next
    number is answered as a gap (the duplicate took its place). Any other refusal is reported
    as what it is, not as a duplicate applied twice."""
    u = _Updates(s)
    conn = await u.connect()
    base = await u.base(conn)
    one, two = base + 1, base + 2
    first = await u.send(conn, one)
    if not _is_ack(first, one):
        raise CaseFailed(f"number {one} answered with {_describe(first)}, expected ACK {one} "
                         "(the case could not start)")
    dup = await u.send(conn, one)
    if dup.header.msg_type == MessageType.ACK and dup.header.seq > one:
        raise CaseFailed(f"the duplicate of {one} was acknowledged as {dup.header.seq}: "
                         "applied twice")
    if not _is_ack(dup, one):
        raise CaseFailed(f"the duplicate of {one} answered with {_describe(dup)}, "
                         f"expected ACK {one} (acknowledged again, not applied again)")
    nxt = await u.send(conn, two)
    await conn.close()
    if nxt.header.msg_type == MessageType.NACK and nxt.header.seq > two:
        raise CaseFailed(f"after the duplicate of {one}, number {two} was answered as a gap "
                         f"expecting {nxt.header.seq}: the duplicate was applied twice")
    if not _is_ack(nxt, two):
        raise CaseFailed(f"after the duplicate of {one}, number {two} answered with "
                         f"{_describe(nxt)}, expected ACK {two}")
    s._seq_base = two
    return f"duplicate of {one} acknowledged as {one} without being applied again; {two} then acknowledged"


async def case_gap(s: Suite) -> str:
    u = _Updates(s)
    conn = await u.connect()
    base = await u.base(conn)
    answer = await u.send(conn, base + 3)
    await conn.close()
    if answer.header.msg_type != MessageType.NACK:
        raise CaseFailed(f"a gap (sent {base + 3}, expected {base + 1}) answered with {_describe(answer)}")
    code, name = _error_of(answer)
    if answer.header.seq != base + 1 or code != 5101:
        raise CaseFailed(f"NACK names {answer.header.seq} with code {code} {name}; "
                         f"expected {base + 1} and 5101 sequence_gap")
    return f"NACK 5101 naming expected number {base + 1}"


async def _search(s: Suite, **fields: str) -> Frame:
    from juki_gateway.protocols.jukinet.layouts import SEARCH_REQUEST, encode_body

    values = {"juminhyo_code": "", "kojin_bango": "", "name": "", "birth_date": "",
              "address": "", "sex": "", **fields}
    frame = encode_frame(JukinetMessage.SEARCH_REQUEST, s.target.peer.name, s.target.server_name,
                         encode_body(SEARCH_REQUEST, values), record_count=1, request_no=7,
                         timestamp=timestamp(s.reactor))
    conn = await s.connect()
    [answer] = await conn.request(frame, 1, timeout=s.target.timeout)
    await conn.close()
    return answer


#: searches R3 refuses, each by what it gives (性別 never counts, a 住所 only down to a 市区町村)
TOO_BROAD: tuple[tuple[str, dict[str, str]], ...] = (
    ("氏名+性別", {"name": "金沢\u3000花子", "sex": "2"}),
    ("生年月日+住所", {"birth_date": "19800401", "address": "石川県金沢市広坂１丁目"}),
    ("氏名+1-character 住所", {"name": "金沢\u3000花子", "address": "石"}),
    ("氏名+prefecture-only 住所", {"name": "金沢\u3000花子", "address": "石川県", "sex": "2"}),
)
#: searches R3 lets through
NARROW: tuple[tuple[str, dict[str, str]], ...] = (
    ("氏名+生年月日", {"name": "金沢\u3000花子", "birth_date": "19800401"}),
    ("氏名+市区町村", {"name": "金沢\u3000花子", "address": "石川県金沢市"}),
)


async def case_search_too_broad(s: Suite) -> str:
    for label, fields in TOO_BROAD:
        answer = await _search(s, **fields)
        if answer.header.msg_type != MessageType.ERROR or _error_of(answer)[0] != 5102:
            raise CaseFailed(f"a search by {label} answered with {_describe(answer)}, "
                             "expected ERROR 5102 search_too_broad")
    return f"{', '.join(label for label, _ in TOO_BROAD)} refused with 5102 search_too_broad"


async def case_search_narrow(s: Suite) -> str:
    from juki_gateway.protocols.jukinet.search import decode_search_answer

    seen = []
    for label, fields in NARROW:
        answer = await _search(s, **fields)
        if answer.header.msg_type != JukinetMessage.SEARCH_RESPONSE:
            raise CaseFailed(f"a search by {label} answered with {_describe(answer)}")
        try:
            got = decode_search_answer(answer.body)
        except JukiError as exc:
            raise CaseFailed(f"the answer to a search by {label} is malformed: {exc}") from None
        seen.append(f"{label}: {answer.header.record_count} of {got.total}"
                    f"{' (truncated)' if got.truncated else ''}")
    return f"answered, {'; '.join(seen)}"


PREFLIGHT_CASE = Case(
    PREFLIGHT, "R1", "III(2)5 リスク1",
    "the accepted identity connects: TLS handshake completed, PING answered with PONG "
    "(run first; if it fails the suite stops with an ERROR)", frozenset(ROLE_DEFAULTS), case_ping)

CASES: list[Case] = [
    PREFLIGHT_CASE,
    Case("R1-no-certificate", "R1", "III(1)2 リスク4, III(2)5 リスク1",
         "a peer presenting no certificate gets nothing", frozenset(ROLE_DEFAULTS), case_no_certificate),
    Case("R1-unknown-ca", "R1", "III(2)5 リスク1", "a certificate from an unknown CA gets nothing",
         frozenset(ROLE_DEFAULTS), case_unknown_ca),
    Case("R1-expired", "R1", "III(2)5 リスク1", "an expired certificate gets nothing",
         frozenset(ROLE_DEFAULTS), case_expired),
    Case("R2-wrong-role", "R2", "III(2)2 リスク2, III(1)6 リスク6",
         "a role that may not talk to this endpoint gets nothing", frozenset(ROLE_DEFAULTS),
         case_wrong_role),
    Case("R2-wrong-organisation", "R2", "III(2)2 リスク2",
         "the right role from another organisation gets nothing", frozenset(ROLE_DEFAULTS),
         case_wrong_org),
    Case("R4-frame-bad-magic", "R4", "III(2)5 リスク3",
         "a frame that breaks synchronisation gets ERROR bad_magic and the connection closes",
         frozenset(ROLE_DEFAULTS), case_bad_magic),
    Case("R4-frame-unknown-type", "R4", "III(2)5 リスク3",
         "an unknown message type gets ERROR and the connection survives",
         frozenset(ROLE_DEFAULTS), case_unknown_type),
    Case("R4-frame-body-length", "R4", "III(2)5 リスク3",
         "a body that is not whole records gets ERROR", frozenset(ROLE_DEFAULTS), case_body_length),
    Case("R4-in-order", "R4", "III(2)5", "update notifications are acknowledged in order",
         SEQUENCED_ROLES, case_in_order),
    Case("R4-duplicate", "R4", "III(2)5",
         "a duplicate is acknowledged again but never applied twice", SEQUENCED_ROLES, case_duplicate),
    Case("R4-gap", "R4", "III(2)5", "a gap is answered NACK 5101 naming the expected number",
         SEQUENCED_ROLES, case_gap),
    Case("R3-too-broad", "R3", "III(2)2 リスク1",
         "a search without 氏名, or with 氏名 but no 生年月日 nor a 住所 naming a 市区町村, is refused",
         SEARCH_ROLES, case_search_too_broad),
    Case("R3-narrow", "R3", "III(2)2 リスク1",
         "a search by 氏名+生年月日 or 氏名+市区町村 is answered, with consistent match counts",
         SEARCH_ROLES, case_search_narrow),
]


def register_cases(extra: list[Case]) -> None:
    """Add cases (the intermediate-server ones live in their own module)."""
    CASES.extend(extra)


# -- reports ----------------------------------------------------------------------------------


def render_text(target: Target, results: list[CaseResult]) -> str:
    """The text report."""
    lines = [f"conformance of {target.server_name} ({target.role}) at {target.host}:{target.port}", ""]
    for r in results:
        lines.append(f"  {r.status.upper():<5} {r.case_id:<26} [{r.rule}; {r.seed}] {r.title}")
        lines.append(f"        {r.detail}")
    n = {k: sum(1 for r in results if r.status == k) for k in ("pass", "fail", "skip", "error")}
    lines += ["", f"{n['pass']} passed, {n['fail']} failed, {n['skip']} skipped, {n['error']} error"
              + ("s" if n["error"] != 1 else "")]
    if n["error"]:
        lines.append("the target could not be tested: see the ERROR above")
    return "\n".join(lines)


def junit_xml(target: Target, results: list[CaseResult]) -> bytes:
    """The JUnit XML report (one testsuite, one testcase per case)."""
    suite = ET.Element("testsuite", {
        "name": f"juki-gateway conformance {target.role}",
        "tests": str(len(results)),
        "failures": str(sum(r.status == "fail" for r in results)),
        "errors": str(sum(r.status == "error" for r in results)),
        "skipped": str(sum(r.status == "skip" for r in results)),
        "time": f"{sum(r.seconds for r in results):.3f}",
    })
    props = ET.SubElement(suite, "properties")
    for k, v in (("role", target.role), ("target", f"{target.host}:{target.port}"),
                 ("server_name", target.server_name)):
        ET.SubElement(props, "property", {"name": k, "value": v})
    for r in results:
        tc = ET.SubElement(suite, "testcase", {
            "classname": f"conformance.{target.role}.{r.rule}", "name": f"{r.case_id}: {r.title}",
            "time": f"{r.seconds:.3f}"})
        ET.SubElement(tc, "properties").append(
            ET.Element("property", {"name": "seed", "value": r.seed}))
        if r.status == "fail":
            ET.SubElement(tc, "failure", {"message": r.detail, "type": r.rule}).text = r.detail
        elif r.status == "error":
            ET.SubElement(tc, "error", {"message": r.detail, "type": r.rule}).text = r.detail
        elif r.status == "skip":
            ET.SubElement(tc, "skipped", {"message": r.detail})
        else:
            ET.SubElement(tc, "system-out").text = r.detail
    root = ET.Element("testsuites")
    root.append(suite)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def parse_target(text: str) -> tuple[str, int]:
    """``HOST:PORT`` → (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--target must be HOST:PORT, got {text!r}")
    return host, int(port)
