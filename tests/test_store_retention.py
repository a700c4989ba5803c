"""Retention: the business-day calendar (JST), purge boundaries, dry runs, audit, last runs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools

import pytest
from sqlalchemy import Connection, Engine, func, select

from juki_gateway.registry_store.anchor import AuditKey
from juki_gateway.registry_store.audit import append_audit, list_audit, verify_chain
from juki_gateway.registry_store.models import (
    HonninKakuninHistory,
    ProvisionRecord,
    Soufusaki,
    table_of,
)
from juki_gateway.registry_store.residents import (
    add_soufusaki,
    apply_honnin_kakunin,
    delete_resident,
    history_of,
    mark_soufusaki_sent,
)
from juki_gateway.registry_store.retention import (
    LastRuns,
    is_business_day,
    jst_date,
    jst_day_start,
    last_runs,
    next_business_day,
    run_retention,
)
from juki_gateway.registry_store.synthetic import make_resident

KEY = AuditKey(bytes(range(32)))
_retention = functools.partial(run_retention, key=KEY)


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (dt.date(2026, 4, 3), dt.date(2026, 4, 6)),  # Friday -> Monday
        (dt.date(2026, 4, 28), dt.date(2026, 4, 30)),  # 4/29 昭和の日
        (dt.date(2025, 12, 26), dt.date(2026, 1, 5)),  # Friday before the year-end break
        (dt.date(2026, 12, 28), dt.date(2027, 1, 4)),  # Monday 12/28 -> 1/4 (Monday)
        (dt.date(2026, 1, 9), dt.date(2026, 1, 13)),  # 1/12 成人の日
        (dt.date(2026, 7, 17), dt.date(2026, 7, 21)),  # Friday before 7/20 海の日 (a Monday)
        (dt.date(2026, 9, 18), dt.date(2026, 9, 24)),  # 9/21 敬老の日, 9/22 国民の休日, 9/23 秋分の日
    ],
)
def test_next_business_day(sent: dt.date, expected: dt.date) -> None:
    """Weekends, national holidays and 12/29–1/3 are skipped."""
    assert next_business_day(sent) == expected
    assert is_business_day(expected)


def test_jst_days() -> None:
    """A store time (naive UTC) belongs to its JST day; a JST day starts at 15:00 UTC the day before."""
    assert jst_date(dt.datetime(2026, 4, 5, 23, 30)) == dt.date(2026, 4, 6)  # Monday 08:30 JST
    assert jst_date(dt.datetime(2026, 4, 5, 14, 59)) == dt.date(2026, 4, 5)
    assert jst_day_start(dt.date(2026, 4, 6)) == dt.datetime(2026, 4, 5, 15, 0)


def _count(conn: Connection, model: type) -> int:
    return int(conn.execute(select(func.count()).select_from(table_of(model))).scalar_one())


def _soufusaki_sent(engine: Engine, no: str, sent: dt.datetime) -> None:
    with engine.begin() as conn:
        add_soufusaki(conn, no, "24727059608", None, b"rec", sent)
        mark_soufusaki_sent(conn, no, sent)


def test_soufusaki_kept_until_next_business_day(store_engine: Engine) -> None:
    """送付先 sent on a Friday survives Saturday–Sunday and goes on Monday; unsent ones stay."""
    _soufusaki_sent(store_engine, "S1", dt.datetime(2026, 4, 3, 17, 0))
    with store_engine.begin() as conn:
        add_soufusaki(conn, "S2", "24727059608", None, b"rec", dt.datetime(2026, 4, 3))
    now = dt.datetime(2026, 4, 6, 1, 0)
    for day in (dt.date(2026, 4, 3), dt.date(2026, 4, 4), dt.date(2026, 4, 5)):
        with store_engine.begin() as conn:
            assert _retention(conn, day, now=now).counts["soufusaki"] == 0
    with store_engine.begin() as conn:
        assert _retention(conn, dt.date(2026, 4, 6), now=now).counts["soufusaki"] == 1
        assert [r.soufusaki_no for r in conn.execute(select(table_of(Soufusaki)))] == ["S2"]


def test_soufusaki_sent_monday_morning_jst_goes_on_tuesday(store_engine: Engine) -> None:
    """送付先 sent at 08:30 JST on a Monday (Sunday 23:30 UTC) stays all that Monday and goes on
    Tuesday: the day it was sent is its JST day, not its UTC one."""
    _soufusaki_sent(store_engine, "S1", dt.datetime(2026, 4, 5, 23, 30))
    now = dt.datetime(2026, 4, 6, 12, 0)
    with store_engine.begin() as conn:
        assert _retention(conn, dt.date(2026, 4, 6), now=now).counts["soufusaki"] == 0
        assert _retention(conn, dt.date(2026, 4, 7), now=now).counts["soufusaki"] == 1


def test_soufusaki_sent_late_friday_jst(store_engine: Engine) -> None:
    """送付先 sent at 23:30 JST on the Friday before a Monday holiday (14:30 UTC) goes on Tuesday."""
    _soufusaki_sent(store_engine, "S1", dt.datetime(2026, 7, 17, 14, 30))
    now = dt.datetime(2026, 7, 21)
    with store_engine.begin() as conn:
        assert _retention(conn, dt.date(2026, 7, 20), now=now).counts["soufusaki"] == 0
        assert _retention(conn, dt.date(2026, 7, 21), now=now).counts["soufusaki"] == 1


def test_soufusaki_across_new_year(store_engine: Engine) -> None:
    """送付先 sent on 12/28 stays through the year-end break and goes on the first business day."""
    _soufusaki_sent(store_engine, "S1", dt.datetime(2026, 12, 28, 10, 0))
    now = dt.datetime(2027, 1, 4)
    with store_engine.begin() as conn:
        assert _retention(conn, dt.date(2027, 1, 3), now=now).counts["soufusaki"] == 0
        assert _retention(conn, dt.date(2027, 1, 4), now=now).counts["soufusaki"] == 1


def test_history_purged_exactly_after_five_years(store_engine: Engine) -> None:
    """A superseded version is kept on the 5th anniversary of its replacement and purged the day after."""
    r = make_resident(11)
    with store_engine.begin() as conn:
        apply_honnin_kakunin(conn, [r], dt.datetime(2019, 1, 1))
        apply_honnin_kakunin(conn, [dataclasses.replace(r, seq=2)], dt.datetime(2021, 3, 15, 10))
        apply_honnin_kakunin(conn, [dataclasses.replace(r, seq=3)], dt.datetime(2024, 6, 1))
    now = dt.datetime(2026, 3, 17)
    with store_engine.begin() as conn:
        report = _retention(conn, dt.date(2026, 3, 15), now=now)
        assert report.counts["honnin_kakunin_history"] == 0
        report = _retention(conn, dt.date(2026, 3, 16), now=now)
        assert report.counts["honnin_kakunin_history"] == 1
        assert [h[0] for h in history_of(conn, r.juminhyo_code)] == [2, 3]


def test_deleted_residents_and_their_history_purged_after_five_years(store_engine: Engine) -> None:
    """A 消除者 and the version its deletion superseded are kept 5 years, then purged."""
    r = make_resident(12)
    with store_engine.begin() as conn:
        apply_honnin_kakunin(conn, [r], dt.datetime(2020, 1, 1))
        delete_resident(conn, r.juminhyo_code, deleted_on=dt.date(2021, 2, 1), deceased=False,
                        now=dt.datetime(2021, 2, 1),
                        final=dataclasses.replace(r, change_reason="B01", seq=2))
    now = dt.datetime(2026, 3, 1)
    with store_engine.begin() as conn:
        kept = _retention(conn, dt.date(2026, 2, 1), now=now).counts
        assert (kept["deleted_resident"], kept["honnin_kakunin_history"]) == (0, 0)
        dry = _retention(conn, dt.date(2026, 2, 2), now=now, dry_run=True).counts
        assert (dry["deleted_resident"], dry["honnin_kakunin_history"]) == (1, 1)
        assert _count(conn, HonninKakuninHistory) == 1
        gone = _retention(conn, dt.date(2026, 2, 2), now=now).counts
        assert (gone["deleted_resident"], gone["honnin_kakunin_history"]) == (1, 1)
        assert _count(conn, HonninKakuninHistory) == 0


def test_provision_records_seven_and_five_years(store_engine: Engine) -> None:
    """Provision records go after 7 years, 送付先 provision records after 5 years."""
    p = table_of(ProvisionRecord)
    with store_engine.begin() as conn:
        for kind, when in [("intermediate", dt.datetime(2019, 5, 1)),
                           ("soufusaki", dt.datetime(2021, 5, 1)),
                           ("honnin_kakunin", dt.datetime(2019, 5, 2))]:
            conn.execute(p.insert(), {"occurred_at": when, "kind": kind, "provider": "cs",
                                      "recipient": "kiko", "operator_id": None, "subject": "x",
                                      "items": "", "outcome": "provided", "detail": ""})
    with store_engine.begin() as conn:
        assert _retention(conn, dt.date(2026, 5, 1), now=dt.datetime(2026, 5, 2)).counts[
            "provision_record"] == 0
        assert _retention(conn, dt.date(2026, 5, 2), now=dt.datetime(2026, 5, 2)).counts[
            "provision_record"] == 2
        assert [r.kind for r in conn.execute(select(p))] == ["honnin_kakunin"]


def test_runs_are_audited_and_old_audit_entries_purged(store_engine: Engine) -> None:
    """Each run appends its counts to the audit log; audit entries older than 7 years go."""
    with store_engine.begin() as conn:
        append_audit(conn, now=dt.datetime(2018, 1, 1), operator_id="op1", terminal_id="t",
                     subject="x", action="flag_set", key=KEY)
        append_audit(conn, now=dt.datetime(2020, 1, 1), operator_id="op1", terminal_id="t",
                     subject="x", action="flag_set", key=KEY)
    with store_engine.begin() as conn:
        report = _retention(conn, dt.date(2026, 6, 1), now=dt.datetime(2026, 6, 1, 3))
        assert report.counts["audit_log"] == 1
        entries = list(list_audit(conn))
        assert [e.action for e in entries] == ["flag_set", "retention_purge"]
        assert '"audit_log": 1' in entries[-1].detail and '"scope": "full"' in entries[-1].detail
        assert verify_chain(conn, keys=[KEY]).ok  # the purge re-anchored the moved head


def test_dry_run_changes_nothing(store_engine: Engine) -> None:
    """A dry run reports what it would purge and leaves every row in place."""
    _soufusaki_sent(store_engine, "S1", dt.datetime(2026, 4, 3, 17, 0))
    with store_engine.begin() as conn:
        report = _retention(conn, dt.date(2026, 4, 10), now=dt.datetime(2026, 4, 10),
                            dry_run=True)
        assert report.counts["soufusaki"] == 1
        assert "soufusaki: would purge 1" in report.lines()
        assert _count(conn, Soufusaki) == 1


def test_soufusaki_scope_purges_only_soufusaki(store_engine: Engine) -> None:
    """The daily run purges due 送付先 only, leaves what the monthly run purges, and is audited
    as retention_soufusaki with the anchor key."""
    _soufusaki_sent(store_engine, "S1", dt.datetime(2026, 4, 3, 8, 0))
    with store_engine.begin() as conn:
        append_audit(conn, now=dt.datetime(2010, 1, 1), operator_id="op1", terminal_id="t",
                     subject="x", action="flag_set", key=KEY)
    with store_engine.begin() as conn:
        report = _retention(conn, dt.date(2026, 4, 6), now=dt.datetime(2026, 4, 5, 18),
                            scope="soufusaki")
        assert report.counts == {"soufusaki": 1, "tenshutsu_shomei": 0, "ims_used_permit": 0}
        assert [e.action for e in list_audit(conn)] == ["flag_set", "retention_soufusaki"]
        assert verify_chain(conn, keys=[KEY]).ok


def test_last_runs_come_from_the_audit_log(store_engine: Engine) -> None:
    """A store remembers its newest run of either scope and its newest full run; dry runs do not
    count."""
    with store_engine.begin() as conn:
        assert last_runs(conn) == LastRuns(None, None)
        _retention(conn, dt.date(2026, 4, 1), now=dt.datetime(2026, 3, 31, 18))
        _retention(conn, dt.date(2026, 4, 2), now=dt.datetime(2026, 4, 1, 18), scope="soufusaki")
        _retention(conn, dt.date(2026, 4, 3), now=dt.datetime(2026, 4, 2, 18), dry_run=True)
        assert last_runs(conn) == LastRuns(any=dt.datetime(2026, 4, 1, 18),
                                           full=dt.datetime(2026, 3, 31, 18))


def test_spent_permit_ids_are_purged_an_hour_after_their_permit_expired(
    store_engine: Engine,
) -> None:
    """Spent permit ids whose permit expired over an hour before the run go; the others stay,
    and an --as-of in the future never purges an id whose permit is still valid."""
    from juki_gateway.registry_store.ims import spend_permits, used_permits
    from juki_gateway.registry_store.ims_models import ims_used_permit

    used = dt.datetime(2026, 11, 26, 11)
    with store_engine.begin() as conn:
        spend_permits(conn, [
            {"permit_id": "gone", "used_at": used, "expires_at": dt.datetime(2026, 11, 26, 12)},
            {"permit_id": "grace", "used_at": used,
             "expires_at": dt.datetime(2026, 11, 26, 13, 30)},
            {"permit_id": "valid", "used_at": used, "expires_at": dt.datetime(2026, 11, 27, 9)},
        ])
    now = dt.datetime(2026, 11, 26, 14)
    with store_engine.begin() as conn:
        dry = _retention(conn, now.date(), now=now, dry_run=True)
        assert dry.counts["ims_used_permit"] == 1
        assert "ims_used_permit: would purge 1" in dry.lines()
        assert int(conn.execute(select(func.count()).select_from(ims_used_permit))
                   .scalar_one()) == 3
    with store_engine.begin() as conn:  # as of a later day, but it is only 14:00 today
        report = _retention(conn, dt.date(2026, 12, 31), now=now)
        assert report.counts["ims_used_permit"] == 1
        assert set(used_permits(conn, dt.datetime(2000, 1, 1))) == {"grace", "valid"}
        assert set(used_permits(conn, now - dt.timedelta(hours=1))) == {"grace", "valid"}
        assert set(used_permits(conn, dt.datetime(2026, 11, 26, 13, 45))) == {"valid"}


def test_tenshutsu_shomei_kept_30_days_after_the_move_out_date(store_engine: Engine) -> None:
    """A 転出証明書情報 stays at the old CS through the 30th day after its 転出予定年月日 (the
    last day a 特例転入 may be notified) and goes from the 31st, in every run (the daily
    送付先 scope too); a dry run only counts."""
    import random

    from juki_gateway.protocols.jukinet.layouts import TENSHUTSU_SHOMEI, encode_body
    from juki_gateway.registry_store.jukinet import keep_tenshutsu_shomei, tenshutsu_shomei_of
    from juki_gateway.simulators.resident_events import new_resident

    rng = random.Random(5)
    people = {day: new_resident(rng, i, "172014")
              for i, day in enumerate((dt.date(2026, 3, 1), dt.date(2026, 3, 2)), 1)}
    with store_engine.begin() as conn:
        for day, p in people.items():
            keep_tenshutsu_shomei(conn, p.juminhyo_code, "172120", True, encode_body(
                TENSHUTSU_SHOMEI, {
                    "juminhyo_code": p.juminhyo_code, "kojin_bango": None,
                    "kanji_name": p.name_kanji, "kana_name": p.name_kana,
                    "birth_date": p.birth_date, "sex": p.sex, "householder_name": p.name_kanji,
                    "relationship": "01000000", "old_lg_code": "172014",
                    "old_address": "石川県金沢市広坂一丁目１番１号", "new_lg_code": "172120",
                    "new_address": "石川県野々市市三納一丁目１番", "tokurei": "1",
                    "move_out_date": day.strftime("%Y%m%d"), "notification_date": "20260220"}),
                dt.datetime(2026, 2, 20, 1))
    first, second = (p.juminhyo_code for p in people.values())
    with store_engine.begin() as conn:  # 3/31 is the 30th day after 3/1: both kept
        assert _retention(conn, dt.date(2026, 3, 31), now=dt.datetime(2026, 3, 31, 3),
                          scope="soufusaki").counts["tenshutsu_shomei"] == 0
        dry = _retention(conn, dt.date(2026, 4, 1), now=dt.datetime(2026, 4, 1, 3), dry_run=True)
        assert dry.counts["tenshutsu_shomei"] == 1 and tenshutsu_shomei_of(conn, first) is not None
        report = _retention(conn, dt.date(2026, 4, 1), now=dt.datetime(2026, 4, 1, 3),
                            scope="soufusaki")
        assert report.counts["tenshutsu_shomei"] == 1
        assert tenshutsu_shomei_of(conn, first) is None
        assert tenshutsu_shomei_of(conn, second) is not None
