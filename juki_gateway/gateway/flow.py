"""Read-side flow control of one connection: reading stops while any reason holds it.

Two reasons stop reading from a peer: the node's next store transaction is already full
(``"store"``: :meth:`JukinetNode._sequenced`), and the peer does not read what is queued for it
(``"write"``: the TLS/TCP transport calls our ``pauseProducing`` when its send buffer passes its
high-water mark, Twisted's producer/consumer API). TCP then pushes back on the peer, so neither
a backlog nor a peer that never reads its replies makes the daemon buffer without limit.
"""

from __future__ import annotations

from typing import Any


class ReadGate:
    """Pauses the transport's reading while at least one reason is held."""

    __slots__ = ("_paused", "reasons", "transport")

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.reasons: set[str] = set()
        self._paused = False

    @property
    def held(self) -> bool:
        """Whether reading (and handling frames already read) must wait."""
        return bool(self.reasons)

    def hold(self, reason: str) -> None:
        """Stop reading for ``reason``."""
        self.reasons.add(reason)
        if not self._paused:
            self._paused = True
            self.transport.pauseProducing()

    def drop(self, reason: str) -> None:
        """Forget ``reason`` without reading yet (the caller handles what is buffered first)."""
        self.reasons.discard(reason)

    def reopen(self) -> None:
        """Read again if no reason is held any more."""
        if self._paused and not self.reasons:
            self._paused = False
            self.transport.resumeProducing()


def socket_transport(transport: Any) -> Any:
    """The transport under any protocol wrapper and TLS layer: where bytes queue for the socket.

    A connection registers for write backpressure there, not on the TLS transport: TLS would
    hold back its close alert while a producer is registered with it, so a ``loseConnection``
    from elsewhere (a reconnecting client service stopping) would never close."""
    while hasattr(transport, "wrappedProtocol") and getattr(transport, "transport", None) is not None:
        transport = transport.transport
    return transport


def register_backpressure(transport: Any, producer: Any) -> None:
    """Have the socket's transport pause ``producer`` while its send buffer is over its
    high-water mark, and resume it once drained (Twisted's producer/consumer API)."""
    socket_transport(transport).registerProducer(producer, True)


def close_gracefully(transport: Any) -> None:
    """Send what is queued, then close. A producer paused at that moment would keep the
    socket from closing once flushed, so it is unregistered first."""
    below = socket_transport(transport)
    if getattr(below, "producer", None) is not None:
        below.unregisterProducer()
    transport.loseConnection()
