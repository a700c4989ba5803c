r"""The frame session of the intermediate endpoint: signed frames in, signed frames out.

Sans-IO: a :class:`~juki_gateway.protocols.channel.ChannelApp` that the daemon's one connection
adapter (:mod:`juki_gateway.gateway.connection`) drives. Every frame on an intermediate-server link carries a 64-byte ECDSA P-256
signature trailer over ``FRAME_DOMAIN ‖ header ‖ body`` by the sender's certificate key (R11);
a frame without a valid one is answered with an ERROR frame and never acted on. ``PING`` is the
one exception: it carries nothing, and its ``PONG`` (signed) only proves liveness to a peer the
TLS layer already authenticated, so the gateway's generic liveness probes work here too.

Per peer role (R2 is enforced by the TLS layer; this is what each role may send):

* ``ipnw``: ``INFO_QUERY`` (all query frames of one read are decided as one batch and committed
  together before any answer is returned), ``PERMISSION_LIST``, ``FUGO_ISSUE_RESPONSE`` (ACK),
  ``PING`` (answered with ``PONG`` followed by what waits for delivery to ipnw: released /
  不開示 results and ``FUGO_ISSUE_REQUEST``\s, each with its outbox 更新順番号 in the header's
  ``seq`` — the connection cannot push, so ipnw polls), ``ACK`` (header ``seq`` = the
  last delivery received; unacknowledged deliveries are sent again after their lease);
* ``bango-renkei``: ``FUKUHON_REGISTER`` (answered with a per-record ``FUKUHON_REPORT``),
  ``FUGO_REQUEST`` (``FUGO_RESPONSE``: the 符号 or "pending", ask again) and ``PING``.

Frames are read and written through a :class:`~juki_gateway.protocols.channel.FrameChannel`
(the error policy of ``docs/sequencing.md``; its signer adds the trailer to every frame sent):
a type the peer's role may not send, a header naming other identities than the connection's,
or a frame the catalogue refuses is answered with ERROR from its header alone, body unread.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from juki_gateway.codecs.frame import Frame, FrameHeader
from juki_gateway.codecs.messages import MessageType
from juki_gateway.errors import JukiError
from juki_gateway.gateway.intermediate.service import IntermediateService
from juki_gateway.protocols.catalogue import LINK_MESSAGES, link_record_lengths
from juki_gateway.protocols.channel import Catalogue, ChannelApp, FrameChannel, Refused
from juki_gateway.protocols.intermediate import crypto
from juki_gateway.protocols.intermediate.errors import (
    BadFrameSignature,
    IntermediateError,
    UnexpectedMessage,
)
from juki_gateway.protocols.intermediate.messages import (
    FUKUHON_REPORT_LAYOUT,
    PERMISSION_LIST_RESULT_LAYOUT,
    ImsMessageType,
)
from juki_gateway.protocols.intermediate.signing import FRAME_DOMAIN, frame_signature_valid

LENGTHS: dict[int, int] = link_record_lengths()
#: What an intermediate-server link decodes (every type a link carries, frames up to MAX_FRAME).
CATALOGUE = Catalogue(LINK_MESSAGES)
ALLOWED: dict[str, frozenset[int]] = {
    "ipnw": frozenset(
        {
            ImsMessageType.INFO_QUERY,
            ImsMessageType.PERMISSION_LIST,
            ImsMessageType.FUGO_ISSUE_RESPONSE,
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


@dataclass
class ImsSession(ChannelApp):
    """One authenticated connection to the intermediate endpoint."""

    service: IntermediateService
    own_name: str
    peer_name: str
    peer_role: str
    peer_key: ec.EllipticCurvePublicKey
    conn_id: str = ""

    def __post_init__(self) -> None:
        self._allowed = ALLOWED.get(self.peer_role, frozenset())
        self._queries: list[Frame] = []
        self.channel = FrameChannel(
            local=self.own_name,
            peer=self.peer_name,
            timestamp=self.service.now14,
            catalogue=CATALOGUE,
            admit=self._admit,
            signer=self._sign,
            signature_length=crypto.SIGNATURE_LENGTH,
            conn_id=self.conn_id,
            answer_ping=False,
        )

    def _sign(self, unsigned: bytes) -> bytes:
        # the key is looked up per frame: the service owns it (and may rotate it)
        return crypto.sign(self.service.keys.signing_key, FRAME_DOMAIN, unsigned)

    def _admit(self, header: FrameHeader) -> JukiError | None:
        """R2 per peer role, from the header alone (the body of a refused type is never read)."""
        if header.msg_type in self._allowed:
            return None
        return UnexpectedMessage(
            f"{self.peer_role} may not send message type {header.msg_type:#06x}"
        )

    def _frame(
        self, msg_type: int, body: bytes, count: int, request_no: int, seq: int = 0
    ) -> bytes:
        return self.channel.send(
            msg_type, body, record_count=count, request_no=request_no, seq=seq
        )

    def _error(self, exc: JukiError, request_no: int) -> bytes:
        errors = self.channel.counts.errors
        errors[exc.code] = errors.get(exc.code, 0) + 1
        return self.channel.error_frame(exc, request_no=request_no)

    # -- the channel's handler ------------------------------------------------------------
    # The INFO_QUERY frames of one read are one batch (flush), answered before any later answer
    # so that answers stay in request order; PING gets PONG plus the pending deliveries.
    def frame(self, frame: Frame) -> list[bytes]:
        """Verify the trailer signature, then batch a query or answer the frame."""
        req = frame.header.request_no
        unsigned_ping = frame.msg_type == MessageType.PING and not frame.trailer
        if not unsigned_ping and not frame_signature_valid(self.peer_key, frame):
            return [*self.flush(), self._error(BadFrameSignature(
                f"frame {req} from {self.peer_name} has no valid signature trailer"), req)]
        if frame.msg_type == ImsMessageType.INFO_QUERY:
            self._queries.append(frame)
            return []
        return [*self.flush(), self._dispatch(frame)]

    def refused(self, event: Refused) -> list[bytes]:
        """The channel's refusal, after the answers to the queries before it."""
        return [*self.flush(), self.channel.refusal(event)]

    def flush(self) -> list[bytes]:
        """Answer the queries batched so far."""
        queries, self._queries = self._queries, []
        return self._answer_queries(queries)

    def _answer_queries(self, frames: list[Frame]) -> list[bytes]:
        if not frames:
            return []
        size = LENGTHS[ImsMessageType.INFO_QUERY]
        bodies = [f.body[i : i + size] for f in frames for i in range(0, len(f.body), size)]
        try:
            results = self.service.handle_queries(bodies)
        except JukiError as exc:  # fail-closed: no result of this batch is sent
            return [self._error(exc, f.header.request_no) for f in frames]
        out, pos = [], 0
        for f in frames:
            n = len(f.body) // size
            out.append(
                self._frame(
                    ImsMessageType.QUERY_RESULT,
                    b"".join(results[pos : pos + n]),
                    n,
                    f.header.request_no,
                )
            )
            pos += n
        return out

    def _dispatch(self, frame: Frame) -> bytes:
        req = frame.header.request_no
        try:
            if frame.msg_type == MessageType.PING:
                frames = [self._frame(MessageType.PONG, b"", 0, req)]
                if self.peer_role == "ipnw":
                    for item in self.service.claim_deliveries(self.peer_name):
                        frames.append(self._frame(item.msg_type, item.frame, 1, 0, item.seq))
                return b"".join(frames)
            if frame.msg_type == MessageType.ACK:
                self.service.acknowledge_deliveries(frame.header.seq)
                return b""
            if frame.msg_type == ImsMessageType.FUGO_REQUEST:
                body = self.service.fugo_requests(frame.body)
                return self._frame(
                    ImsMessageType.FUGO_RESPONSE, body, frame.header.record_count, req
                )
            if frame.msg_type == ImsMessageType.FUGO_ISSUE_RESPONSE:
                self.service.fugo_issued(frame.body)
                return self._frame(MessageType.ACK, b"", 0, req)
            if frame.msg_type == ImsMessageType.PERMISSION_LIST:
                return self._permission_list(frame)
            if frame.msg_type == ImsMessageType.FUKUHON_REGISTER:
                report = self.service.import_fukuhon(frame.body)
                body = b"".join(
                    FUKUHON_REPORT_LAYOUT.encode(
                        {
                            "index": i,
                            "atena_no": _ascii(atena, 16).strip(),
                            "result_code": f"{exc.wire_code if exc else 0:04d}",
                            "detail": _ascii(exc.message if exc else "ok", 120),
                        }
                    )
                    for i, atena, exc in report
                )
                return self._frame(ImsMessageType.FUKUHON_REPORT, body, len(report), req)
        except JukiError as exc:
            return self._error(exc, req)
        raise AssertionError("unreachable: type checked against ALLOWED")

    def _permission_list(self, frame: Frame) -> bytes:
        req = frame.header.request_no
        kept = self.service.permission_list
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
        return self._frame(ImsMessageType.PERMISSION_LIST_RESULT, body, 1, req)


def _ascii(text: str, width: int) -> str:
    """``text`` as printable ASCII ('?' for anything else), cut to ``width``."""
    plain = "".join(c if " " <= c <= "~" else "?" for c in text)
    return plain[:width].rstrip(" ")
