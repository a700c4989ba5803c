"""The operator plane's privacy rules (both engines): accompanying household members covered by
one flag, the household warning, and 副本 export without flagged people unless two operators
agree."""

from __future__ import annotations

import json

import pytest

from juki_gateway.gateway.intermediate.service import IntermediateService
from juki_gateway.protocols.intermediate.decision import Reason
from juki_gateway.protocols.intermediate.errors import (
    ExportNotConfirmed,
    FlagInvalid,
    NotAuthorised,
    SelfConfirmation,
)
from juki_gateway.protocols.intermediate.flags import FlagState
from juki_gateway.registry_store.audit import list_audit

from .conftest import ALICE, BOB, CAROL, fukuhon_record
from .helpers import FUKUHON, make_permit
from .test_migration_0012 import answer_items_v1
from .test_service import ask, setup_person

VICTIM, CHILD, PARTNER, NEIGHBOUR = (f"17201400000010{n}" for n in range(1, 5))
HOUSEHOLD = {VICTIM: "f1" * 16, CHILD: "f2" * 16, PARTNER: "f3" * 16}


def _two_households(svc: IntermediateService) -> None:
    """Victim, child and partner share 世帯番号 000000123456; the neighbour has another."""
    for atena, fugo in HOUSEHOLD.items():
        setup_person(svc, atena, fugo)
    svc.register_fugo(NEIGHBOUR, "f4" * 16)
    other = dict(FUKUHON, setai_no="000000999999")
    assert svc.import_fukuhon(fukuhon_record(NEIGHBOUR, other))[0][2] is None


def test_accompanying_members_are_covered_by_the_same_flag(service: IntermediateService) -> None:
    """A flag naming 併せて支援を求める者 holds their queries too, for the flag's whole life; the
    household member left out is still answered, and the operator is told so."""
    _two_households(service)
    flag = service.flag_request_set(ALICE, VICTIM, (), "01", "20271231", [CHILD])
    assert flag.accompanying == (CHILD,)
    assert ask(service, make_permit("p-1", fugo=HOUSEHOLD[CHILD])) is Reason.HELD_FLAG
    assert ask(service, make_permit("p-2", fugo=HOUSEHOLD[PARTNER])) is Reason.ANSWERED
    assert service.household_unflagged(flag) == [PARTNER]  # the neighbour is another household
    assert service.flag_show(BOB, flag.flag_id).accompanying == (CHILD,)
    service.flag_confirm(BOB, flag.flag_id)
    service.flag_request_clear(BOB, flag.flag_id)
    assert ask(service, make_permit("p-3", fugo=HOUSEHOLD[CHILD])) is Reason.HELD_FLAG
    assert service.flag_confirm(ALICE, flag.flag_id).state is FlagState.CLEARED
    assert ask(service, make_permit("p-4", fugo=HOUSEHOLD[CHILD])) is Reason.ANSWERED
    with service.engine.connect() as conn:
        entry = next(a for a in list_audit(conn) if a.action == "flags.request-set")
    detail = json.loads(entry.detail)
    assert detail["accompanying"] == [CHILD] and detail["household_unflagged"] == 1


def test_household_warning_disappears_when_everyone_is_covered(
    service: IntermediateService,
) -> None:
    """Naming every other member (or flagging them separately) leaves nobody unflagged."""
    _two_households(service)
    first = service.flag_request_set(ALICE, VICTIM, (), "01", "20271231", [CHILD, PARTNER])
    assert service.household_unflagged(first) == []
    with pytest.raises(FlagInvalid, match="named twice"):
        service.flag_request_set(ALICE, VICTIM, (), "01", "20271231", [VICTIM])
    with pytest.raises(FlagInvalid, match="accompanying person 1 is not 15 digits"):
        service.flag_request_set(ALICE, VICTIM, (), "01", "20271231", ["../x"])
    # the one width of 団体内統合宛名番号 (docs/wire-format.md): 16 characters, letters, or 14
    # digits name no 副本, so no flag may be set on them
    for wrong in ("A00000000000001", VICTIM + "0", VICTIM[:-1]):
        with pytest.raises(FlagInvalid, match="the person flagged is not 15 digits"):
            service.flag_request_set(ALICE, wrong, (), "01", "20271231")


