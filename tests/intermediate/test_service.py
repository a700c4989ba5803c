"""The store-backed intermediate service: answers, refusals, flags, held queries, records, audit."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from sqlalchemy import select, text
from twisted.internet.task import Clock

from juki_gateway.gateway.intermediate.service import IntermediateService
from juki_gateway.protocols.intermediate.answer import decode_query_result, open_answer
from juki_gateway.protocols.intermediate.decision import Reason
from juki_gateway.protocols.intermediate.errors import (
    FukuhonUnknownAtena,
    HeldQueryError,
    NotAuthorised,
    PermissionListStale,
    SelfConfirmation,
)
from juki_gateway.protocols.intermediate.flags import FlagScope, FlagState
from juki_gateway.protocols.intermediate.items import items_to_mask
from juki_gateway.protocols.intermediate.messages import INFO_QUERY_LAYOUT, QueryStatus
from juki_gateway.protocols.intermediate.permission_list import PermissionEntry
from juki_gateway.protocols.intermediate.permit import Permit
from juki_gateway.registry_store.audit import list_audit, verify_chain
from juki_gateway.registry_store.models import ProvisionRecord

from .conftest import ALICE, AUDIT_KEY, BOB, CAROL, fukuhon_record, make_service
from .helpers import (
    FUKUHON,
    NETWORK_KEY,
    PROVIDER,
    REQUESTER,
    REQUESTER_KEY,
    make_list,
    make_permit,
)

ATENA = "172014000000001"
FUGO = "f" * 32


def query_body(permit: Permit) -> bytes:
    """The info-query body matching its permit."""
    return INFO_QUERY_LAYOUT.encode(
        {
            "fugo": permit.fugo,
            "kouban": f"{permit.kouban:03d}",
            "items": items_to_mask(permit.items),
            "route": permit.requester,
            "permit": permit.to_bytes(),
        }
    )


def setup_person(svc: IntermediateService, atena: str = ATENA, fugo: str = FUGO) -> None:
    """Register a 符号, a 副本 and the permission list."""
    svc.register_fugo(atena, fugo)
    assert svc.import_fukuhon(fukuhon_record(atena))[0][2] is None
    if svc.permission_list is None:
        svc.offer_permission_list(make_list(1).to_bytes())


def ask(svc: IntermediateService, permit: Permit) -> Reason:
    """Send one query, return the reason of its result."""
    return decode_query_result(svc.handle_queries([query_body(permit)])[0]).reason


def provision_outcomes(svc: IntermediateService) -> list[tuple[str, str]]:
    """(outcome, detail code) of every provision record."""
    pr = ProvisionRecord.__table__
    with svc.engine.connect() as conn:
        return [(r.outcome, r.detail[:4]) for r in conn.execute(select(pr).order_by(pr.c.id))]


def test_valid_query_is_answered_with_exactly_the_permitted_items(
    service: IntermediateService,
) -> None:
    """The requester opens the answer and finds exactly the permitted items; it is recorded."""
    setup_person(service)
    result = decode_query_result(service.handle_queries([query_body(make_permit())])[0])
    assert result.status is QueryStatus.ANSWERED
    assert open_answer(result, REQUESTER_KEY, PROVIDER) == {
        "shimei": FUKUHON["shimei"],
        "jusho": FUKUHON["jusho"],
    }
    assert provision_outcomes(service) == [("provided", "0000")]


def test_each_refusal_is_recorded_with_its_code(service: IntermediateService) -> None:
    """Bad signature, expiry, replay, provider, list and 符号 refusals each leave a record."""
    import cryptography.hazmat.primitives.asymmetric.ec as ec

    setup_person(service)
    assert ask(service, make_permit("p-1")) is Reason.ANSWERED
    cases = [
        (make_permit("p-2", key=ec.generate_private_key(ec.SECP256R1())), Reason.BAD_SIGNATURE),
        (make_permit("p-3", expires="20261126115959"), Reason.EXPIRED),
        (make_permit("p-1"), Reason.REPLAYED),
        (make_permit("p-4", provider="ims-131016"), Reason.WRONG_PROVIDER),
        (make_permit("p-5", items=("seibetsu",)), Reason.NOT_PERMITTED),
        (make_permit("p-6", fugo="g" * 32), Reason.UNKNOWN_FUGO),
    ]
    for permit, reason in cases:
        assert ask(service, permit) is reason
    assert provision_outcomes(service)[1:] == [("refused", f"{r.wire_code:04d}") for _, r in cases]


def test_replay_survives_a_restart(store_url: str, clock: Clock) -> None:
    """A spent permit id stays spent after the service restarts on the same store."""
    svc = make_service(store_url, clock)
    setup_person(svc)
    assert ask(svc, make_permit("p-9")) is Reason.ANSWERED
    svc.engine.dispose()
    again = make_service(store_url, clock)
    assert again.permission_list is not None and again.permission_list.version == 1
    assert ask(again, make_permit("p-9")) is Reason.REPLAYED
    with pytest.raises(PermissionListStale):
        again.offer_permission_list(make_list(1).to_bytes())
    again.engine.dispose()


def test_a_restart_remembers_only_permits_that_can_still_be_replayed(
    store_url: str, clock: Clock
) -> None:
    """After a restart, an unexpired spent permit is still refused as replayed; one whose
    permit expired (over the hour's margin ago) is not loaded, and is refused as expired."""
    svc = make_service(store_url, clock)
    setup_person(svc)
    short = make_permit("p-short", expires="20261126121000")
    long = make_permit("p-long", expires="20261126180000")
    assert [ask(svc, short), ask(svc, long)] == [Reason.ANSWERED, Reason.ANSWERED]
    svc.engine.dispose()
    clock.advance(2 * 3600)  # 14:00: p-short expired 1 h 50 min ago
    again = make_service(store_url, clock)
    try:
        assert again.spent_permit_count == 1
        assert ask(again, long) is Reason.REPLAYED
        assert ask(again, short) is Reason.EXPIRED
    finally:
        again.engine.dispose()


def test_spent_permits_are_forgotten_once_expired(service: IntermediateService,
                                                  clock: Clock) -> None:
    """The server's memory of spent permits shrinks as their permits expire (plus an hour),
    while the store keeps the rows for the retention job; a replay in between is refused."""
    from juki_gateway.registry_store.ims_models import ims_used_permit

    setup_person(service)
    for i, expires in enumerate(("20261126121000", "20261126122000", "20261126235959")):
        assert ask(service, make_permit(f"p-{i}", expires=expires)) is Reason.ANSWERED
    assert service.spent_permit_count == 3
    clock.advance(3600 + 5 * 60)  # 13:05: p-0 expired 55 min ago, inside the margin
    assert ask(service, make_permit("p-0", expires="20261126121000")) is Reason.EXPIRED
    assert service.spent_permit_count == 3
    clock.advance(20 * 60)  # 13:25: p-0 and p-1 are past the margin
    assert ask(service, make_permit("p-2", expires="20261126235959")) is Reason.REPLAYED
    assert service.spent_permit_count == 1
    with service.engine.connect() as conn:
        rows = conn.execute(select(ims_used_permit.c.permit_id, ims_used_permit.c.expires_at))
        assert {r.permit_id: r.expires_at.strftime("%Y%m%d%H%M%S") for r in rows} == {
            "p-0": "20261126121000", "p-1": "20261126122000", "p-2": "20261126235959"}


def test_set_pending_blocks_and_clear_pending_does_not_unblock(
    service: IntermediateService,
) -> None:
    """A set request holds at once; a clear request keeps holding until another confirms it."""
    setup_person(service)
    flag = service.flag_request_set(ALICE, ATENA, (), "01", "20271231")
    assert ask(service, make_permit("p-1")) is Reason.HELD_FLAG
    with pytest.raises(SelfConfirmation):
        service.flag_confirm(ALICE, flag.flag_id)
    assert service.flag_confirm(BOB, flag.flag_id).state is FlagState.ACTIVE
    assert ask(service, make_permit("p-2")) is Reason.HELD_FLAG
    service.flag_request_clear(BOB, flag.flag_id)
    assert ask(service, make_permit("p-3")) is Reason.HELD_FLAG
    with pytest.raises(SelfConfirmation):
        service.flag_confirm(BOB, flag.flag_id)
    assert service.flag_confirm(ALICE, flag.flag_id).state is FlagState.CLEARED
    assert ask(service, make_permit("p-4")) is Reason.ANSWERED


def test_flag_scoped_to_one_kouban_holds_only_that_kouban(service: IntermediateService) -> None:
    """A flag on 項 1 holds 項 1 queries and lets 項 2 queries through."""
    setup_person(service)
    service.offer_permission_list(
        make_list(
            2,
            [
                PermissionEntry(REQUESTER, 1, frozenset({"shimei", "jusho"})),
                PermissionEntry(REQUESTER, 2, frozenset({"shimei", "jusho"})),
            ],
        ).to_bytes()
    )
    service.flag_request_set(ALICE, ATENA, (FlagScope(kouban=1),), "01", "20271231")
    assert ask(service, make_permit("p-1", kouban=1)) is Reason.HELD_FLAG
    assert ask(service, make_permit("p-2", kouban=2)) is Reason.ANSWERED


def test_release_sends_and_refuse_sends_nothing(service: IntermediateService) -> None:
    """A released held query reaches the requester sealed; a refused one carries no data."""
    setup_person(service)
    service.flag_request_set(ALICE, ATENA, (), "01", "20271231")
    held_result = decode_query_result(service.handle_queries([query_body(make_permit("p-1"))])[0])
    assert held_result.status is QueryStatus.HELD and held_result.sealed is None
    ask(service, make_permit("p-2"))
    held = service.held_list(BOB)
    assert len(held) == 2
    assert service.held_show(BOB, held[0].held_id).content == {
        "shimei": FUKUHON["shimei"],
        "jusho": FUKUHON["jusho"],
    }
    released_raw = service.held_release(BOB, held[0].held_id)
    released = decode_query_result(released_raw)
    assert released.status is QueryStatus.RELEASED
    assert open_answer(released, REQUESTER_KEY, PROVIDER)["jusho"] == FUKUHON["jusho"]
    refused_raw = service.held_refuse(BOB, held[1].held_id)
    refused = decode_query_result(refused_raw)
    assert refused.status is QueryStatus.WITHHELD and refused.sealed is None
    items = service.claim_deliveries("ipnw")
    assert [(i.msg_type, i.frame) for i in items] == [
        (0x0632, service_body) for service_body in (released_raw, refused_raw)
    ]
    assert service.claim_deliveries("ipnw") == []  # leased, not yet due again
    service.clock.advance(31)  # type: ignore[attr-defined]
    assert [i.seq for i in service.claim_deliveries("ipnw")] == [i.seq for i in items]  # resent
    assert service.acknowledge_deliveries(items[-1].seq) == 2
    assert service.pending_deliveries() == 0
    with pytest.raises(HeldQueryError):
        service.held_release(BOB, held[1].held_id)
    with pytest.raises(NotAuthorised):
        service.held_release(CAROL, held[0].held_id)
    outcomes = provision_outcomes(service)
    assert outcomes[-2:] == [("provided", "6204"), ("refused", "6203")]
    with service.engine.connect() as conn:
        actions = [a.action for a in list_audit(conn)]
        assert verify_chain(conn, keys=[AUDIT_KEY]).ok  # every operator action anchored
    assert actions.count("held.release") == 1 and actions.count("held.refuse") == 1
    assert "flags.request-set" in actions


def test_unreadable_flag_store_answers_nothing(service: IntermediateService) -> None:
    """With the flag table unreadable, every query is held, none answered."""
    setup_person(service)
    with service.engine.begin() as conn:
        conn.execute(text("ALTER TABLE ims_flag RENAME TO ims_flag_lost"))
    for i in range(5):
        assert ask(service, make_permit(f"p-{i}")) is Reason.HELD_FLAG_STORE


def test_fukuhon_import_reports_per_record_and_exports(service: IntermediateService) -> None:
    """fukuhon-juminhyo records are checked one by one by the codec; export gives them back."""
    from juki_gateway.codecs.errors import CodecError

    service.register_fugo(ATENA, FUGO)
    service.register_fugo("172014000000002", "h" * 32)
    bad_date = bytearray(fukuhon_record("172014000000002"))
    bad_date[109:117] = b"19801301"  # birth_date (offset in docs/wire-format.md)
    bad_sex = bytearray(fukuhon_record("172014000000002"))
    bad_sex[117:118] = b"7"
    body = fukuhon_record(ATENA) + fukuhon_record("172014000000999") + bad_date + bad_sex
    results = service.import_fukuhon(body, ALICE)
    assert results[0][2] is None and isinstance(results[1][2], FukuhonUnknownAtena)
    assert isinstance(results[2][2], CodecError) and results[2][2].code == "bad_date"
    assert isinstance(results[3][2], CodecError)
    assert [atena for _, atena, _ in results] == [
        ATENA,
        "172014000000999",
        *["172014000000002"] * 2,
    ]
    assert service.export_fukuhon(CAROL).data == fukuhon_record(ATENA)


def test_metrics_count_flags_and_held_without_identifiers(service: IntermediateService) -> None:
    """Gauges count flags and held queries by state; no sample label holds an 宛名番号."""
    setup_person(service)
    service.flag_request_set(ALICE, ATENA, (), "01", "20271231")
    ask(service, make_permit("p-1"))
    samples = [s for m in service.metrics.registry.collect() for s in m.samples]
    assert any(
        s.name == "juki_gateway_ims_flags" and s.labels["state"] == "set-pending" and s.value == 1
        for s in samples
    )
    assert any(
        s.name == "juki_gateway_ims_held_queries" and s.labels["state"] == "held" and s.value == 1
        for s in samples
    )
    assert all(ATENA not in str(s.labels) for s in samples)


def test_randomized_queries_never_auto_answer_a_flagged_person(
    service: IntermediateService,
) -> None:
    """10,000 random queries over 300 people, 60 flagged in various ways: no automatic answer about a flagged person."""
    rng = random.Random(20261126)
    items_all = ("shimei", "jusho", "seinengappi")
    service.offer_permission_list(
        make_list(
            1, [PermissionEntry(REQUESTER, k, frozenset(items_all)) for k in (1, 2, 3)]
        ).to_bytes()
    )
    people = [(f"{i + 1000:015d}", f"{i:032x}") for i in range(300)]
    body = b""
    for atena, fugo in people:
        service.register_fugo(atena, fugo)
        body += fukuhon_record(atena)
    service.import_fukuhon(body)
    # Oracle, kept by the test: which (person, 項番, item) a blocking flag covers.
    blocked: dict[str, list[FlagScope]] = {}
    for atena, _ in rng.sample(people, 60):
        scope = rng.choice(
            [
                (),
                (FlagScope(kouban=rng.choice((1, 2, 3))),),
                (FlagScope(item=rng.choice(items_all)),),
            ]
        )
        flag = service.flag_request_set(ALICE, atena, scope, "01", "20271231")
        fate = rng.random()
        if fate < 0.4:
            service.flag_confirm(BOB, flag.flag_id)
        elif fate < 0.6:
            service.flag_confirm(BOB, flag.flag_id)
            service.flag_request_clear(ALICE, flag.flag_id)  # pending clear: still blocks
        blocked[atena] = list(scope) or [FlagScope()]
    answered_flagged = answered = held = 0
    n = 0
    for _batch in range(100):
        bodies, asked = [], []
        for _ in range(100):
            atena, fugo = rng.choice(people)
            kouban = rng.choice((1, 2, 3))
            items = frozenset(rng.sample(items_all, rng.randint(1, 3)))
            n += 1
            permit = make_permit(f"r-{n}", fugo=fugo, kouban=kouban, items=items)
            bodies.append(query_body(permit))
            asked.append((atena, kouban, items))
        for raw, (atena, kouban, items) in zip(service.handle_queries(bodies), asked, strict=True):
            result = decode_query_result(raw)
            covered = any(s.matches(kouban, items) for s in blocked.get(atena, []))
            if result.status is QueryStatus.ANSWERED:
                answered += 1
                answered_flagged += covered
            else:
                assert result.status is QueryStatus.HELD and covered
                held += 1
    assert n == 10_000 and answered_flagged == 0
    assert held > 500 and answered > 5_000


def test_bad_requester_key_refuses_only_that_query(service: IntermediateService) -> None:
    """A permit whose requester key is not a P-256 point is refused; its batch-mates answered."""
    setup_person(service)
    bad = replace(make_permit("p-bad"), requester_key=b"\x04" + b"\x01" * 64)
    signed_bad = bad.signed(NETWORK_KEY)
    raw = service.handle_queries([query_body(signed_bad), query_body(make_permit("p-ok"))])
    reasons = [decode_query_result(r).reason for r in raw]
    assert reasons == [Reason.BAD_REQUESTER_KEY, Reason.ANSWERED]
    samples = {
        (s.name, s.labels.get("outcome")): s.value
        for m in service.metrics.registry.collect()
        for s in m.samples
    }
    assert samples[("juki_gateway_ims_queries_total", "answered")] == 1
    assert samples[("juki_gateway_ims_queries_total", "refused")] == 1
