"""One connection's frame channel, sans-IO: bytes in, events out; ``send()`` returns bytes.

Every endpoint, link and simulator of the project reads frames through a :class:`FrameChannel`
(the only driver of the codec's :class:`~juki_gateway.codecs.frame.FrameDecoder`), so there is
one error policy, written down in ``docs/sequencing.md``:

* **The peer's errors that skip one frame** (:class:`Refused`): unknown message type (2111),
  body length disagreeing with ``record_count`` (2112), a header whose sender or receiver is not
  the certificate's peer or this node (2113), more records than the type allows (2114), and
  whatever the role's ``admit`` refuses (a type this role does not take, a sender role that may
  not send it). Each is decided from the header alone; the body is skipped as it arrives and
  never buffered; the connection stays open and the peer gets an ERROR frame (by default at
  once; a handler that must keep replies in order, such as a sequenced link, sends it itself).
* **The peer's errors that break the stream** (:class:`Broken`): bad magic, unknown version, an
  undecodable header, a frame over the link's maximum, a stream closed inside a frame. The
  peer gets an ERROR frame, ``closing`` becomes true, and the adapter closes the connection.
* **Our own errors** (a handler raising something that is not a :class:`JukiError`) are not
  the peer's fault and are not caught here: they propagate to the adapter, which logs them and
  drops the connection.

Every refusal and break is counted by code (:meth:`FrameChannel.take_counts`) and reported to
the ``log`` callback with the peer and connection id. Frames by type are counted in and out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from cryptography import x509

from juki_gateway.codecs.errors import FatalFrameError
from juki_gateway.codecs.frame import (
    HEADER_LENGTH,
    Frame,
    FrameDecoder,
    FrameHeader,
    FrameRejected,
    encode_frame,
)
from juki_gateway.codecs.messages import (
    MessageSpec,
    MessageType,
    body_limit,
    encode_error,
    record_lengths,
)
from juki_gateway.errors import JukiError, loggable
from juki_gateway.protocols.catalogue import LINK_MESSAGES

#: The largest frame (body + trailer) any link takes: 3,000 送付先 records are 6.1 MB.
MAX_FRAME = 8 << 20

PING, PONG, ERROR = MessageType.PING, MessageType.PONG, MessageType.ERROR


class WrongHeaderIdentity(JukiError):
    """A frame header names a sender other than the peer's certificate, or another receiver."""

    code = "wrong_header_identity"
    wire_code = 2113


class TooManyRecords(JukiError):
    """A frame declares more records than its message type allows on a link."""

    code = "too_many_records"
    wire_code = 2114


class TooManyConnections(JukiError):
    """A peer opened more connections to one endpoint than ``[limits] connections_per_peer``."""

    code = "too_many_connections"
    wire_code = 3003


#: The refusals a channel or its adapter decides itself (documented in docs/sequencing.md).
CHANNEL_ERRORS: tuple[type[JukiError], ...] = (WrongHeaderIdentity, TooManyRecords,
                                               TooManyConnections)


@dataclass(frozen=True, slots=True)
class Received:
    """A whole frame that passed every header check: the handler's to act on."""

    frame: Frame


@dataclass(frozen=True, slots=True)
class Refused:
    """A frame skipped for the peer's error; the connection stays open."""

    header: FrameHeader
    error: JukiError


@dataclass(frozen=True, slots=True)
class Broken:
    """The stream cannot be read any further: answer ERROR and close."""

    error: JukiError


Event = Received | Refused | Broken

#: The role's own header check: why a frame of this type from this peer is refused, or None.
Admit = Callable[[FrameHeader], JukiError | None]


class ChannelHandler(Protocol):
    """What a role does with the frames of one connection."""

    def frame(self, frame: Frame) -> Iterable[bytes] | None:
        """Act on a frame; return the frames to write at once (or None)."""

    def refused(self, event: Refused) -> Iterable[bytes] | None:
        """A frame was refused; return the frames to write, or None for the default ERROR."""

    def flush(self) -> Iterable[bytes] | None:
        """The frames of this read are handled: return what was held back to answer them
        together (a batch of queries), or None."""


class Connection(Protocol):
    """What an application sees of the connection it runs on (the Twisted adapter)."""

    @property
    def conn_id(self) -> str:
        """The connection's id (as in the handshake log)."""
        ...

    @property
    def closed(self) -> bool:
        """Whether the connection is closing or gone (writes are dropped)."""
        ...

    @property
    def peer_certificate(self) -> x509.Certificate | None:
        """The certificate the peer presented and the handshake verified (None: no TLS)."""
        ...

    def write(self, data: bytes) -> None:
        """Queue encoded frames for the peer."""

    def pause(self, reason: str) -> None:
        """Stop reading and handling frames for ``reason`` (frames already received wait)."""

    def resume(self, reason: str) -> None:
        """Drop ``reason``; once none is left, handle the waiting frames, then read again."""

    def abort(self) -> None:
        """Drop the connection at once."""


