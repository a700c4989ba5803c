"""``make bench-store``: durable 本人確認情報 updates/s with and without group commit, and load time.

For SQLite (a file in a temporary directory, WAL + synchronous=FULL) and PostgreSQL
(``JUKI_BENCH_PG_URL``/``JUKI_TEST_PG_URL`` if set — a fresh database is created on it — else a
private throwaway cluster started with fsync on), in one run so the figures compare:

* ``load_500k.seconds``: bulk-load N residents (default 500,000, generated with valid check
  digits; generation time included) through ``residents.load_residents`` (Core executemany);
* ``single_commit.updates_per_s``: one update message per transaction, each committed durably;
* ``group_commit.updates_per_s``: update messages submitted to a :class:`BulkCommitter` running
  on the real reactor and the store thread pool; every Deferred fires after its batch committed,
  the figure counts messages whose Deferred fired.

Prints a table, ratios, and ``BENCH name=value`` lines. A benchmark, not a test: never fails on
speed. This is an entry point, so it may use the global reactor and the wall clock.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from juki_gateway.registry_store.asyncstore import AsyncStore, BulkCommitter
from juki_gateway.registry_store.engine import (
    CheckpointMode,
    create_store_engine,
    wal_checkpointer,
)
from juki_gateway.registry_store.migrate import upgrade
from juki_gateway.registry_store.pgcluster import TempCluster, start_temp_cluster
from juki_gateway.registry_store.residents import (
    HonninKakuninRow,
    apply_honnin_kakunin,
    load_residents,
)
from juki_gateway.registry_store.synthetic import make_resident

NOW = dt.datetime(2026, 4, 1, 9, 0, 0)


def _update(n: int, seq: int) -> HonninKakuninRow:
    """A full 本人確認情報 change of resident ``n``: new address, 更新順番号 and raw record."""
    row = make_resident(n)
    return dataclasses.replace(
        row, address=f"石川県金沢市本町{seq % 90 + 1}", seq=seq,
        record=row.record[:-11] + f"{seq:011d}".encode())


def _residents(count: int) -> Iterator[HonninKakuninRow]:
    for n in range(1, count + 1):
        yield make_resident(n)


def bench_engine(
    url: str, residents: int, single: int, group: int, reactor: Any
) -> Any:
    """Generator for inlineCallbacks: measures one engine, returns a dict of figures."""
    from twisted.internet import defer
    from twisted.python.threadpool import ThreadPool

    upgrade(url)
    engine = create_store_engine(url)
    figures: dict[str, float] = {}
    t0 = time.perf_counter()
    with engine.begin() as conn:
        load_residents(conn, _residents(residents), NOW)
    engine.dispose()  # includes the checkpoint that copies the loaded pages into the file
    figures["load_500k.seconds"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    for i in range(single):
        with engine.begin() as conn:
            apply_honnin_kakunin(conn, [_update(i * 7919 % residents + 1, i + 1)], NOW)
    figures["single_commit.updates_per_s"] = single / (time.perf_counter() - t0)

    sqlite = engine.dialect.name == "sqlite"
    engine.dispose()
    # SQLite: the same group-commit load with SQLite's own in-commit checkpoint first (the old
    # path), then with the background checkpointer (the store's default), on other residents.
    modes: list[CheckpointMode] = ["autocheckpoint", "background"] if sqlite else ["background"]
    offset = single
    for mode in modes:
        engine = create_store_engine(url, checkpoint=mode)
        pool = ThreadPool(minthreads=1, maxthreads=2, name="bench-store")
        store = AsyncStore(engine, reactor, pool)
        store.start()
        committer: BulkCommitter[HonninKakuninRow, int] = BulkCommitter(
            store, reactor, lambda conn, items: apply_honnin_kakunin(conn, items, NOW),
            max_batch=5000, max_delay=0.01,
        )
        updates = [_update((offset + i) * 104_729 % residents + 1, offset + i + 1)
                   for i in range(group)]
        offset += group
        t0 = time.perf_counter()
        done = [committer.submit(u) for u in updates]
        yield defer.gatherResults(done, consumeErrors=True)
        elapsed = time.perf_counter() - t0
        key = "group_commit" if mode == "background" else "group_commit_autocheckpoint"
        figures[f"{key}.updates_per_s"] = group / elapsed
        figures[f"{key}.batches"] = committer.batches_committed
        checkpointer = wal_checkpointer(engine)
        if checkpointer is not None:
            figures["wal_max_mib"] = checkpointer.max_wal_seen / 2**20
        store.stop()
        engine.dispose()
    if sqlite:
        figures["group_commit.vs_autocheckpoint"] = (
            figures["group_commit.updates_per_s"]
            / figures["group_commit_autocheckpoint.updates_per_s"])
    return figures


def _pg_database(server_url: str) -> tuple[str, Any]:
    url = make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"juki_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark on both engines and print the table and BENCH lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--residents", type=int, default=500_000)
    parser.add_argument("--single", type=int, default=1_000, help="single-commit updates")
    parser.add_argument("--group", type=int, default=50_000, help="group-commit updates")
    parser.add_argument("--engines", default="sqlite,postgres")
    args = parser.parse_args(argv)

    from twisted.internet import defer, reactor, task

    results: dict[str, dict[str, float]] = {}
    cluster: TempCluster | None = None

    @defer.inlineCallbacks
    def run() -> Any:
        nonlocal cluster
        with tempfile.TemporaryDirectory(prefix="juki-bench-") as tmp:
            for eng in args.engines.split(","):
                cleanup = None
                if eng == "sqlite":
                    url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
                else:
                    server = os.environ.get("JUKI_BENCH_PG_URL") or os.environ.get(
                        "JUKI_TEST_PG_URL")
                    if not server:
                        cluster = start_temp_cluster(fsync=True)
                        server = cluster.url
                    url, cleanup = _pg_database(server)
                print(f"benchmarking {eng} …", file=sys.stderr, flush=True)
                try:
                    results[eng] = yield from_gen(bench_engine(
                        url, args.residents, args.single, args.group, reactor))
                finally:
                    if cleanup is not None:
                        cleanup()

    def from_gen(gen: Any) -> Any:
        return defer.inlineCallbacks(lambda: gen)()

    try:
        task.react(lambda _r: run(), [])
    except SystemExit as exc:
        if exc.code:
            raise
    finally:
        if cluster is not None:
            cluster.stop()

    names = ["load_500k.seconds", "single_commit.updates_per_s", "group_commit.updates_per_s"]
    extra = ["group_commit_autocheckpoint.updates_per_s", "wal_max_mib"]
    print(f"\n{args.residents} residents, {args.single} single-commit and {args.group} "
          f"group-commit updates (BulkCommitter max_batch=5000, max_delay=10 ms)")
    print(f"{'figure':42} " + " ".join(f"{e:>14}" for e in results))
    for name in names + extra:
        print(f"{name:42} " + " ".join(
            f"{results[e][name]:14.1f}" if name in results[e] else f"{'-':>14}" for e in results))
    for eng, fig in results.items():
        ratio = fig["group_commit.updates_per_s"] / fig["single_commit.updates_per_s"]
        print(f"{eng}: group/single commit = {ratio:.1f}x, {int(fig['group_commit.batches'])} "
              f"batches; load of {args.residents} residents "
              f"{'within' if fig['load_500k.seconds'] < 60 else 'OVER'} 60 s")
        if "group_commit.vs_autocheckpoint" in fig:
            print(f"{eng}: group commit with the background checkpointer / with SQLite's "
                  f"in-commit autocheckpoint = {fig['group_commit.vs_autocheckpoint']:.2f}")
    if "sqlite" in results and "postgres" in results:
        for name in names:
            print(f"postgres/sqlite {name} = "
                  f"{results['postgres'][name] / results['sqlite'][name]:.2f}")
    for eng, fig in results.items():
        for name in names:
            print(f"BENCH store.{eng}.{name}={fig[name]:.1f}")
        if "group_commit.vs_autocheckpoint" in fig:
            print(f"BENCH store.{eng}.group_commit.vs_autocheckpoint="
                  f"{fig['group_commit.vs_autocheckpoint']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
