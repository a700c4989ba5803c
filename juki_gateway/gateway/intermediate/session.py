r"""The frame session of the intermediate endpoint: signed frames in, signed frames out.

Sans-IO: a :class:`~juki_gateway.protocols.channel.ChannelApp` that the daemon's one connection
adapter (:mod:`juki_gateway.gateway.connection`) drives. Every frame on an intermediate-server link carries a 64-byte ECDSA P-256
signature trailer over ``FRAME_DOMAIN ‖ header ‖ body`` by the sender's certificate key (R11);
a frame without a valid one is answered with an ERROR frame and never acted on. ``PING`` is the
one exception: it carries nothing, and its ``PONG`` (signed) only proves liveness to a peer the
TLS layer already authenticated, so the gateway's generic liveness probes work here too.

Per peer role (R2 is enforced by the TLS layer; this is what each role may send):

* ``ipnw``: ``INFO_QUERY`` (all query frames of one read are decided as one batch and committed
  together before any answer is returned), ``PERMISSION_LIST``, ``SHORI_TSUBAN_ISSUE`` (ACK),
  ``FUGO_ISSUE_RESPONSE`` (ACK), ``PING`` (answered with ``PONG`` followed by what waits for
  delivery to ipnw: released / 不開示 results and ``SHORI_TSUBAN_REQUEST``\s, each with its outbox 更新順番号 in the header's
  ``seq`` — the connection cannot push, so ipnw polls), ``ACK`` (header ``seq`` = the
  last delivery received; unacknowledged deliveries are sent again after their lease);
* ``bango-renkei``: ``FUKUHON_REGISTER`` (answered with a per-record ``FUKUHON_REPORT``),
  ``FUGO_REQUEST`` (``FUGO_RESPONSE``: the 符号 or "pending" with the 処理通番 once known, ask
  again) and ``PING``.

Frames are read and written through a :class:`~juki_gateway.protocols.channel.FrameChannel`
(the error policy of ``docs/sequencing.md``; its signer adds the trailer to every frame sent):
a type the peer's role may not send, a header timestamp outside the window around the server's
clock (:mod:`juki_gateway.protocols.intermediate.freshness`), a header naming other identities
than the connection's, or a frame the catalogue refuses is answered with ERROR from its header
alone, body unread, counted and logged; the connection stays open.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from juki_gateway.codecs.frame import Frame, FrameHeader
from juki_gateway.codecs.layouts import is_atena_no
from juki_gateway.codecs.messages import MessageType
from juki_gateway.errors import JukiError
from juki_gateway.gateway.intermediate.service import IntermediateService
from juki_gateway.gateway.intermediate.worker import Run, StoreBackedApp, run_here
from juki_gateway.protocols.catalogue import LINK_MESSAGES, link_record_lengths
from juki_gateway.protocols.channel import Catalogue, Connection, FrameChannel, Refused
from juki_gateway.protocols.intermediate import crypto
from juki_gateway.protocols.intermediate.errors import (
    BadFrameSignature,
    IntermediateError,
    MalformedMessage,
    UnexpectedMessage,
)
from juki_gateway.protocols.intermediate.freshness import FRAME_TIME_WINDOW, frame_time_error
from juki_gateway.protocols.intermediate.messages import (
    FUKUHON_REPORT_LAYOUT,
    PERMISSION_LIST_RESULT_LAYOUT,
    ImsMessageType,
)
from juki_gateway.protocols.intermediate.signing import FRAME_DOMAIN, frame_signature_valid

log = Logger(namespace="juki_gateway.intermediate")
LENGTHS: dict[int, int] = link_record_lengths()
#: What an intermediate-server link decodes (every type a link carries, frames up to MAX_FRAME).
CATALOGUE = Catalogue(LINK_MESSAGES)
ALLOWED: dict[str, frozenset[int]] = {
    "ipnw": frozenset(
        {
            ImsMessageType.INFO_QUERY,
            ImsMessageType.PERMISSION_LIST,
            ImsMessageType.FUGO_ISSUE_RESPONSE,
            ImsMessageType.SHORI_TSUBAN_ISSUE,
            MessageType.PING,
            MessageType.ACK,
        }
    ),
    "bango-renkei": frozenset(
        {
            ImsMessageType.FUKUHON_REGISTER,
            ImsMessageType.FUGO_REQUEST,
            MessageType.PING,
        }
    ),
}


@dataclass(frozen=True, slots=True)
class Answer:
    """One frame to send, decided on the store thread, encoded and signed on the reactor."""

    msg_type: int = 0
    body: bytes = b""
    count: int = 0
    request_no: int = 0
    seq: int = 0
    #: an ERROR frame naming this error instead (``msg_type`` and ``body`` unused)
    error: JukiError | None = None


@dataclass
class ImsSession(StoreBackedApp):
    """One authenticated connection to the intermediate endpoint."""

    #: the intermediate server (a callable: the host opens it on its store thread)
    server: Callable[[], IntermediateService]
    own_name: str
    peer_name: str
    peer_role: str
    #: the key the peer's frames are signed with: its presented, verified certificate's (set when
    #: the connection starts; given here only without a connection)
    peer_key: ec.EllipticCurvePublicKey | None = None
    conn_id: str = ""
    #: where the server's calls run (the host's store thread; at once without one)
    run: Run = run_here
    #: fires once the server is open (None: it is)
    opening: Deferred[Any] | None = None
    #: seconds a frame's header timestamp may be from the server's clock, either way
    frame_window: float = FRAME_TIME_WINDOW

    @property
    def service(self) -> IntermediateService:
        """The intermediate server."""
        return self.server()

    def __post_init__(self) -> None:
        self._run = self.run
        self._opening = self.opening
        self._allowed = ALLOWED.get(self.peer_role, frozenset())
        self._queries: list[Frame] = []
        self.channel = FrameChannel(
            local=self.own_name,
            peer=self.peer_name,
            timestamp=lambda: self.service.now14(),
            catalogue=CATALOGUE,
            admit=self._admit,
            signer=self._sign,
            signature_length=crypto.SIGNATURE_LENGTH,
            log=self._say,
            conn_id=self.conn_id,
            answer_ping=False,
        )

    def _say(self, message: str) -> None:
        log.info("{node}: {message}", event="session_note", node=self.own_name, message=message)

    def started(self, conn: Connection) -> None:
        """Take the peer's signing key from the certificate it presented (verified by the
        handshake, so a re-issued key needs no restart and no file lookup by name)."""
        super().started(conn)
        if self.peer_key is None:
            cert = conn.peer_certificate
            key = cert.public_key() if cert is not None else None
            if isinstance(key, ec.EllipticCurvePublicKey):
                self.peer_key = key
            # else: no frame of this peer can carry a valid signature; each gets ERROR 6xxx

    def _sign(self, unsigned: bytes) -> bytes:
        # the key is looked up per frame: the service owns it (and may rotate it)
        return crypto.sign(self.service.keys.signing_key, FRAME_DOMAIN, unsigned)

    def _admit(self, header: FrameHeader) -> JukiError | None:
        """R2 per peer role, then the timestamp window, from the header alone (the body of a
        refused frame is never read)."""
        if header.msg_type not in self._allowed:
            return UnexpectedMessage(
                f"{self.peer_role} may not send message type {header.msg_type:#06x}"
            )
        return frame_time_error(header.timestamp, self.service.clock.seconds(),
                                self.frame_window)

    def _encode(self, answers: list[Answer]) -> list[bytes]:
        """The signed frames of ``answers`` (on the reactor: the channel counts them)."""
        out = []
        for a in answers:
            if a.error is not None:
                errors = self.channel.counts.errors
                errors[a.error.code] = errors.get(a.error.code, 0) + 1
                out.append(self.channel.error_frame(a.error, request_no=a.request_no))
            else:
                out.append(self.channel.send(a.msg_type, a.body, record_count=a.count,
                                             request_no=a.request_no, seq=a.seq))
        return out

    # -- the channel's handler ------------------------------------------------------------
    # The INFO_QUERY frames of one read are one batch (flush). Every answer is decided on the
    # store thread and written in request order; PING gets PONG plus the pending deliveries.
    def frame(self, frame: Frame) -> list[bytes]:
        """Verify the trailer signature, then batch a query or have the frame answered."""
        req = frame.header.request_no
        unsigned_ping = frame.msg_type == MessageType.PING and not frame.trailer
        key = self.peer_key
        if not unsigned_ping and (key is None or not frame_signature_valid(key, frame)):
            self.flush()
            self.answer_now(self._encode([Answer(request_no=req, error=BadFrameSignature(
                f"frame {req} from {self.peer_name} has no valid signature trailer"))]))
            return []
        if frame.msg_type == ImsMessageType.INFO_QUERY:
            self._queries.append(frame)
            return []
        self.flush()
        self.answer_later(lambda: self._dispatch(frame), self._encode)
        return []

    def refused(self, event: Refused) -> list[bytes]:
        """The channel's refusal, after the answers to the requests before it."""
        self.flush()
        self.answer_now([self.channel.refusal(event)])
        return []

    def flush(self) -> list[bytes]:
        """Have the queries batched so far answered (one batch, one transaction)."""
        queries, self._queries = self._queries, []
        if queries:
            self.answer_later(lambda: self._answer_queries(queries), self._encode)
        return []

    # -- on the store thread ------------------------------------------------------------------
    def _answer_queries(self, frames: list[Frame]) -> list[Answer]:
        size = LENGTHS[ImsMessageType.INFO_QUERY]
        bodies = [f.body[i : i + size] for f in frames for i in range(0, len(f.body), size)]
        try:
            results = self.service.handle_queries(bodies)
        except MalformedMessage as exc:
            if len(frames) > 1:  # only the frame that holds the malformed query is refused
                return [a for f in frames for a in self._answer_queries([f])]
            self.service.record_malformed(self.peer_name, exc)
            return [Answer(request_no=frames[0].header.request_no, error=exc)]
        except JukiError as exc:  # fail-closed: no result of this batch is sent
            return [Answer(request_no=f.header.request_no, error=exc) for f in frames]
        out, pos = [], 0
        for f in frames:
            n = len(f.body) // size
            out.append(Answer(ImsMessageType.QUERY_RESULT, b"".join(results[pos : pos + n]), n,
                              f.header.request_no))
            pos += n
        return out

    def _dispatch(self, frame: Frame) -> list[Answer]:
        req = frame.header.request_no
        try:
            if frame.msg_type == MessageType.PING:
                answers = [Answer(MessageType.PONG, request_no=req)]
                if self.peer_role == "ipnw":
                    for item in self.service.claim_deliveries(self.peer_name):
                        answers.append(Answer(item.msg_type, item.frame, 1, 0, item.seq))
                return answers
            if frame.msg_type == MessageType.ACK:
                self.service.acknowledge_deliveries(frame.header.seq)
                return []
            if frame.msg_type == ImsMessageType.FUGO_REQUEST:
                body = self.service.fugo_requests(frame.body)
                return [Answer(ImsMessageType.FUGO_RESPONSE, body, frame.header.record_count, req)]
            if frame.msg_type == ImsMessageType.FUGO_ISSUE_RESPONSE:
                self.service.fugo_issued(frame.body)
                return [Answer(MessageType.ACK, request_no=req)]
            if frame.msg_type == ImsMessageType.SHORI_TSUBAN_ISSUE:
                self.service.shori_tsuban_issued(frame.body)
                return [Answer(MessageType.ACK, request_no=req)]
            if frame.msg_type == ImsMessageType.PERMISSION_LIST:
                return [self._permission_list(frame)]
            if frame.msg_type == ImsMessageType.FUKUHON_REGISTER:
                report = self.service.import_fukuhon(frame.body)
                body = b"".join(
                    FUKUHON_REPORT_LAYOUT.encode(
                        {
                            "index": i,
                            "atena_no": atena if is_atena_no(atena) else None,
                            "result_code": f"{exc.wire_code if exc else 0:04d}",
                            "detail": _ascii(exc.message if exc else "ok", 120),
                        }
                    )
                    for i, atena, exc in report
                )
                return [Answer(ImsMessageType.FUKUHON_REPORT, body, len(report), req)]
        except JukiError as exc:
            return [Answer(request_no=req, error=exc)]
        raise AssertionError("unreachable: type checked against ALLOWED")

    def _permission_list(self, frame: Frame) -> Answer:
        req = frame.header.request_no
        try:
            accepted = self.service.offer_permission_list(frame.body)
            version, code = accepted.version, 0
        except IntermediateError as exc:
            version, code = 0, exc.wire_code
        kept = self.service.permission_list
        body = PERMISSION_LIST_RESULT_LAYOUT.encode(
            {
                "version": version,
                "result_code": f"{code:04d}",
                "kept_version": kept.version if kept is not None else 0,
            }
        )
        return Answer(ImsMessageType.PERMISSION_LIST_RESULT, body, 1, req)


def _ascii(text: str, width: int) -> str:
    """``text`` as printable ASCII ('?' for anything else), cut to ``width``."""
    plain = "".join(c if " " <= c <= "~" else "?" for c in text)
    return plain[:width].rstrip(" ")
