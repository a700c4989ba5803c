"""The retention schedule (JST slots, what is due) and one store's job on a fake clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import pytest_twisted
from prometheus_client import CollectorRegistry
from sqlalchemy import Connection, Engine, select
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock

from juki_gateway.gateway.retention import OwnRegistryStore, RetentionMetrics, RetentionService
from juki_gateway.registry_store.anchor import AuditKey
from juki_gateway.registry_store.audit import list_audit, verify_chain
from juki_gateway.registry_store.engine import StoreUnavailable, sqlite_path
from juki_gateway.registry_store.migrate import upgrade
from juki_gateway.registry_store.models import Soufusaki, table_of
from juki_gateway.registry_store.residents import add_soufusaki, mark_soufusaki_sent
from juki_gateway.registry_store.retention import DEFAULT_POLICY, LastRuns, last_runs
from juki_gateway.registry_store.retention_schedule import (
    due,
    latest_slot,
    next_slot,
    retention_pass,
)

KEY = AuditKey(bytes(range(32)))
JST = dt.timezone(dt.timedelta(hours=9))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    """A JST wall-clock time as the store's naive UTC."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=JST).astimezone(dt.UTC).replace(
        tzinfo=None)


def test_slots_are_jst_hours() -> None:
    """The daily slot is hour:00 JST: the latest at or before now, the next strictly after."""
    assert latest_slot(utc(2026, 4, 6, 2, 59), 3) == utc(2026, 4, 5, 3)
    assert latest_slot(utc(2026, 4, 6, 3), 3) == utc(2026, 4, 6, 3)
    assert next_slot(utc(2026, 4, 6, 3), 3) == utc(2026, 4, 7, 3)
    assert next_slot(utc(2026, 12, 31, 23, 30), 0) == utc(2027, 1, 1, 0)
    assert latest_slot(utc(2026, 4, 6, 8, 30), 0) == dt.datetime(2026, 4, 5, 15, 0)


@pytest.mark.parametrize(("now", "last", "expected"), [
    (utc(2026, 4, 6, 10), LastRuns(None, None), "full"),  # never ran
    (utc(2026, 4, 6, 10), LastRuns(utc(2026, 4, 6, 3), utc(2026, 4, 1, 3)), None),  # restart
    (utc(2026, 4, 6, 10), LastRuns(utc(2026, 4, 5, 3), utc(2026, 4, 1, 3)), "soufusaki"),  # missed
    (utc(2026, 4, 6, 2), LastRuns(utc(2026, 4, 5, 3), utc(2026, 4, 1, 3)), None),  # before the hour
    (utc(2026, 5, 1, 3), LastRuns(utc(2026, 4, 30, 3), utc(2026, 4, 1, 3)), "full"),  # new month
    # 1 May 00:30 JST is still 30 April in UTC: the month is the JST one
    (utc(2026, 5, 1, 0, 30), LastRuns(utc(2026, 4, 30, 3), utc(2026, 4, 1, 3)), "full"),
    (utc(2026, 4, 30, 23, 30), LastRuns(utc(2026, 4, 30, 3), utc(2026, 4, 1, 3)), None),
])
def test_what_is_due(now: dt.datetime, last: LastRuns, expected: str | None) -> None:
    """Full when no full run came in this JST month; 送付先 when none came since the latest slot."""
    assert due(now, last, 3) == expected


def _transact(engine: Engine) -> Callable[[Callable[[Connection], Any]], Deferred[Any]]:
    def transact(work: Callable[[Connection], Any]) -> Deferred[Any]:
        with engine.begin() as conn:
            return succeed(work(conn))

    return transact


def _sent(engine: Engine, no: str, sent: dt.datetime) -> None:
    with engine.begin() as conn:
        add_soufusaki(conn, no, "24727059608", None, b"rec", sent)
        mark_soufusaki_sent(conn, no, sent)


