"""When a store's retention runs (pure), and one check of a store (:func:`retention_pass`).

The schedule, in JST (:data:`~.retention.JST`):

* **daily**, at ``hour``:00 JST, the 送付先 purge (送付先情報 goes from the first business day
  after the JST day it was sent);
* **monthly**, the full purge (本人確認情報 history and 消除者 past 5 years, provision records,
  audit entries): the first run in each JST calendar month is a full one;
* **at start-up**, a run when one was missed: no full run yet in this JST month, or no run since
  the latest ``hour``:00 JST (the daemon was down at the time).

The store remembers its runs in its own audit log (:func:`~.retention.last_runs`), so a restart
neither repeats a run nor forgets one. :func:`due` decides from those times alone, and it is
decided again inside the run's transaction: several daemons sharing one PostgreSQL store do not
purge twice for the same day.

The daemon's timer around it is :class:`juki_gateway.gateway.retention.RetentionService`: an
injected clock, and a ``transact(work)`` that runs :func:`retention_pass` in one transaction
where the store's other writes run (the intermediate server's store thread, a Juki-net node's
writer thread), never on the reactor.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection

from juki_gateway.registry_store.anchor import AuditKey
from juki_gateway.registry_store.retention import (
    JST,
    LastRuns,
    RetentionPolicy,
    RetentionReport,
    Scope,
    jst_date,
    last_runs,
    run_retention,
)

DAY = dt.timedelta(days=1)


def _utc(at: dt.datetime) -> dt.datetime:
    return at.replace(tzinfo=dt.UTC)


def seconds_until(now: dt.datetime, later: dt.datetime) -> float:
    """Seconds from ``now`` to ``later`` (both naive UTC)."""
    return (_utc(later) - _utc(now)).total_seconds()


def latest_slot(now: dt.datetime, hour: int) -> dt.datetime:
    """The latest ``hour``:00 JST at or before ``now`` (naive UTC in and out)."""
    local = _utc(now).astimezone(JST)
    slot = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if slot > local:
        slot -= DAY
    return slot.astimezone(dt.UTC).replace(tzinfo=None)


def next_slot(now: dt.datetime, hour: int) -> dt.datetime:
    """The first ``hour``:00 JST strictly after ``now`` (naive UTC in and out)."""
    return latest_slot(now, hour) + DAY


def _jst_month(at: dt.datetime) -> tuple[int, int]:
    day = jst_date(at)
    return day.year, day.month


def due(now: dt.datetime, last: LastRuns, hour: int) -> Scope | None:
    """What a store whose runs were ``last`` should run at ``now`` (naive UTC), if anything: the
    full purge when none ran in this JST month, the 送付先 purge when no run came since the
    latest ``hour``:00 JST, else nothing."""
    if last.full is None or _jst_month(last.full) < _jst_month(now):
        return "full"
    if last.any is None or last.any < latest_slot(now, hour):
        return "soufusaki"
    return None


@dataclass(frozen=True, slots=True)
class RetentionPass:
    """What one check of a store found (its runs so far) and did (``report``: None if nothing
    was due)."""

    store: str
    at: dt.datetime
    last: LastRuns
    scope: Scope | None = None
    report: RetentionReport | None = None

    @property
    def last_run(self) -> dt.datetime | None:
        """When the store's retention last ran, counting this pass."""
        return self.at if self.report is not None else self.last.any


def retention_pass(
    conn: Connection, store: str, now: dt.datetime, *, hour: int, policy: RetentionPolicy,
    key: AuditKey | None,
) -> RetentionPass:
    """In one transaction: read the store's last runs, run what is due at ``now``, audited with
    ``key``. Blocking: runs on the store's thread."""
    last = last_runs(conn)
    scope = due(now, last, hour)
    if scope is None:
        return RetentionPass(store, now, last)
    report = run_retention(conn, jst_date(now), policy=policy, now=now, key=key, scope=scope)
    return RetentionPass(store, now, last, scope, report)