class ChannelApp:
    """The application of one connection: its channel and what it does with the frames.

    The one Twisted adapter (:class:`juki_gateway.gateway.connection.ChannelProtocol`) feeds
    the channel, drives it with this object as the handler, writes what comes back, reports
    the channel's counts to :meth:`counted` and calls :meth:`started` / :meth:`lost` around
    the connection's life. :meth:`receive_data` does the same without any I/O, for unit tests
    and sans-IO callers.
    """

    channel: FrameChannel

    def started(self, conn: Connection) -> None:
        """The connection is authenticated and frames may flow (override to keep ``conn``)."""

    def frame(self, frame: Frame) -> Iterable[bytes] | None:
        """Act on a frame; return the frames to write at once (or None)."""
        return None

    def refused(self, event: Refused) -> Iterable[bytes] | None:
        """A frame was refused; None answers with the channel's default ERROR."""
        return None

    def flush(self) -> Iterable[bytes] | None:
        """Frames held back until the end of a read (none by default)."""
        return None

    def counted(self, counts: ChannelCounts) -> None:
        """The channel's counts since the last report (override to keep node metrics)."""

    def lost(self) -> None:
        """The connection is gone."""

    @property
    def closing(self) -> bool:
        """True once the stream broke and the connection must close."""
        return self.channel.closing

    def receive_data(self, data: bytes) -> bytes:
        """Sans-IO: feed bytes from the peer; return every answer as one ``bytes``."""
        self.channel.receive_data(data)
        out = self.channel.drive(self)
        if self.channel.counts:
            self.counted(self.channel.take_counts())
        return b"".join(out)

    def connection_closed(self) -> None:
        """Sans-IO: the peer closed; a frame cut short is counted."""
        self.channel.receive_closed()
        if self.channel.counts:
            self.counted(self.channel.take_counts())


class Catalogue:
    """The message types one kind of connection decodes: record length and body limit per type,
    from the catalogue entries it is given (``protocols/catalogue.py`` builds them).

    ``record_limits=False`` drops the per-type record limits (2114), keeping only ``max_frame``:
    for a reader that only inspects frames (the capture recorder), never for a link.
    """

    def __init__(self, specs: Mapping[int, MessageSpec], *, max_frame: int = MAX_FRAME,
                 record_limits: bool = True) -> None:
        self.specs = specs
        self.lengths: dict[int, int] = record_lengths(specs)
        self.max_frame = max_frame
        self.limits: dict[int, int] = {
            t: body_limit(spec, max_frame) if record_limits
            else (0 if self.lengths[t] == 0 else max_frame)
            for t, spec in specs.items()
        }


_DEFAULT: Catalogue | None = None


