"""The async facade and the group committer: acks only after commit, batching by size and time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import pytest_twisted
from sqlalchemy import Connection, Engine, func, select
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.task import Clock
from twisted.python.threadpool import ThreadPool

from juki_gateway.registry_store.asyncstore import AsyncStore, GroupCommitter
from juki_gateway.registry_store.models import InboxEntry, table_of
from juki_gateway.registry_store.queues import inbox_apply

T = TypeVar("T")
NOW = dt.datetime(2026, 4, 1)


class InlineStore(AsyncStore):
    """Runs each transaction synchronously on the calling thread and records commit order."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, None, ThreadPool())  # type: ignore[arg-type]
        self.commits: list[int] = []

    def transact(self, work: Callable[[Connection], T]) -> Deferred[T]:
        d = maybeDeferred(self._in_transaction, work)
        self.commits.append(self._count())
        return d

    def _count(self) -> int:
        return _inbox_rows(self.engine)


def _inbox_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table_of(InboxEntry))).scalar_one())


def _msg(seq: int) -> Callable[[Connection], bool]:
    return lambda conn: inbox_apply(conn, "pf", "cs", seq, 1, NOW)


def test_batches_by_time_and_acks_after_commit(store_engine: Engine) -> None:
    """Items wait up to max_delay, commit together in one transaction, then fire their Deferreds."""
    store, clock = InlineStore(store_engine), Clock()
    committer = GroupCommitter(store, clock, max_batch=100, max_delay=0.5)
    acks: list[object] = []
    for seq in (1, 2, 3):
        committer.submit(_msg(seq)).addCallback(acks.append)
    clock.advance(0.25)
    assert (acks, store.commits) == ([], [])
    clock.advance(0.25)
    assert store.commits == [3]  # one transaction held all three
    assert acks == [True, True, True]


def test_batches_by_size(store_engine: Engine) -> None:
    """Reaching max_batch commits at once, without waiting for the timer."""
    store, clock = InlineStore(store_engine), Clock()
    committer = GroupCommitter(store, clock, max_batch=2, max_delay=10)
    fired: list[object] = []
    committer.submit(_msg(1)).addCallback(fired.append)
    assert fired == []
    committer.submit(_msg(2)).addCallback(fired.append)
    assert (fired, store.commits, committer.batches_committed) == ([True, True], [2], 1)
    assert clock.getDelayedCalls() == []


def test_failing_item_fails_alone(store_engine: Engine) -> None:
    """An item that raises is rolled back to its savepoint and errbacks; the others commit."""
    store, clock = InlineStore(store_engine), Clock()
    committer = GroupCommitter(store, clock, max_batch=10, max_delay=0.01)

    def bad(conn: Connection) -> None:
        inbox_apply(conn, "pf", "cs", 99, 1, NOW)
        raise ValueError("malformed record")

    results: list[Any] = []
    committer.submit(_msg(1)).addCallback(results.append)
    d = committer.submit(bad)
    d.addErrback(lambda f: results.append(f.trap(ValueError)))
    committer.submit(_msg(2)).addCallback(results.append)
    committer.flush()
    assert results == [True, ValueError, True]
    assert store.commits == [2]  # seq 99 rolled back with its savepoint


def test_commit_failure_fails_every_item(store_engine: Engine) -> None:
    """If the batch transaction cannot commit, no item is acknowledged."""
    store, clock = InlineStore(store_engine), Clock()

    def broken(work: Callable[[Connection], T]) -> Deferred[T]:
        return Deferred.fromCoroutine(_raise())  # type: ignore[arg-type]

    async def _raise() -> None:
        raise RuntimeError("disk full")

    store.transact = broken  # type: ignore[method-assign]
    committer = GroupCommitter(store, clock, max_batch=2, max_delay=1)
    errors: list[Any] = []
    for seq in (1, 2):
        committer.submit(_msg(seq)).addErrback(lambda f: errors.append(f.trap(RuntimeError)))
    assert errors == [RuntimeError, RuntimeError]


