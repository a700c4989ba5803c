"""The intermediate server's store thread, and connections whose answers are computed there.

Every call of the intermediate server (its SQL, and the decisions around it) runs on one thread
of its own (:class:`StoreThread`), one call at a time, never on the reactor: the reactor thread
only reads frames, checks signatures, and encodes and signs what comes back. So the server's
in-memory state (spent permits, 符号 map, permission list) is only ever touched by that thread,
and a slow store delays answers, not the reactor.

:class:`StoreBackedApp` is the base of the two applications that use it (the link session and
the admin session): each answer is computed on the store thread and written back in the order
the requests came in, whatever finishes first; while more than ``MAX_WAITING`` answers wait,
the connection stops reading from the peer (TCP pushes back).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from juki_gateway.protocols.channel import ChannelApp, Connection

log = Logger(namespace="juki_gateway.intermediate")
T = TypeVar("T")
#: Runs a call of the server where the server runs (its store thread) and fires with its result.
Run = Callable[[Callable[[], Any]], Deferred[Any]]


def run_here(fn: Callable[[], T]) -> Deferred[T]:
    """Run ``fn`` at once in the calling thread (tests and tools without a store thread)."""
    return maybeDeferred(fn)


class StoreThread:
    """One thread on which every call of the intermediate server runs, in submission order."""

    def __init__(self, reactor: Any, name: str) -> None:
        self._reactor = reactor
        self._pool = ThreadPool(1, 1, name=name)

    def start(self) -> None:
        """Start the thread."""
        self._pool.start()

    def stop(self) -> None:
        """Stop the thread once the calls queued so far have run."""
        self._pool.stop()

    def run(self, fn: Callable[[], T]) -> Deferred[T]:
        """Run ``fn`` on the thread; fires on the reactor with its result or failure."""
        return deferToThreadPool(self._reactor, self._pool, fn)


#: Read no more from a peer while this many of its answers wait.
MAX_WAITING = 32
#: The read-gate reasons of a connection waiting for the store thread, or for the server to open.
WAITING = "store"
OPENING = "opening"


class StoreBackedApp(ChannelApp):
    """A connection whose answers are computed by ``run`` and written in request order."""

    _run: Run = staticmethod(run_here)
    #: fires once the server can answer (a connection that comes sooner waits, paused)
    _opening: Deferred[Any] | None = None
    _conn: Connection | None = None
    _tail: Deferred[None] | None = None
    _waiting = 0

    def started(self, conn: Connection) -> None:
        """Keep the connection: answers are written to it as they are ready."""
        self._conn = conn
        opening = self._opening
        if opening is not None and not opening.called:
            conn.pause(OPENING)

            def opened(result: object) -> object:
                conn.resume(OPENING)
                return result

            opening.addCallback(opened)

    def answer_later(self, work: Callable[[], T], finish: Callable[[T], Iterable[bytes]]) -> None:
        """Compute ``work()`` on the store thread, then write ``finish(result)`` (encoded on the
        reactor) after every answer queued before it."""
        self._queue(self._run(work), finish)

    def answer_now(self, frames: Iterable[bytes]) -> None:
        """Write ``frames`` after every answer queued before them."""
        ready = list(frames)
        self._queue(succeed(None), lambda _: ready)

    def _queue(self, d: Deferred[T], finish: Callable[[T], Iterable[bytes]]) -> None:
        self._waiting += 1
        if self._waiting == MAX_WAITING and self._conn is not None:
            self._conn.pause(WAITING)
        tail = self._tail if self._tail is not None else succeed(None)

        def after_previous(_: object) -> Deferred[T]:
            return d

        def write(result: T) -> None:
            conn = self._conn
            if conn is not None and not conn.closed:
                out = b"".join(finish(result))
                if out:
                    conn.write(out)
            self._waiting -= 1
            if self._waiting == MAX_WAITING - 1 and conn is not None:
                conn.resume(WAITING)

        def failed(f: Failure) -> None:  # a bug, not the peer's fault: drop the connection
            self._waiting -= 1
            log.failure("answer failed; dropping the connection", f, event="ims_answer_failed")
            if self._conn is not None:
                self._conn.abort()

        self._tail = tail.addCallback(after_previous).addCallback(write).addErrback(failed)
