"""Retention (R9, R5, R6): what is purged when, the business-day calendar, and the periodic job.

Periods (configurable through :class:`RetentionPolicy`):

* 本人確認情報 history rows and 消除者: 5 years (the seed's period; later law lengthened it);
* 送付先情報: deleted one business day after it was sent — weekends, national holidays
  (``jpholiday``) and 12/29–1/3 are not business days;
* provision records: 7 years (本人確認情報 and intermediate server), 5 years (送付先);
* audit entries: 7 years (the chain's anchor moves past purged entries, see :mod:`.audit`);
* the intermediate server's spent permit ids: until their permit has expired (plus
  ``SPENT_ID_GRACE``); a replay of an expired permit is refused as expired anyway.

Boundary rule: a record is kept for the whole period and purged once the period has fully
elapsed: on the anniversary itself it is still kept, it goes from the day after
(``date < as_of - period``). A history row's age counts from when it stopped being current
(``superseded_at``); a 消除者's from its deletion date. 送付先情報 sent on day S is purged from the first
business day after S on.

Every run (also a dry run, as ``retention_dry_run``) appends one audit entry with its counts.
The :class:`RetentionService` is a ``TimerService`` ticking daily on an injected clock: each tick
deletes due 送付先情報, and the first tick of each month runs the full purge (the monthly job).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import jpholiday
from sqlalchemy import Connection, delete, func, select
from twisted.application.internet import TimerService
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from juki_gateway.protocols.intermediate.permit import SPENT_ID_GRACE
from juki_gateway.registry_store.anchor import AuditKey
from juki_gateway.registry_store.audit import (
    SYSTEM_OPERATOR,
    append_audit,
    purge_audit_before,
)
from juki_gateway.registry_store.ims import purge_used_permits
from juki_gateway.registry_store.models import (
    AuditEntry,
    DeletedResident,
    HonninKakuninHistory,
    ProvisionRecord,
    Soufusaki,
    table_of,
)

log = Logger()


def is_business_day(day: dt.date) -> bool:
    """False on weekends, national holidays and the year-end break 12/29–1/3."""
    if day.weekday() >= 5 or jpholiday.is_holiday(day):
        return False
    return not ((day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3))


def next_business_day(day: dt.date) -> dt.date:
    """The first business day strictly after ``day``."""
    nxt = day + dt.timedelta(days=1)
    while not is_business_day(nxt):
        nxt += dt.timedelta(days=1)
    return nxt


def years_before(day: dt.date, years: int) -> dt.date:
    """The same calendar day ``years`` earlier (29 Feb becomes 28 Feb)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Retention periods in years (R9, R5, R6)."""

    honnin_kakunin_years: int = 5
    provision_years: int = 7
    soufusaki_provision_years: int = 5
    audit_years: int = 7


@dataclass(slots=True)
class RetentionReport:
    """How many rows each purge removed (or would remove, for a dry run)."""

    as_of: dt.date
    dry_run: bool
    counts: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """Human-readable lines, one per category."""
        verb = "would purge" if self.dry_run else "purged"
        return [f"{name}: {verb} {n}" for name, n in self.counts.items()]


def _soufusaki_due(conn: Connection, as_of: dt.date) -> list[str]:
    s = table_of(Soufusaki)
    due: list[str] = []
    for no, sent_at in conn.execute(
        select(s.c.soufusaki_no, s.c.sent_at).where(s.c.sent_at.is_not(None), s.c.sent_at < as_of)
    ):
        if next_business_day(sent_at.date()) <= as_of:
            due.append(no)
    return due


def purge_soufusaki(conn: Connection, as_of: dt.date, *, dry_run: bool = False) -> int:
    """Delete 送付先情報 whose first business day after sending has come."""
    due = _soufusaki_due(conn, as_of)
    if due and not dry_run:
        s = table_of(Soufusaki)
        for start in range(0, len(due), 500):
            conn.execute(delete(s).where(s.c.soufusaki_no.in_(due[start : start + 500])))
    return len(due)


def _count_or_delete(conn: Connection, table: object, where: object, dry_run: bool) -> int:
    if dry_run:
        return int(conn.execute(select(func.count()).select_from(table).where(where)).scalar_one())  # type: ignore[arg-type]
    return int(conn.execute(delete(table).where(where)).rowcount)  # type: ignore[arg-type]


def run_retention(
    conn: Connection,
    as_of: dt.date,
    *,
    policy: RetentionPolicy = RetentionPolicy(),
    dry_run: bool = False,
    now: dt.datetime,
    operator_id: str = SYSTEM_OPERATOR,
    terminal_id: str = "retention",
    key: AuditKey | None,
) -> RetentionReport:
    """Purge (or count, for a dry run) everything past its period as of ``as_of``; audited."""
    report = RetentionReport(as_of, dry_run)
    hk_cut = years_before(as_of, policy.honnin_kakunin_years)
    d = table_of(DeletedResident)
    report.counts["deleted_resident"] = _count_or_delete(conn, d, d.c.deleted_on < hk_cut, dry_run)
    h = table_of(HonninKakuninHistory)
    hist_cut = dt.datetime.combine(hk_cut, dt.time())
    report.counts["honnin_kakunin_history"] = _count_or_delete(
        conn, h, h.c.superseded_at < hist_cut, dry_run
    )
    report.counts["soufusaki"] = purge_soufusaki(conn, as_of, dry_run=dry_run)
    p = table_of(ProvisionRecord)
    prov_cut = dt.datetime.combine(years_before(as_of, policy.provision_years), dt.time())
    souf_cut = dt.datetime.combine(years_before(as_of, policy.soufusaki_provision_years), dt.time())
    report.counts["provision_record"] = _count_or_delete(
        conn, p,
        ((p.c.kind != "soufusaki") & (p.c.occurred_at < prov_cut))
        | ((p.c.kind == "soufusaki") & (p.c.occurred_at < souf_cut)),
        dry_run,
    )
    # Spent permit ids: those whose permit expired before the end of ``as_of`` — never later
    # than ``now``, whatever ``as_of`` says, so no id is forgotten while its permit is valid.
    spent_cut = min(now, dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time()))
    report.counts["ims_used_permit"] = purge_used_permits(
        conn, spent_cut - SPENT_ID_GRACE, dry_run=dry_run
    )
    audit_cut = dt.datetime.combine(years_before(as_of, policy.audit_years), dt.time())
    if dry_run:
        a = table_of(AuditEntry)
        report.counts["audit_log"] = int(
            conn.execute(select(func.count()).select_from(a).where(a.c.occurred_at < audit_cut))
            .scalar_one()
        )
    else:
        report.counts["audit_log"] = purge_audit_before(conn, audit_cut, key=key)
    append_audit(
        conn,
        now=now,
        operator_id=operator_id,
        terminal_id=terminal_id,
        subject="retention",
        action="retention_dry_run" if dry_run else "retention_purge",
        detail={"as_of": as_of.isoformat(), **report.counts},
        key=key,
    )
    return report


class RetentionService(TimerService):
    """Daily tick on an injected clock: 送付先 purge each day, the full purge once a month."""

    def __init__(
        self,
        transact: Callable[[Callable[[Connection], RetentionReport | int]], Deferred[object]],
        clock: IReactorTime,
        *,
        policy: RetentionPolicy = RetentionPolicy(),
        interval: float = 86_400.0,
        key: AuditKey | None = None,
    ) -> None:
        super().__init__(interval, self._tick)  # type: ignore[no-untyped-call]
        self.clock = clock  # TimerService schedules its calls on this clock
        self._clock = clock
        self._transact = transact
        self._policy = policy
        self._key = key
        self._last_full_month: tuple[int, int] | None = None
        self.runs: list[RetentionReport | int] = []

    def _tick(self) -> Deferred[object]:
        seconds = self._clock.seconds()
        now = dt.datetime.fromtimestamp(seconds, dt.UTC).replace(tzinfo=None)
        month = (now.year, now.month)
        full = month != self._last_full_month
        self._last_full_month = month

        def work(conn: Connection) -> RetentionReport | int:
            if full:
                return run_retention(conn, now.date(), policy=self._policy, now=now,
                                     key=self._key)
            return purge_soufusaki(conn, now.date())

        d = self._transact(work)
        d.addCallback(self._done)
        d.addErrback(lambda f: log.failure("retention run failed", f))
        return d

    def _done(self, result: object) -> object:
        self.runs.append(result)  # type: ignore[arg-type]
        return result
