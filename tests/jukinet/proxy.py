"""A TCP proxy for fault tests: forwards bytes both ways and drops connections at random points.

Each proxied connection gets a random byte budget (counted in both directions); when it is
spent the proxy aborts both sides, mid-frame or mid-handshake as it happens. With several
``targets`` connections go to them in turn (two instances behind one address). ``enabled``
switches the faults off so that a run can converge at the end.
"""

from __future__ import annotations

import random
from typing import Any

from twisted.internet import protocol
from twisted.internet.endpoints import TCP4ClientEndpoint


class _Side(protocol.Protocol):
    peer: _Side | None = None

    def __init__(self, proxy: FlakyProxy) -> None:
        self.proxy = proxy
        self.budget = proxy.new_budget()
        self.buffer: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        self.budget -= len(data)
        if self.proxy.enabled and self.budget <= 0:
            self.proxy.faults += 1
            self.drop()
            return
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)
        else:
            self.buffer.append(data)

    def drop(self) -> None:
        for side in (self, self.peer):
            if side is not None and side.transport is not None:
                side.transport.abortConnection()  # type: ignore[attr-defined]

    def connectionLost(self, reason: Any = None) -> None:
        self.proxy.live.discard(self)
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.loseConnection()


class _Inbound(_Side):
    def connectionMade(self) -> None:
        assert self.transport is not None
        self.proxy.live.add(self)
        self.transport.pauseProducing()  # type: ignore[attr-defined]
        target = self.proxy.next_target()
        ep = TCP4ClientEndpoint(self.proxy.reactor, "127.0.0.1", target, timeout=5)
        out = _Side(self.proxy)
        d = ep.connect(protocol.Factory.forProtocol(lambda: out))

        def connected(_: object) -> None:
            self.proxy.connected_to[target] = self.proxy.connected_to.get(target, 0) + 1
            out.peer, self.peer = self, out
            for data in self.buffer:
                assert out.transport is not None
                out.transport.write(data)
            self.buffer.clear()
            assert self.transport is not None
            self.transport.resumeProducing()  # type: ignore[attr-defined]

        def failed(_: object) -> None:
            assert self.transport is not None
            self.transport.abortConnection()  # type: ignore[attr-defined]

        d.addCallbacks(connected, failed)


class FlakyProxy(protocol.Factory):
    """Listens on an ephemeral loopback port and forwards to its ``targets``."""

    def __init__(self, reactor: Any, target_port: int, rng: random.Random,
                 min_bytes: int = 2_000, max_bytes: int = 400_000) -> None:
        self.reactor = reactor
        self.rng = rng
        self.min_bytes, self.max_bytes = min_bytes, max_bytes
        self.enabled = True
        self.faults = 0
        #: Backends, used in turn for each new connection (one unless set by a test).
        self.targets = [target_port]
        self._turn = 0
        self.connected_to: dict[int, int] = {}
        self.live: set[_Side] = set()

    def drop_all(self) -> None:
        """Abort every proxied connection (clients reconnect, to the current ``targets``)."""
        for side in list(self.live):
            side.drop()

    def next_target(self) -> int:
        """The backend of the next proxied connection (round robin)."""
        self._turn += 1
        return self.targets[self._turn % len(self.targets)]

    def new_budget(self) -> int:
        return self.rng.randint(self.min_bytes, self.max_bytes)

    def buildProtocol(self, addr: Any) -> _Inbound:
        return _Inbound(self)
