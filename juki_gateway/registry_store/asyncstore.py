"""The reactor's door to the store: a thread-pool facade and the group-commit batcher.

What runs where:

* the reactor thread only builds work functions, starts/stops the pool and fires Deferreds;
* every SQL statement runs on the store's own :class:`~twisted.python.threadpool.ThreadPool`
  (injected, so tests and the daemon choose its size), through ``deferToThreadPool``;
* one work function = one transaction (``engine.begin()``): its Deferred fires only after the
  COMMIT returned, so a caller that acks in the callback never acks an uncommitted change (R4).

:class:`GroupCommitter` collects submitted work functions for up to ``max_delay`` seconds or
``max_batch`` items (injected clock), runs the batch in ONE transaction, each item inside its own
SAVEPOINT (a failing item is rolled back alone and errbacks alone), and fires every item's
Deferred after the batch's commit. If the commit itself fails, every item errbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorThreads, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

T = TypeVar("T")
Work = Callable[[Connection], Any]


class AsyncStore:
    """Runs blocking store functions in a dedicated thread pool, one transaction per call."""

    def __init__(self, engine: Engine, reactor: IReactorThreads, pool: ThreadPool) -> None:
        self.engine = engine
        self._reactor = reactor
        self._pool = pool

    def start(self) -> None:
        """Start the thread pool (call from the daemon's startService)."""
        self._pool.start()

    def stop(self) -> None:
        """Stop the thread pool, waiting for running transactions to finish."""
        self._pool.stop()

    def transact(self, work: Callable[[Connection], T]) -> Deferred[T]:
        """Run ``work(conn)`` in its own transaction on the pool; fires after COMMIT."""
        return deferToThreadPool(self._reactor, self._pool, self._in_transaction, work)

    def read(self, work: Callable[[Connection], T]) -> Deferred[T]:
        """Run a read-only ``work(conn)`` on the pool (same as transact; named for clarity)."""
        return self.transact(work)

    def _in_transaction(self, work: Callable[[Connection], T]) -> T:
        with self.engine.begin() as conn:
            return work(conn)


class _Pending:
    __slots__ = ("deferred", "work")

    def __init__(self, work: Work) -> None:
        self.work = work
        self.deferred: Deferred[Any] = Deferred()


class GroupCommitter:
    """Batches work functions into one durable transaction; each Deferred fires after the commit."""

    def __init__(
        self,
        store: AsyncStore,
        clock: IReactorTime,
        *,
        max_batch: int = 500,
        max_delay: float = 0.005,
    ) -> None:
        if max_batch < 1 or max_delay < 0:
            raise ValueError("max_batch must be >= 1 and max_delay >= 0")
        self._store = store
        self._clock = clock
        self.max_batch = max_batch
        self.max_delay = max_delay
        self._queue: list[_Pending] = []
        self._timer: IDelayedCall | None = None
        self._in_flight = 0
        self.batches_committed = 0

    def submit(self, work: Work) -> Deferred[Any]:
        """Queue ``work(conn)``; the Deferred fires with its result once its batch committed."""
        item = _Pending(work)
        self._queue.append(item)
        if len(self._queue) >= self.max_batch:
            self.flush()
        elif self._timer is None:
            self._timer = self._clock.callLater(self.max_delay, self._on_timer)
        return item.deferred

    @property
    def queued(self) -> int:
        """Items waiting for the next batch."""
        return len(self._queue)

    def _on_timer(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> Deferred[None]:
        """Send what is queued as one batch now; fires when that batch settled."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        batch, self._queue = self._queue, []
        done: Deferred[None] = Deferred()
        if not batch:
            done.callback(None)
            return done
        self._in_flight += 1
        d = self._store.transact(lambda conn: _run_batch(conn, batch))

        def committed(outcomes: list[tuple[bool, Any]]) -> None:
            self.batches_committed += 1
            for item, (ok, value) in zip(batch, outcomes, strict=True):
                if ok:
                    item.deferred.callback(value)
                else:
                    item.deferred.errback(value)

        def failed(reason: Failure) -> None:
            for item in batch:
                item.deferred.errback(reason)

        def settle(_: object) -> None:
            self._in_flight -= 1
            done.callback(None)

        d.addCallbacks(committed, failed).addBoth(settle)
        return done


def _run_batch(conn: Connection, batch: list[_Pending]) -> list[tuple[bool, Any]]:
    """Runs on a pool thread inside the batch transaction: one SAVEPOINT per item."""
    outcomes: list[tuple[bool, Any]] = []
    for item in batch:
        sp = conn.begin_nested()
        try:
            value = item.work(conn)
        except Exception:
            sp.rollback()
            outcomes.append((False, Failure()))
        else:
            sp.commit()
            outcomes.append((True, value))
    return outcomes
