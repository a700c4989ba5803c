"""Worker processes for the crash and scale-out tests (run as ``python -m tests.store_workers``).

``crash URL``: a daemon-like writer: the real reactor, the store thread pool and the group
committer apply numbered update messages forever and print ``ACK n`` only after each message's
commit; the test kills it with SIGKILL.
``claim URL WORKER``: claims outbox rows of link ``L`` until none is left, printing ``SENT seq``;
then offers inbox messages 1..60 from sender ``cs`` and prints ``APPLIED seq`` for each it won.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys

from juki_gateway.registry_store.engine import create_store_engine
from juki_gateway.registry_store.queues import claim_due, enqueue, inbox_apply, mark_sent
from juki_gateway.registry_store.residents import apply_honnin_kakunin
from juki_gateway.registry_store.synthetic import make_resident

NOW = dt.datetime(2026, 4, 1, 9, 0, 0)
RESIDENTS = 50


def apply_message(conn: object, k: int) -> int:
    """One update message: resident update + history row, inbox row, forwarded outbox frame."""
    row = dataclasses.replace(make_resident(k % RESIDENTS), seq=k)
    apply_honnin_kakunin(conn, [row], NOW)  # type: ignore[arg-type]
    assert inbox_apply(conn, "pf", "cs", k, 1, NOW)  # type: ignore[arg-type]
    enqueue(conn, "pf->kiko", 1, str(k).encode(), NOW)  # type: ignore[arg-type]
    return k


def crash_writer(url: str) -> None:
    """Apply messages through the group committer until killed."""
    from twisted.internet import reactor
    from twisted.python.threadpool import ThreadPool

    from juki_gateway.registry_store.asyncstore import AsyncStore, GroupCommitter

    engine = create_store_engine(url)
    pool = ThreadPool(minthreads=1, maxthreads=2)
    store = AsyncStore(engine, reactor, pool)  # type: ignore[arg-type]
    committer = GroupCommitter(store, reactor, max_batch=50, max_delay=0.002)  # type: ignore[arg-type]
    counter = iter(range(1, 10**9))

    def ack(k: int) -> None:
        sys.stdout.write(f"ACK {k}\n")
        sys.stdout.flush()

    def feed() -> None:
        if committer.queued < 200:
            for _ in range(60):
                k = next(counter)
                committer.submit(lambda conn, k=k: apply_message(conn, k)).addCallback(ack)
        reactor.callLater(0.001, feed)  # type: ignore[attr-defined]

    store.start()
    reactor.callWhenRunning(feed)  # type: ignore[attr-defined]
    reactor.callLater(60, reactor.stop)  # type: ignore[attr-defined]  # bounded even if not killed
    reactor.run()  # type: ignore[attr-defined]
    store.stop()


def claimer(url: str, worker: str) -> None:
    """Send (print) claimed outbox rows until none is due, then race for inbox messages."""
    engine = create_store_engine(url)
    idle = 0
    while idle < 3:
        with engine.begin() as conn:
            items = claim_due(conn, "L", worker, NOW, limit=5, lease=dt.timedelta(hours=1))
        if not items:
            idle += 1
            continue
        idle = 0
        for item in items:
            print(f"SENT {item.seq}", flush=True)
        with engine.begin() as conn:
            mark_sent(conn, [i.id for i in items], NOW)
    for seq in range(1, 61):
        with engine.begin() as conn:
            if inbox_apply(conn, "pf", "cs", seq, 1, NOW):
                print(f"APPLIED {seq}", flush=True)
    engine.dispose()


if __name__ == "__main__":
    if sys.argv[1] == "crash":
        crash_writer(sys.argv[2])
    else:
        claimer(sys.argv[2], sys.argv[3])
