"""The sans-IO application layer of one authenticated connection: frames in, frames out.

A :class:`FrameSession` feeds received bytes to the codec's :class:`FrameDecoder` and answers:

* ``PING`` → ``PONG``; ``PONG`` and ``ERROR`` are taken in silently (never answered, so two
  sessions cannot bounce errors at each other);
* a type registered in the endpoint role's :class:`HandlerRegistry` → what the handler returns;
* any other type → an ``ERROR`` frame (:class:`UnhandledMessageType`); the connection survives;
* a frame the decoder rejects (unknown type, bad body length) → an ``ERROR`` frame with the
  codec error's wire code; the connection survives;
* a fatal frame error (bad magic, unsupported version, oversized length) → an ``ERROR`` frame,
  then ``closing`` becomes true and the adapter closes the connection.

All answers to one read are returned as one ``bytes`` so the adapter writes once per read.
Frame counts are tallied locally and handed to a :class:`FrameObserver` once per read, which
keeps per-frame overhead (metric label look-ups) out of the hot loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

from juki_gateway.certs.identity import PeerIdentity
from juki_gateway.codecs.errors import CodecError, FatalFrameError
from juki_gateway.codecs.frame import Frame, FrameDecoder, FrameRejected, encode_frame
from juki_gateway.codecs.messages import CATALOGUE, MessageType, encode_error, error_body
from juki_gateway.errors import JukiError


class UnhandledMessageType(JukiError):
    """A well-formed frame of a type this endpoint has no handler for."""

    code = "unhandled_message_type"
    wire_code = 3001


class HandlerError(JukiError):
    """A handler failed on a frame; the peer gets an ERROR frame, the connection survives."""

    code = "handler_error"
    wire_code = 3002


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What a handler may know of the connection a frame came on."""

    node: str
    conn_id: str
    peer: PeerIdentity
    timestamp: Callable[[], str]


#: A handler takes a frame and returns the encoded frames to send back (possibly none).
Handler = Callable[[Frame, SessionInfo], Iterable[bytes]]


class HandlerRegistry:
    """msg_type → handler for one endpoint role; later issues register their link handlers."""

    def __init__(self) -> None:
        self._handlers: dict[int, Handler] = {}

    def register_handler(self, msg_type: int, handler: Handler) -> None:
        """Register ``handler`` for ``msg_type`` (once; registering twice is a bug)."""
        if int(msg_type) in self._handlers:
            raise ValueError(f"a handler for message type 0x{int(msg_type):04X} is already registered")
        self._handlers[int(msg_type)] = handler

    def get(self, msg_type: int) -> Handler | None:
        """The handler for ``msg_type``, if any."""
        return self._handlers.get(msg_type)


_REGISTRIES: dict[str, HandlerRegistry] = {}


def registry_for(role: str) -> HandlerRegistry:
    """The process-wide handler registry of an endpoint role (``municipal-cs`` …)."""
    reg = _REGISTRIES.get(role)
    if reg is None:
        reg = _REGISTRIES[role] = HandlerRegistry()
    return reg


def register_handler(role: str, msg_type: int, handler: Handler) -> None:
    """Register a handler for ``msg_type`` on every endpoint of ``role``."""
    registry_for(role).register_handler(msg_type, handler)


class FrameObserver(Protocol):
    """Receives per-read tallies (for metrics)."""

    def frames(self, received: dict[int, int], sent: dict[int, int], errors: dict[str, int]) -> None:
        """Counts of frames in/out by message type and of errors by code, for one read."""


class TimestampSource:
    """``YYYYMMDDhhmmss`` (UTC) from an injected clock, formatted once per second."""

    def __init__(self, seconds: Callable[[], float]) -> None:
        self._seconds = seconds
        self._cached_at = -1
        self._cached = ""

    def __call__(self) -> str:
        now = int(self._seconds())
        if now != self._cached_at:
            self._cached_at = now
            self._cached = time.strftime("%Y%m%d%H%M%S", time.gmtime(now))
        return self._cached


def msg_type_name(msg_type: int) -> str:
    """The catalogue name of a message type, or its hex number (for metric labels)."""
    spec = CATALOGUE.get(msg_type)
    return spec.name if spec is not None else f"0x{msg_type:04X}"