def default_catalogue() -> Catalogue:
    """Every type a link carries (Juki-net, intermediate server), built once."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Catalogue(LINK_MESSAGES)
    return _DEFAULT


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


@dataclass
class ChannelCounts:
    """Frames in and out by message type, refusals and breaks by error code."""

    received: dict[int, int] = field(default_factory=dict)
    sent: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.received or self.sent or self.errors)


class FrameChannel:
    """The frame channel of one authenticated connection (see the module docstring).

    ``local`` is this node's id (the header receiver it expects, the sender of what it sends);
    ``peer`` is the name in the peer's certificate. ``signer``, when given, appends its
    signature trailer to every frame sent (the intermediate server's links, R11).
    ``answer_ping=False`` hands PINGs to the handler instead of answering them here (the
    intermediate server answers a network PING with PONG and the deliveries waiting for it).
    """

    def __init__(
        self,
        *,
        local: str,
        peer: str,
        timestamp: Callable[[], str],
        catalogue: Catalogue | None = None,
        admit: Admit | None = None,
        check_identity: bool = True,
        signer: Callable[[bytes], bytes] | None = None,
        signature_length: int = 0,
        log: Callable[[str], None] | None = None,
        conn_id: str = "",
        answer_ping: bool = True,
    ) -> None:
        self.local = local
        self.peer = peer
        self.conn_id = conn_id
        self.timestamp = timestamp
        self.catalogue = catalogue if catalogue is not None else default_catalogue()
        self._admit = admit
        self._check_identity = check_identity
        self._signer = signer
        self._sig_len = signature_length
        self._log = log
        self._answer_ping = answer_ping
        self._limits = self.catalogue.limits
        self._decoder = FrameDecoder(self.catalogue.lengths, max_body=self.catalogue.max_frame,
                                     check=self._check)
        self.closing = False
        self.counts = ChannelCounts()
        self._pong: tuple[str, bytes] | None = None

    # -- the header checks ----------------------------------------------------------------
    def _check(self, header: FrameHeader) -> JukiError | None:
        if self._check_identity and (header.sender != self.peer or header.receiver != self.local):
            return WrongHeaderIdentity(
                f"header names sender {header.sender!r} and receiver {header.receiver!r}; "
                f"this connection is {self.peer!r} to {self.local!r}")
        if header.body_length > self._limits.get(header.msg_type, 0):
            return TooManyRecords(
                f"{header.record_count} records ({header.body_length} bytes) exceed what message "
                f"type 0x{header.msg_type:04X} may carry ({self._limits.get(header.msg_type, 0)} bytes)")
        return self._admit(header) if self._admit is not None else None

    # -- receiving ------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Take bytes from the peer (ignored once the channel is closing)."""
        if not self.closing:
            self._decoder.receive_data(data)

    def next_event(self) -> Event | None:
        """The next event, or None when more bytes are needed (never raises for bad input)."""
        if self.closing:
            return None
        try:
            event = self._decoder.next_event()
        except FatalFrameError as exc:
            return self._broken(exc)
        if event is None:
            return None
        counts = self.counts
        mt = event.header.msg_type
        counts.received[mt] = counts.received.get(mt, 0) + 1
        if isinstance(event, FrameRejected):
            err = event.error
            counts.errors[err.code] = counts.errors.get(err.code, 0) + 1
            if self._log is not None:
                self._log(f"[{self.conn_id}] frame 0x{mt:04X} from {self.peer} refused: "
                          f"{loggable(err)}")
            return Refused(event.header, err)
        return Received(event)

    def receive_closed(self) -> Broken | None:
        """The peer closed the stream: a :class:`Broken` if it stopped inside a frame."""
        if self.closing:
            return None
        try:
            self._decoder.close()
        except FatalFrameError as exc:
            return self._broken(exc)
        return None

    def _broken(self, exc: JukiError) -> Broken:
        self.closing = True
        self.counts.errors[exc.code] = self.counts.errors.get(exc.code, 0) + 1
        if self._log is not None:
            self._log(f"[{self.conn_id}] stream from {self.peer} broken: {loggable(exc)}; closing")
        return Broken(exc)

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as events."""
        return self._decoder.buffered()

    def drive(self, handler: ChannelHandler, stop: Callable[[], bool] | None = None) -> list[bytes]:
        """Hand every complete frame to ``handler`` until none is left, ``stop()`` is true or
        the stream broke; return the frames to write now (PONGs, ERRORs, the handler's)."""
        out: list[bytes] = []
        while not self.closing and (stop is None or not stop()):
            event = self.next_event()
            if event is None:
                break
            if type(event) is Received:
                frame = event.frame
                if frame.header.msg_type == PING and self._answer_ping:
                    out.append(self.pong(frame.header.request_no))
                    continue
                answers = handler.frame(frame)
                if answers:
                    out.extend(answers)
            elif type(event) is Refused:
                replies = handler.refused(event)
                out.extend(replies if replies is not None else (self.refusal(event),))
            else:
                assert isinstance(event, Broken)
                out.append(self.error_frame(event.error))
        held = handler.flush()
        if held:
            out.extend(held)
        return out

    # -- sending --------------------------------------------------------------------------
    def send(self, msg_type: int, body: bytes = b"", *, record_count: int = 0, request_no: int = 0,
             seq: int = 0, recovery_seq: int = 0) -> bytes:
        """The encoded frame from this node to the peer (signed when the channel signs)."""
        self.counts.sent[msg_type] = self.counts.sent.get(msg_type, 0) + 1
        if self._signer is None:
            return encode_frame(msg_type, self.local, self.peer, body, timestamp=self.timestamp(),
                                record_count=record_count, request_no=request_no, seq=seq,
                                recovery_seq=recovery_seq)
        unsigned = encode_frame(msg_type, self.local, self.peer, body, timestamp=self.timestamp(),
                                record_count=record_count, request_no=request_no, seq=seq,
                                recovery_seq=recovery_seq, trailer=bytes(self._sig_len))
        unsigned = unsigned[: len(unsigned) - self._sig_len]
        return unsigned + self._signer(unsigned)

    def error_frame(self, exc: JukiError, *, request_no: int = 0, seq: int = 0) -> bytes:
        """An ERROR frame naming ``exc`` (one error record)."""
        return self.send(ERROR, encode_error(exc.wire_code, exc.code, exc.message), record_count=1,
                         request_no=request_no, seq=seq)

    def refusal(self, event: Refused, *, seq: int = 0) -> bytes:
        """The default answer to a refused frame: ERROR echoing its request number."""
        return self.error_frame(event.error, request_no=event.header.request_no, seq=seq)

    def pong(self, request_no: int = 0) -> bytes:
        """The answer to a PING (cached per second when unsigned)."""
        if self._signer is not None or request_no:
            return self.send(PONG, request_no=request_no)
        self.counts.sent[PONG] = self.counts.sent.get(PONG, 0) + 1
        ts = self.timestamp()
        if self._pong is None or self._pong[0] != ts:
            self._pong = (ts, encode_frame(PONG, self.local, self.peer, timestamp=ts))
        return self._pong[1]

    def take_counts(self) -> ChannelCounts:
        """The counts since the last call (for metrics, once per read)."""
        counts, self.counts = self.counts, ChannelCounts()
        return counts


def sent_type(frame: bytes) -> int:
    """The message type of an encoded frame (bytes 5–6 of its header)."""
    return int.from_bytes(frame[5:7], "big") if len(frame) >= HEADER_LENGTH else 0