def test_export_leaves_flagged_people_out(service: IntermediateService) -> None:
    """The auditor's (or anyone's) plain export has no flagged or accompanying person in it."""
    _two_households(service)
    service.flag_request_set(ALICE, VICTIM, (), "01", "20271231", [CHILD])
    result = service.export_fukuhon(CAROL)
    assert (result.records, result.flagged_left_out) == (2, 2)
    assert VICTIM.encode() not in result.data and CHILD.encode() not in result.data
    assert PARTNER.encode() in result.data and NEIGHBOUR.encode() in result.data


def test_export_with_flagged_people_needs_a_second_operator(
    service: IntermediateService,
) -> None:
    """Only a reviewer may ask; not the asker but another operator confirms; the request is
    the asker's, used once, and expires."""
    _two_households(service)
    service.flag_request_set(ALICE, VICTIM, (), "01", "20271231")
    with pytest.raises(NotAuthorised):
        service.fukuhon_export_request(CAROL)  # the auditor
    with pytest.raises(ExportNotConfirmed, match="second operator"):
        service.export_fukuhon(ALICE, include_flagged=True)
    req = service.fukuhon_export_request(ALICE)
    with pytest.raises(ExportNotConfirmed, match="not confirmed"):
        service.export_fukuhon(ALICE, include_flagged=True, request_id=req.request_id)
    with pytest.raises(SelfConfirmation):
        service.fukuhon_export_confirm(ALICE, req.request_id)
    assert service.fukuhon_export_confirm(BOB, req.request_id).confirmed_by == BOB.name
    with pytest.raises(ExportNotConfirmed, match="another operator"):
        service.export_fukuhon(BOB, include_flagged=True, request_id=req.request_id)
    with pytest.raises(NotAuthorised):
        service.export_fukuhon(CAROL, include_flagged=True, request_id=req.request_id)
    full = service.export_fukuhon(ALICE, include_flagged=True, request_id=req.request_id)
    assert (full.records, full.flagged_left_out) == (4, 0) and VICTIM.encode() in full.data
    with pytest.raises(ExportNotConfirmed, match="no open export request"):
        service.export_fukuhon(ALICE, include_flagged=True, request_id=req.request_id)
    late = service.fukuhon_export_request(ALICE)
    service.fukuhon_export_confirm(BOB, late.request_id)
    service.clock.advance(901)  # type: ignore[attr-defined]
    with pytest.raises(ExportNotConfirmed, match="older than 900 s"):
        service.export_fukuhon(ALICE, include_flagged=True, request_id=late.request_id)
    with service.engine.connect() as conn:
        exports = [json.loads(a.detail) for a in list_audit(conn) if a.action == "fukuhon.export"]
    assert [(e["flagged_left_out"], e["confirmed_by"]) for e in exports] == [(0, BOB.name)]


def test_upgrade_fills_the_household_of_existing_records(store_url: str) -> None:
    """Migration 0007 gives 副本 stored before it their 世帯番号 (first item of the record),
    and down again drops it."""
    import datetime as dt

    from sqlalchemy import insert, select

    from juki_gateway.registry_store.engine import create_store_engine
    from juki_gateway.registry_store.migrate import downgrade, upgrade
    from juki_gateway.registry_store.models import Fukuhon, table_of

    engine = create_store_engine(store_url)
    fukuhon = table_of(Fukuhon)
    try:
        upgrade(store_url, "0006", engine=engine)
        with engine.begin() as conn:  # only the columns schema 0006 has
            conn.execute(insert(fukuhon).values(
                atena_no=VICTIM, koban="juminhyo", updated_at=dt.datetime(2026, 1, 1),
                record=answer_items_v1(FUKUHON)))
        upgrade(store_url, engine=engine)
        with engine.begin() as conn:
            assert conn.execute(select(fukuhon.c.setai_no)).scalar_one() == FUKUHON["setai_no"]
        downgrade(store_url, "0006", engine=engine)
        upgrade(store_url, engine=engine)
    finally:
        engine.dispose()