def _kept(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {r.soufusaki_no for r in conn.execute(select(table_of(Soufusaki)))}


def _job(engine: Engine, clock: Clock, start: dt.datetime, hour: int = 3,
         metrics: RetentionMetrics | None = None) -> RetentionService:
    clock.advance(start.replace(tzinfo=dt.UTC).timestamp() - clock.seconds())
    job = RetentionService("registry", _transact(engine), clock, hour=hour, key=KEY,
                           observe=metrics.observe if metrics is not None else None)
    job.startService()
    job.begin()
    return job


def _purge_days(engine: Engine, clock: Clock, job: RetentionService, days: int,
                names: set[str]) -> dict[str, dt.date]:
    """Advance day by day; the JST day of the run that purged each of ``names``."""
    gone: dict[str, dt.date] = {}
    for _ in range(days):
        clock.advance(86_400)
        kept = _kept(engine)
        today = job.passes[-1].at.replace(tzinfo=dt.UTC).astimezone(JST).date()
        gone.update({n: today for n in names - kept if n not in gone})
    return gone


def test_year_end_closure_on_a_fake_clock(store_engine: Engine) -> None:
    """Daily at 03:00 JST across the year end: 送付先 sent on 12/24 goes on 12/25, sent on Friday
    12/25 on Monday 12/28, sent on 12/28 only on 1/4 (12/29–1/3 closed); the first run of a JST
    month is the full purge."""
    _sent(store_engine, "S0", utc(2026, 12, 24, 15))
    _sent(store_engine, "S1", utc(2026, 12, 25, 10))
    _sent(store_engine, "S2", utc(2026, 12, 28, 18))
    clock = Clock()
    job = _job(store_engine, clock, utc(2026, 12, 24, 3))
    gone = _purge_days(store_engine, clock, job, 12, {"S0", "S1", "S2"})
    assert gone == {"S0": dt.date(2026, 12, 25), "S1": dt.date(2026, 12, 28),
                    "S2": dt.date(2027, 1, 4)}
    scopes = [(p.at, p.scope) for p in job.passes]
    assert scopes[0] == (utc(2026, 12, 24, 3), "full")  # first ever run, at start-up
    assert (utc(2027, 1, 1, 3), "full") in scopes  # the first run of January
    assert [s for _, s in scopes].count("full") == 2 and len(scopes) == 13
    job.stopService()
    with store_engine.connect() as conn:
        actions = [e.action for e in list_audit(conn)]
        assert actions.count("retention_purge") == 2 and actions.count("retention_soufusaki") == 11
        assert verify_chain(conn, keys=[KEY]).ok


def test_friday_before_a_monday_holiday_goes_on_tuesday(store_engine: Engine) -> None:
    """送付先 sent on Friday 7/17 survives Monday 7/20 (海の日) and goes on Tuesday 7/21."""
    _sent(store_engine, "S1", utc(2026, 7, 17, 16))
    clock = Clock()
    job = _job(store_engine, clock, utc(2026, 7, 17, 17))
    assert _purge_days(store_engine, clock, job, 5, {"S1"}) == {"S1": dt.date(2026, 7, 21)}
    job.stopService()


def test_sent_monday_0830_jst_goes_on_tuesday(store_engine: Engine) -> None:
    """送付先 sent at 08:30 JST on a Monday (Sunday 23:30 UTC) is not purged by Monday's noon run,
    only by Tuesday's."""
    _sent(store_engine, "S1", utc(2026, 4, 6, 8, 30))
    assert utc(2026, 4, 6, 8, 30) == dt.datetime(2026, 4, 5, 23, 30)
    clock = Clock()
    job = _job(store_engine, clock, utc(2026, 4, 6, 9), hour=12)
    clock.advance(3 * 3600)  # Monday 12:00 JST
    assert job.passes[-1].at == utc(2026, 4, 6, 12) and _kept(store_engine) == {"S1"}
    clock.advance(86_400)  # Tuesday 12:00 JST
    assert job.passes[-1].at == utc(2026, 4, 7, 12) and _kept(store_engine) == set()
    job.stopService()


def test_a_restart_runs_only_what_was_missed(store_engine: Engine) -> None:
    """After a restart the store's audit log says what ran: nothing runs again the same day; a
    slot missed while the daemon was down runs at start-up."""
    clock = Clock()
    first = _job(store_engine, clock, utc(2026, 4, 6, 3))
    assert first.passes[0].scope == "full"
    first.stopService()
    again = _job(store_engine, clock, utc(2026, 4, 6, 10))  # same day, after the slot
    assert again.passes[0].scope is None and again.passes[0].last_run == utc(2026, 4, 6, 3)
    again.stopService()
    later = _job(store_engine, clock, utc(2026, 4, 8, 10))  # down over two slots
    assert later.passes[0].scope == "soufusaki"
    assert clock.getDelayedCalls()[0].getTime() == utc(2026, 4, 9, 3).replace(
        tzinfo=dt.UTC).timestamp()
    later.stopService()
    assert not clock.getDelayedCalls()


def test_a_second_job_on_a_shared_store_does_not_run_twice(store_engine: Engine) -> None:
    """Whether a run is due is decided again inside its transaction: two daemons sharing a store
    purge once per slot."""
    now = utc(2026, 4, 6, 3)
    with store_engine.begin() as conn:
        first = retention_pass(conn, "cs", now, hour=3, policy=DEFAULT_POLICY, key=KEY)
    with store_engine.begin() as conn:
        second = retention_pass(conn, "cs", now, hour=3, policy=DEFAULT_POLICY, key=KEY)
    assert first.scope == "full" and second.scope is None and second.report is None


def test_metrics_and_a_failed_run(store_engine: Engine) -> None:
    """Each pass sets the store's last-run gauge and counts purged rows per table; a failing
    store is tried again an hour later."""
    registry = CollectorRegistry()
    metrics = RetentionMetrics(registry)
    _sent(store_engine, "S1", utc(2026, 4, 3, 10))
    clock = Clock()
    job = _job(store_engine, clock, utc(2026, 4, 6, 10), metrics=metrics)
    at = utc(2026, 4, 6, 10).replace(tzinfo=dt.UTC).timestamp()
    assert registry.get_sample_value("juki_gateway_retention_last_run_timestamp_seconds",
                                     {"store": "registry"}) == at
    assert registry.get_sample_value("juki_gateway_retention_purged_rows_total",
                                     {"store": "registry", "table": "soufusaki"}) == 1
    job.stopService()
    calls: list[int] = []

    def broken(work: Callable[[Connection], Any]) -> Deferred[Any]:
        calls.append(1)
        return fail(RuntimeError("database is locked"))

    flaky = RetentionService("kiko", broken, clock, observe=metrics.observe)
    flaky.startService()
    flaky.begin()
    clock.advance(3599)
    assert len(calls) == 1
    clock.advance(1)  # an hour later
    assert len(calls) == 2 and flaky.running
    assert registry.get_sample_value("juki_gateway_retention_last_run_timestamp_seconds",
                                     {"store": "kiko"}) is None
    flaky.stopService()


@pytest_twisted.ensureDeferred
async def test_a_registry_store_the_daemon_does_not_host(store_url: str) -> None:
    """Without the intermediate server the registry job runs on a thread of its own and neither
    creates nor migrates the store: a run on a missing or empty store fails (and is retried),
    one on a migrated store purges."""
    from twisted.internet import reactor

    own = OwnRegistryStore(store_url, reactor)
    own.start()
    try:
        with pytest.raises(StoreUnavailable):
            await own.transact(last_runs)
        path = sqlite_path(store_url)
        assert path is None or not path.exists()
        upgrade(store_url)
        now = utc(2026, 4, 6, 10)
        done = await own.transact(lambda conn: retention_pass(
            conn, "registry", now, hour=3, policy=DEFAULT_POLICY, key=KEY))
        assert done.scope == "full" and await own.transact(last_runs) == LastRuns(now, now)
    finally:
        await own.stop()
