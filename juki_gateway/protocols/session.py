"""The sans-IO application layer of one authenticated connection: frames in, frames out.

A :class:`FrameSession` is the :class:`~juki_gateway.protocols.channel.ChannelApp` of an endpoint
or link without a hosted node: its :class:`~juki_gateway.protocols.channel.FrameChannel` (which
owns the error policy of ``docs/sequencing.md``) hands it the frames, and it answers:

* ``PING`` → ``PONG``; ``PONG`` and ``ERROR`` are taken in silently (never answered, so two
  sessions cannot bounce errors at each other);
* a type registered in the endpoint role's :class:`HandlerRegistry` → what the handler returns;
* any other type → an ``ERROR`` frame (:class:`UnhandledMessageType`), decided from the header
  before the body is read; the connection survives;
* a frame the decoder rejects (unknown type, bad body length) → an ``ERROR`` frame with the
  codec error's wire code; the connection survives;
* a fatal frame error (bad magic, unsupported version, oversized length) → an ``ERROR`` frame,
  then ``closing`` becomes true and the adapter closes the connection.

All answers to one read are written at once by the adapter. Frame counts are tallied in the
channel and handed to a :class:`FrameObserver` once per read, which keeps per-frame overhead
(metric label look-ups) out of the hot loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar, Protocol

from juki_gateway.certs.identity import PeerIdentity
from juki_gateway.codecs.frame import Frame, FrameHeader
from juki_gateway.codecs.messages import MessageType
from juki_gateway.errors import JukiError
from juki_gateway.protocols.catalogue import CATALOGUE
from juki_gateway.protocols.channel import (
    Catalogue,
    ChannelApp,
    ChannelCounts,
    FrameChannel,
    TimestampSource,
    sent_type,
)


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


def msg_type_name(msg_type: int) -> str:
    """The catalogue name of a message type, or its hex number (for metric labels)."""
    spec = CATALOGUE.get(msg_type)
    return spec.name if spec is not None else f"0x{msg_type:04X}"


class FrameSession(ChannelApp):
    """One connection's frame handling over a :class:`FrameChannel`; see the module docstring."""

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
        catalogue: Catalogue | None = None,
    ) -> None:
        self.node = node
        self.peer = peer
        self._registry = registry
        self.timestamp = TimestampSource(seconds)
        self.channel = FrameChannel(local=node, peer=peer.name, timestamp=self.timestamp,
                                    catalogue=catalogue, admit=self._admit, log=log, conn_id=conn_id)
        self._observer = observer
        self.info = SessionInfo(node=node, conn_id=conn_id, peer=peer, timestamp=self.timestamp)

    def _admit(self, header: FrameHeader) -> JukiError | None:
        mt = header.msg_type
        if mt == MessageType.PING or mt in self.SILENT or self._registry.get(mt) is not None:
            return None
        return UnhandledMessageType(f"{self.node} has no handler for message type {msg_type_name(mt)}")

    # -- the channel's handler ------------------------------------------------------------
    def frame(self, frame: Frame) -> list[bytes] | None:
        """Run the registered handler (PONG and ERROR are taken in silently)."""
        handler = self._registry.get(frame.header.msg_type)
        if handler is None:
            return None
        try:
            answers = list(handler(frame, self.info))
        except JukiError as exc:
            counts = self.channel.counts
            counts.errors[exc.code] = counts.errors.get(exc.code, 0) + 1
            return [self.channel.error_frame(exc, request_no=frame.header.request_no)]
        sent = self.channel.counts.sent
        for answer in answers:  # handlers build frames themselves: count them here
            mt = sent_type(answer)
            sent[mt] = sent.get(mt, 0) + 1
        return answers

    def counted(self, counts: ChannelCounts) -> None:
        """Hand the counts to the observer given (sans-IO use; the adapter has its own)."""
        if self._observer is not None:
            self._observer.frames(counts.received, counts.sent, counts.errors)