class FrameSession:
    """One connection's frame handling; see the module docstring."""

    SILENT: ClassVar[frozenset[int]] = frozenset({MessageType.PONG, MessageType.ERROR})

    def __init__(
        self,
        *,
        node: str,
        conn_id: str,
        peer: PeerIdentity,
        registry: HandlerRegistry,
        seconds: Callable[[], float],
        observer: FrameObserver | None = None,
        log: Callable[[str], None] | None = None,
        max_body: int = 1 << 20,
        catalogue: Mapping[int, int] | None = None,
    ) -> None:
        self.node = node
        self.peer = peer
        self.closing = False
        self._registry = registry
        # pass ``catalogue`` (msg_type → record length) to avoid deriving it per connection
        self._decoder = FrameDecoder(catalogue, max_body=max_body)
        self._observer = observer
        self._log = log
        self.timestamp = TimestampSource(seconds)
        self.info = SessionInfo(node=node, conn_id=conn_id, peer=peer, timestamp=self.timestamp)
        self._pong: tuple[str, bytes] | None = None

    # -- building frames ------------------------------------------------------------------
    def frame(
        self, msg_type: int, body: bytes = b"", *, record_count: int = 0, request_no: int = 0,
        seq: int = 0, recovery_seq: int = 0,
    ) -> bytes:
        """An encoded frame from this node to the peer."""
        return encode_frame(
            msg_type, self.node, self.peer.name, body, timestamp=self.timestamp(),
            record_count=record_count, request_no=request_no, seq=seq, recovery_seq=recovery_seq,
        )

    def error_frame(self, code: int, name: str, detail: str, *, request_no: int = 0) -> bytes:
        """An ERROR frame with one error record."""
        return self.frame(
            MessageType.ERROR, encode_error(code, name, detail), record_count=1, request_no=request_no
        )

    def _pong_frame(self) -> bytes:
        ts = self.timestamp()
        if self._pong is None or self._pong[0] != ts:
            self._pong = (ts, encode_frame(MessageType.PONG, self.node, self.peer.name, timestamp=ts))
        return self._pong[1]

    # -- receiving ------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> bytes:
        """Feed bytes from the peer; return every answer as one ``bytes``."""
        decoder = self._decoder
        decoder.receive_data(data)
        out: list[bytes] = []
        received: dict[int, int] = {}
        sent: dict[int, int] = {}
        errors: dict[str, int] = {}
        while not self.closing:
            try:
                event = decoder.next_event()
            except FatalFrameError as exc:
                out.append(self.error_frame(exc.wire_code, exc.code, exc.message))
                sent[MessageType.ERROR] = sent.get(MessageType.ERROR, 0) + 1
                errors[exc.code] = errors.get(exc.code, 0) + 1
                self.closing = True
                if self._log is not None:
                    self._log(f"fatal frame error {exc.code}: {exc.message}; closing")
                break
            if event is None:
                break
            if isinstance(event, FrameRejected):
                exc2 = event.error
                received[event.header.msg_type] = received.get(event.header.msg_type, 0) + 1
                errors[exc2.code] = errors.get(exc2.code, 0) + 1
                out.append(self.frame(MessageType.ERROR, error_body(exc2), record_count=1,
                                      request_no=event.header.request_no))
                sent[MessageType.ERROR] = sent.get(MessageType.ERROR, 0) + 1
                continue
            mt = event.header.msg_type
            received[mt] = received.get(mt, 0) + 1
            if mt == MessageType.PING:
                out.append(self._pong_frame())
                sent[MessageType.PONG] = sent.get(MessageType.PONG, 0) + 1
                continue
            handler = self._registry.get(mt)
            if handler is None:
                if mt in self.SILENT:
                    continue
                err = UnhandledMessageType(
                    f"{self.node} has no handler for message type {msg_type_name(mt)}"
                )
                errors[err.code] = errors.get(err.code, 0) + 1
                out.append(self.error_frame(err.wire_code, err.code, err.message,
                                            request_no=event.header.request_no))
                sent[MessageType.ERROR] = sent.get(MessageType.ERROR, 0) + 1
                continue
            try:
                answers = list(handler(event, self.info))
            except (CodecError, JukiError) as exc3:
                errors[exc3.code] = errors.get(exc3.code, 0) + 1
                out.append(self.error_frame(exc3.wire_code, exc3.code, exc3.message,
                                            request_no=event.header.request_no))
                sent[MessageType.ERROR] = sent.get(MessageType.ERROR, 0) + 1
                continue
            for answer in answers:
                out.append(answer)
                at = int.from_bytes(answer[5:7], "big") if len(answer) >= 7 else 0
                sent[at] = sent.get(at, 0) + 1
        if self._observer is not None and (received or sent or errors):
            self._observer.frames(received, sent, errors)
        return b"".join(out)

    def connection_closed(self) -> None:
        """The peer closed: report a truncated frame if one was in flight."""
        try:
            self._decoder.close()
        except FatalFrameError as exc:
            if self._log is not None:
                self._log(f"peer closed mid-frame: {exc.message}")
            if self._observer is not None:
                self._observer.frames({}, {}, {exc.code: 1})