def test_bad_parameters_rejected(store_engine: Engine) -> None:
    """A batch size or weight bound below one is refused."""
    with pytest.raises(ValueError):
        GroupCommitter(InlineStore(store_engine), Clock(), max_batch=0)
    with pytest.raises(ValueError):
        GroupCommitter(InlineStore(store_engine), Clock(), max_weight=0)


@pytest_twisted.inlineCallbacks
def test_real_thread_pool_commits_before_firing(store_engine: Engine) -> Any:
    """With the real reactor and pool, each Deferred fires after its rows are visible to others."""
    from twisted.internet import reactor

    pool = ThreadPool(minthreads=1, maxthreads=2, name="store-test")
    store = AsyncStore(store_engine, reactor, pool)  # type: ignore[arg-type]
    store.start()
    try:
        committer = GroupCommitter(store, reactor, max_batch=50, max_delay=0.002)  # type: ignore[arg-type]
        ds = [committer.submit(_msg(seq)) for seq in range(1, 121)]
        seen = []
        for d in ds:
            yield d
            with store_engine.connect() as conn:
                seen.append(conn.execute(select(func.count()).select_from(table_of(InboxEntry))).scalar())
        assert all(n is not None and n >= i + 1 for i, n in enumerate(seen))
        assert committer.batches_committed >= 3
        count = yield store.read(
            lambda conn: conn.execute(select(func.count()).select_from(table_of(InboxEntry))).scalar()
        )
        assert count == 120
    finally:
        store.stop()


def test_bulk_committer_applies_one_call_per_batch(store_engine: Engine) -> None:
    """BulkCommitter hands a whole batch to one bulk call and fires results in order after commit."""
    from juki_gateway.registry_store.asyncstore import BulkCommitter
    from juki_gateway.registry_store.residents import apply_honnin_kakunin, get_current
    from juki_gateway.registry_store.synthetic import make_resident

    store, clock = InlineStore(store_engine), Clock()
    calls: list[int] = []

    def apply(conn: Connection, rows: list[Any]) -> list[int]:
        calls.append(len(rows))
        return apply_honnin_kakunin(conn, rows, NOW)

    committer: BulkCommitter[Any, int] = BulkCommitter(store, clock, apply, max_batch=3,
                                                       max_delay=1)
    got: list[int] = []
    for n in (1, 2, 1, 3):
        committer.submit(make_resident(n)).addCallback(got.append)
    assert (calls, got) == ([3], [1, 1, 2])  # the second version of resident 1 is number 2
    committer.flush()
    assert (calls, got) == ([3, 1], [1, 1, 2, 1])
    with store_engine.begin() as conn:
        current = get_current(conn, make_resident(1).juminhyo_code)
    assert current is not None


def test_bulk_committer_failure_acks_nothing(store_engine: Engine) -> None:
    """If the bulk call raises, the batch rolls back and every item errbacks."""
    from juki_gateway.registry_store.asyncstore import BulkCommitter

    store, clock = InlineStore(store_engine), Clock()

    def apply(conn: Connection, seqs: list[int]) -> list[bool]:
        for seq in seqs:
            inbox_apply(conn, "pf", "cs", seq, 1, NOW)
        raise ValueError("bad batch")

    committer: BulkCommitter[int, bool] = BulkCommitter(store, clock, apply, max_batch=2,
                                                        max_delay=1)
    errors: list[Any] = []
    for seq in (1, 2):
        committer.submit(seq).addErrback(lambda f: errors.append(f.trap(ValueError)))
    assert errors == [ValueError, ValueError]
    assert _inbox_rows(store_engine) == 0


