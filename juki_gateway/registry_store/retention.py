"""Retention (R9, R5, R6): what is purged when, the business-day calendar, and one store's run.

Periods (configurable through :class:`RetentionPolicy`, ``[retention]`` in gateway.toml):

* 本人確認情報 history rows and 消除者: 5 years (the seed's period; later law lengthened it);
* 送付先情報: deleted one business day after it was sent — weekends, national holidays
  (``jpholiday``) and 12/29–1/3 are not business days;
* provision records: 7 years (本人確認情報 and intermediate server), 5 years (送付先);
* audit entries: 7 years (the chain's anchor moves past purged entries, see :mod:`.audit`);
* 転出証明書情報 at the old CS: 30 days after its 転出予定年月日, the last day a 特例転入 may
  be notified (it goes earlier, when the 転入通知 about the person arrives), in every run;
* the intermediate server's spent permit ids: until their permit has expired (plus
  ``SPENT_ID_GRACE``); a replay of an expired permit is refused as expired anyway.

Days are Japanese calendar days (JST, Asia/Tokyo): the store keeps naive UTC times, and a time
belongs to the JST day it falls on (:func:`jst_date`); ``as_of`` is a JST day, and "before
``as_of``" means before 00:00 JST of it (:func:`jst_day_start`).

Boundary rule: a record is kept for the whole period and purged once the period has fully
elapsed: on the anniversary itself it is still kept, it goes from the day after
(``date < as_of - period``). A history row's age counts from when it stopped being current
(``superseded_at``); a 消除者's from its deletion date. 送付先情報 sent on JST day S is purged from
the first business day after S on, never on S itself (a batch sent at 08:30 JST on a Monday
goes on Tuesday).

A run is either the full purge (``scope="full"``, the monthly job) or the 送付先 purge alone
(``scope="soufusaki"``, the daily job). Every run appends one audit entry with its counts
(``retention_purge``, ``retention_soufusaki``, or ``retention_dry_run``); :func:`last_runs`
reads the newest ones back, so a store remembers when its retention last ran. The schedule
that runs it is :mod:`.retention_job`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jpholiday
from sqlalchemy import Connection, delete, func, select

from juki_gateway.protocols.intermediate.permit import SPENT_ID_GRACE
from juki_gateway.protocols.jukinet.layouts import TENSHUTSU_SHOMEI, field_slice
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
    TenshutsuShomei,
    table_of,
)

try:
    JST: dt.tzinfo = ZoneInfo("Asia/Tokyo")
except ZoneInfoNotFoundError:  # no tz database on this host: Japan has kept UTC+9 since 1951
    JST = dt.timezone(dt.timedelta(hours=9), "JST")

#: What one run purges: everything past its period, or only the 送付先 due (the daily job).
Scope = Literal["full", "soufusaki"]
#: The audit action of each kind of run (``subject`` is always ``retention``).
ACTIONS: dict[Scope, str] = {"full": "retention_purge", "soufusaki": "retention_soufusaki"}
DRY_RUN_ACTION = "retention_dry_run"
SUBJECT = "retention"


def jst_date(at: dt.datetime) -> dt.date:
    """The JST calendar day of ``at`` (naive UTC, the store's convention)."""
    return at.replace(tzinfo=dt.UTC).astimezone(JST).date()


def jst_day_start(day: dt.date) -> dt.datetime:
    """00:00 JST of ``day``, as naive UTC."""
    return dt.datetime.combine(day, dt.time(), JST).astimezone(dt.UTC).replace(tzinfo=None)


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
    """Retention periods in years (R9, R5, R6): the rules' own by default; ``[retention]`` in
    gateway.toml may lengthen them (150 years of 本人確認情報 is current law's, docs/store.md)."""

    honnin_kakunin_years: int = 5
    provision_years: int = 7
    soufusaki_provision_years: int = 5
    audit_years: int = 7


#: The rules' own periods (the defaults of ``[retention]``).
DEFAULT_POLICY = RetentionPolicy()


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
    sent_before = jst_day_start(as_of)  # sent on an earlier JST day
    for no, sent_at in conn.execute(
        select(s.c.soufusaki_no, s.c.sent_at).where(s.c.sent_at.is_not(None),
                                                    s.c.sent_at < sent_before)
    ):
        if next_business_day(jst_date(sent_at)) <= as_of:
            due.append(no)
    return due


def purge_soufusaki(conn: Connection, as_of: dt.date, *, dry_run: bool = False) -> int:
    """Delete 送付先情報 whose first business day (JST) after the JST day it was sent has come."""
    due = _soufusaki_due(conn, as_of)
    if due and not dry_run:
        s = table_of(Soufusaki)
        for start in range(0, len(due), 500):
            conn.execute(delete(s).where(s.c.soufusaki_no.in_(due[start : start + 500])))
    return len(due)


#: A 転出証明書情報 serves a 特例転入 only, which must be notified at the latest 30 days after
#: the 転出予定年月日 (住基法24条の2; 14 days after arriving, if that is earlier): the old CS
#: keeps it that long, then purges it (a later 特例転入 request is refused as for an unknown
#: person, 5117).
TENSHUTSU_SHOMEI_DAYS = 30
_MOVE_OUT_DATE = field_slice(TENSHUTSU_SHOMEI, "move_out_date")


def purge_tenshutsu_shomei(conn: Connection, as_of: dt.date, *, dry_run: bool = False) -> int:
    """Delete the 転出証明書情報 whose 転出予定年月日 is more than :data:`TENSHUTSU_SHOMEI_DAYS`
    days before ``as_of`` (the JST day): its 特例転入 can no longer come. One whose 転入通知
    arrived was deleted then already."""
    t = table_of(TenshutsuShomei)
    last = as_of - dt.timedelta(days=TENSHUTSU_SHOMEI_DAYS)
    due = [str(r.juminhyo_code) for r in conn.execute(select(t.c.juminhyo_code, t.c.record))
           if _move_out(bytes(r.record)) < last]
    if due and not dry_run:
        for start in range(0, len(due), 500):
            conn.execute(delete(t).where(t.c.juminhyo_code.in_(due[start : start + 500])))
    return len(due)


def _move_out(record: bytes) -> dt.date:
    raw = record[_MOVE_OUT_DATE].decode("ascii")
    return dt.date(int(raw[:4]), int(raw[4:6]), int(raw[6:8]))


def _count_or_delete(conn: Connection, table: object, where: object, dry_run: bool) -> int:
    if dry_run:
        return int(conn.execute(select(func.count()).select_from(table).where(where)).scalar_one())  # type: ignore[arg-type]
    return int(conn.execute(delete(table).where(where)).rowcount)  # type: ignore[arg-type]


def _cut(as_of: dt.date, years: int) -> dt.datetime:
    """00:00 JST of the day ``years`` before ``as_of`` (naive UTC): older rows are past it."""
    return jst_day_start(years_before(as_of, years))


def run_retention(
    conn: Connection,
    as_of: dt.date,
    *,
    policy: RetentionPolicy = DEFAULT_POLICY,
    dry_run: bool = False,
    now: dt.datetime,
    operator_id: str = SYSTEM_OPERATOR,
    terminal_id: str = "retention",
    key: AuditKey | None,
    scope: Scope = "full",
) -> RetentionReport:
    """Purge (or count, for a dry run) what is past its period as of the JST day ``as_of``:
    everything (``scope="full"``) or only the 送付先情報 due (``"soufusaki"``); audited."""
    report = RetentionReport(as_of, dry_run)
    if scope == "full":
        _purge_periods(conn, as_of, policy, dry_run, report)
    report.counts["soufusaki"] = purge_soufusaki(conn, as_of, dry_run=dry_run)
    report.counts["tenshutsu_shomei"] = purge_tenshutsu_shomei(conn, as_of, dry_run=dry_run)
    # Spent permit ids: those whose permit expired before the end of ``as_of`` — never later
    # than ``now``, whatever ``as_of`` says, so no id is forgotten while its permit is valid.
    spent_cut = min(now, jst_day_start(as_of + dt.timedelta(days=1)))
    report.counts["ims_used_permit"] = purge_used_permits(
        conn, spent_cut - SPENT_ID_GRACE, dry_run=dry_run)
    if scope == "full":  # the audit entries last: the run's own entry is never the one purged
        report.counts["audit_log"] = _purge_audit(conn, as_of, policy, dry_run, key)
    append_audit(
        conn,
        now=now,
        operator_id=operator_id,
        terminal_id=terminal_id,
        subject=SUBJECT,
        action=DRY_RUN_ACTION if dry_run else ACTIONS[scope],
        detail={"as_of": as_of.isoformat(), "scope": scope, **report.counts},
        key=key,
    )
    return report


def _purge_periods(conn: Connection, as_of: dt.date, policy: RetentionPolicy, dry_run: bool,
                   report: RetentionReport) -> None:
    """The yearly periods: 消除者, 本人確認情報 history, provision records."""
    hk_day = years_before(as_of, policy.honnin_kakunin_years)
    d = table_of(DeletedResident)
    report.counts["deleted_resident"] = _count_or_delete(conn, d, d.c.deleted_on < hk_day, dry_run)
    h = table_of(HonninKakuninHistory)
    report.counts["honnin_kakunin_history"] = _count_or_delete(
        conn, h, h.c.superseded_at < jst_day_start(hk_day), dry_run
    )
    p = table_of(ProvisionRecord)
    prov_cut = _cut(as_of, policy.provision_years)
    souf_cut = _cut(as_of, policy.soufusaki_provision_years)
    report.counts["provision_record"] = _count_or_delete(
        conn, p,
        ((p.c.kind != "soufusaki") & (p.c.occurred_at < prov_cut))
        | ((p.c.kind == "soufusaki") & (p.c.occurred_at < souf_cut)),
        dry_run,
    )


def _purge_audit(conn: Connection, as_of: dt.date, policy: RetentionPolicy, dry_run: bool,
                 key: AuditKey | None) -> int:
    audit_cut = _cut(as_of, policy.audit_years)
    if dry_run:
        a = table_of(AuditEntry)
        return int(conn.execute(select(func.count()).select_from(a)
                                .where(a.c.occurred_at < audit_cut)).scalar_one())
    return purge_audit_before(conn, audit_cut, key=key)


@dataclass(frozen=True, slots=True)
class LastRuns:
    """When a store's retention last ran (naive UTC, from its audit log; None: never)."""

    #: the newest run of either scope (a full run purges the 送付先 due as well)
    any: dt.datetime | None = None
    #: the newest full run
    full: dt.datetime | None = None


def last_runs(conn: Connection) -> LastRuns:
    """The newest retention runs recorded in the store's audit log (dry runs do not count)."""
    a = table_of(AuditEntry)

    def newest(*actions: str) -> dt.datetime | None:
        value = conn.execute(select(func.max(a.c.occurred_at)).where(
            a.c.subject == SUBJECT, a.c.action.in_(actions))).scalar()
        return value if isinstance(value, dt.datetime) else None

    return LastRuns(any=newest(*ACTIONS.values()), full=newest(ACTIONS["full"]))
