"""The query decision's fixed check order and the flag two-person rule, as pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from juki_gateway.protocols.intermediate.decision import (
    CHECK_ORDER,
    DecisionContext,
    InfoQuery,
    Outcome,
    Reason,
    decide_query,
)
from juki_gateway.protocols.intermediate.errors import (
    FlagInvalid,
    FlagRequestConflict,
    NothingToConfirm,
    SelfConfirmation,
)
from juki_gateway.protocols.intermediate.flags import (
    Flag,
    FlagAction,
    FlagScope,
    FlagState,
    apply_action,
    request_set,
)
from juki_gateway.protocols.intermediate.permit import Permit

from .helpers import NETWORK_KEY, NOW, PROVIDER, make_list, make_permit

FUGO = "f" * 32
ATENA = "172014000000001"


def query_for(permit: Permit) -> InfoQuery:
    """The query that exactly matches its permit."""
    return InfoQuery(permit.fugo, permit.kouban, permit.items, permit.requester, permit)


def ctx(
    *,
    used: frozenset[str] = frozenset(),
    flags: Sequence[Flag] = (),
    known: bool = True,
    flag_error: bool = False,
    with_list: bool = True,
) -> DecisionContext:
    """A decision context over small in-memory lookups."""

    def flags_for(atena: str) -> Sequence[Flag]:
        if flag_error:
            raise OSError("disk unreadable")
        return [f for f in flags if f.atena_no == atena]

    return DecisionContext(
        network_key=NETWORK_KEY.public_key(),
        provider_id=PROVIDER,
        now=NOW,
        permit_used=lambda pid: pid in used,
        permission_list=make_list(1) if with_list else None,
        atena_for_fugo=lambda fugo: ATENA if known and fugo == FUGO else None,
        flags_for_atena=flags_for,
    )


def flag(state: FlagState = FlagState.ACTIVE, scopes: tuple[FlagScope, ...] = ()) -> Flag:
    """A flag on ATENA in ``state``."""
    base = request_set("fl-1", ATENA, scopes, "01", "20271231", "op-alice", NOW)
    return replace(base, state=state)


def test_valid_query_is_answered() -> None:
    """A correct, unflagged query is answered and spends its permit."""
    d = decide_query(query_for(make_permit()), ctx())
    assert d.outcome is Outcome.ANSWERED and d.atena_no == ATENA and d.consumes_permit


@pytest.mark.parametrize(
    ("permit", "context", "reason"),
    [
        (make_permit(key=ec.generate_private_key(ec.SECP256R1())), ctx(), Reason.BAD_SIGNATURE),
        (make_permit(expires="20261126115959"), ctx(), Reason.EXPIRED),
        (make_permit(issued="20261126120001"), ctx(), Reason.EXPIRED),
        (make_permit("p-used"), ctx(used=frozenset({"p-used"})), Reason.REPLAYED),
        (make_permit(provider="ims-131016"), ctx(), Reason.WRONG_PROVIDER),
        (make_permit(items=("seibetsu",)), ctx(), Reason.NOT_PERMITTED),
        (make_permit(kouban=2), ctx(), Reason.NOT_PERMITTED),
        (make_permit(), ctx(with_list=False), Reason.NO_PERMISSION_LIST),
        (make_permit(fugo="g" * 32), ctx(), Reason.UNKNOWN_FUGO),
    ],
)
def test_each_refusal_has_its_reason(
    permit: Permit, context: DecisionContext, reason: Reason
) -> None:
    """Each failing check refuses with its own reason and wire code."""
    d = decide_query(query_for(permit), context)
    assert d.reason is reason and d.outcome is Outcome.REFUSED


def test_checks_run_in_the_prescribed_order() -> None:
    """A query failing every check is refused for the first one: signature, then binding …"""
    assert [name for name, _ in CHECK_ORDER] == [
        "signature",
        "permit-binding",
        "expiry",
        "replay",
        "provider",
        "permission-list",
    ]
    bad_everything = make_permit(
        "p-used",
        expires="20200101000000",
        provider="x",
        items=("seibetsu",),
        key=ec.generate_private_key(ec.SECP256R1()),
    )
    context = ctx(used=frozenset({"p-used"}))
    assert decide_query(query_for(bad_everything), context).reason is Reason.BAD_SIGNATURE
    good_sig = make_permit("p-used", expires="20200101000000", provider="x", items=("seibetsu",))
    assert decide_query(query_for(good_sig), context).reason is Reason.EXPIRED
    replayed = make_permit("p-used", provider="x", items=("seibetsu",))
    d = decide_query(query_for(replayed), context)
    assert d.reason is Reason.REPLAYED and not d.consumes_permit
    assert (
        decide_query(query_for(make_permit(provider="x", items=("seibetsu",))), context).reason
        is Reason.WRONG_PROVIDER
    )


def test_query_that_differs_from_its_permit_is_refused() -> None:
    """Asking for more items, another 符号 or another route than the permit says is refused."""
    permit = make_permit()
    for q in (
        replace(query_for(permit), items=frozenset({"shimei", "jusho", "seinengappi"})),
        replace(query_for(permit), fugo="g" * 32),
        replace(query_for(permit), route="someone-else"),
        replace(query_for(permit), kouban=2),
    ):
        assert decide_query(q, ctx()).reason is Reason.PERMIT_MISMATCH


def test_bad_signature_does_not_spend_the_permit_id() -> None:
    """A forged permit cannot burn a genuine permit id."""
    forged = make_permit("p-x", key=ec.generate_private_key(ec.SECP256R1()))
    assert not decide_query(query_for(forged), ctx()).consumes_permit


@pytest.mark.parametrize(
    "state", [FlagState.SET_PENDING, FlagState.ACTIVE, FlagState.CLEAR_PENDING]
)
def test_blocking_flag_states_hold(state: FlagState) -> None:
    """Pending set, active and pending clear all hold the query."""
    d = decide_query(query_for(make_permit()), ctx(flags=[flag(state)]))
    assert d.outcome is Outcome.HELD and d.reason is Reason.HELD_FLAG and d.flag_ids == ("fl-1",)


def test_cleared_flag_does_not_hold() -> None:
    """Only a confirmed clear stops a flag from holding queries."""
    d = decide_query(query_for(make_permit()), ctx(flags=[flag(FlagState.CLEARED)]))
    assert d.outcome is Outcome.ANSWERED


def test_scoped_flag_holds_only_its_scope() -> None:
    """A flag scoped to 項 1 holds 項 1 queries only; one scoped to an item holds only that item."""
    by_kouban = flag(scopes=(FlagScope(kouban=1),))
    assert decide_query(query_for(make_permit()), ctx(flags=[by_kouban])).outcome is Outcome.HELD
    by_item = flag(scopes=(FlagScope(item="jusho"),))
    assert (
        decide_query(query_for(make_permit(items=("jusho",))), ctx(flags=[by_item])).outcome
        is Outcome.HELD
    )
    assert (
        decide_query(query_for(make_permit(items=("shimei",))), ctx(flags=[by_item])).outcome
        is Outcome.ANSWERED
    )
    other_kouban = flag(scopes=(FlagScope(kouban=2),))
    assert (
        decide_query(query_for(make_permit()), ctx(flags=[other_kouban])).outcome
        is Outcome.ANSWERED
    )


def test_unreadable_flag_store_holds_everything() -> None:
    """If flags cannot be read, the query is held, never answered."""
    d = decide_query(query_for(make_permit()), ctx(flag_error=True))
    assert d.outcome is Outcome.HELD and d.reason is Reason.HELD_FLAG_STORE


def test_two_person_rule_for_set_and_clear() -> None:
    """Set needs a second operator; clear too; each requester is refused as confirmer."""
    f = request_set("fl-2", ATENA, (), "01", "20271231", "op-alice", NOW)
    assert f.state is FlagState.SET_PENDING and f.blocking
    with pytest.raises(SelfConfirmation):
        apply_action(f, FlagAction.CONFIRM, "op-alice", NOW)
    f = apply_action(f, FlagAction.CONFIRM, "op-bob", NOW)
    assert f.state is FlagState.ACTIVE and f.confirmed_by == "op-bob"
    with pytest.raises(NothingToConfirm):
        apply_action(f, FlagAction.CONFIRM, "op-carol", NOW)
    f = apply_action(f, FlagAction.REQUEST_CLEAR, "op-bob", NOW)
    assert f.state is FlagState.CLEAR_PENDING and f.blocking
    with pytest.raises(FlagRequestConflict):
        apply_action(f, FlagAction.REQUEST_CLEAR, "op-alice", NOW)
    with pytest.raises(SelfConfirmation):
        apply_action(f, FlagAction.CONFIRM, "op-bob", NOW)
    f = apply_action(f, FlagAction.CONFIRM, "op-alice", NOW)
    assert f.state is FlagState.CLEARED and not f.blocking


def test_flag_requests_are_validated() -> None:
    """Bad reason codes, past review dates, unknown 項番 and items are refused."""
    with pytest.raises(FlagInvalid):
        request_set("x", ATENA, (), "x1", "20271231", "op-alice", NOW)
    with pytest.raises(FlagInvalid):
        request_set("x", ATENA, (), "01", "20200101", "op-alice", NOW)
    with pytest.raises(FlagInvalid):
        FlagScope.from_text("4:*")
    with pytest.raises(FlagInvalid):
        FlagScope.from_text("*:kojin_bango")
    assert FlagScope.from_text("1:jusho") == FlagScope(1, "jusho")
    assert FlagScope.from_text("*:jusho").to_text() == "*:jusho"