class ManualStore(AsyncStore):
    """Runs a transaction only when the test says so (or at once when ``auto`` is set)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, None, ThreadPool())  # type: ignore[arg-type]
        self.waiting: list[tuple[Callable[[Connection], Any], Deferred[Any]]] = []
        self.auto = False

    def transact(self, work: Callable[[Connection], T]) -> Deferred[T]:
        if self.auto:
            return maybeDeferred(self._in_transaction, work)
        d: Deferred[T] = Deferred()
        self.waiting.append((work, d))
        return d

    def finish_next(self) -> None:
        work, d = self.waiting.pop(0)
        d.callback(self._in_transaction(work))


def test_next_batch_starts_before_the_acks_of_the_committed_one(store_engine: Engine) -> None:
    """When a batch commits, the queued batch is dispatched before the committed batch's
    Deferreds fire, and every ack and the flush still fire in submission order."""
    store, clock = ManualStore(store_engine), Clock()
    committer = GroupCommitter(store, clock, max_batch=2, max_delay=10)
    seen: list[tuple[int, int]] = []  # (seq acked, transactions dispatched but not run)
    for seq in (1, 2, 3, 4):
        committer.submit(_msg(seq)).addCallback(lambda _, s=seq: seen.append((s, len(store.waiting))))
    flushed: list[int] = []
    committer.flush().addCallback(lambda _: flushed.append(len(seen)))
    assert len(store.waiting) == 1
    store.finish_next()
    assert seen == [(1, 1), (2, 1)]  # batch 2 was already waiting when batch 1 acked
    assert flushed == []
    store.finish_next()
    assert [s for s, _ in seen] == [1, 2, 3, 4]
    assert flushed == [4]


def test_acks_keep_batch_order_when_the_store_answers_synchronously(store_engine: Engine) -> None:
    """If the next batch commits synchronously inside the first one's settlement, its acks still
    fire after the first batch's acks, and the flush fires after all of them."""
    store, clock = ManualStore(store_engine), Clock()
    committer = GroupCommitter(store, clock, max_batch=2, max_delay=10)
    order: list[object] = []
    for seq in (1, 2, 3, 4, 5):
        committer.submit(_msg(seq)).addCallback(lambda _, s=seq: order.append(s))
    committer.flush().addCallback(lambda _: order.append("flushed"))
    store.auto = True
    store.finish_next()
    assert order == [1, 2, 3, 4, 5, "flushed"]
    assert committer.batches_committed == 3


def test_batches_bounded_by_weight(store_engine: Engine) -> None:
    """With ``max_weight``, a backlog of heavy items (frames of many records) is cut into
    batches whose weights stay within the bound, in submission order; an item heavier than
    the bound is a batch of its own; reaching the bound commits without waiting for the timer."""
    store, clock = ManualStore(store_engine), Clock()
    committer = GroupCommitter(store, clock, max_batch=64, max_delay=10, max_weight=3000)
    acked: list[int] = []
    committer.submit(_msg(1), weight=1000).addCallback(lambda _: acked.append(1))
    assert store.waiting == [] and len(clock.getDelayedCalls()) == 1  # below the bound: waits
    for seq, weight in ((2, 2000), (3, 1500), (4, 1500), (5, 5000), (6, 10)):
        committer.submit(_msg(seq), weight=weight).addCallback(lambda _, s=seq: acked.append(s))
    assert len(store.waiting) == 1  # 1 + 2 reached 3,000 and went at once
    sizes = []
    while store.waiting:
        before = _inbox_rows(store_engine)
        store.finish_next()
        sizes.append(_inbox_rows(store_engine) - before)
    assert sizes == [2, 2, 1, 1]  # 1000+2000 | 1500+1500 | 5000 alone | 10
    assert acked == [1, 2, 3, 4, 5, 6]
    assert committer.batches_committed == 4


def test_weight_defaults_to_one_per_item(store_engine: Engine) -> None:
    """Items submitted without a weight count one each against ``max_weight``."""
    store, clock = ManualStore(store_engine), Clock()
    committer = GroupCommitter(store, clock, max_batch=64, max_delay=10, max_weight=2)
    for seq in (1, 2, 3):
        committer.submit(_msg(seq))
    assert len(store.waiting) == 1
    store.finish_next()
    assert _inbox_rows(store_engine) == 2
    store.finish_next()
    assert _inbox_rows(store_engine) == 3
