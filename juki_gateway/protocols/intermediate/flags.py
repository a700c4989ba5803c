"""Auto-response-block flags (自動応答不可フラグ, R7) and their two-person rule, pure.

A flag is on a 団体内統合宛名番号 (``atena_no``), for all items (no scopes) or for listed scopes
(a 項番, an item, or both), with a reason code and a review date. Its life is one transition
table (:data:`TRANSITIONS`): operator A *requests* a set or a clear, a different operator B
*confirms*. Fail-closed by construction:

* a set request blocks at once (``set-pending`` blocks), before anyone confirms it;
* a clear request does not unblock (``clear-pending`` still blocks); only a confirmed clear
  (``cleared``) stops blocking;
* the operator who made the pending request can never confirm it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from juki_gateway.codecs.layouts import ATENA_NO_WIDTH, is_atena_no
from juki_gateway.protocols.intermediate.errors import (
    FlagInvalid,
    FlagRequestConflict,
    NothingToConfirm,
    SelfConfirmation,
)
from juki_gateway.protocols.intermediate.items import ITEMS_BY_KEY
from juki_gateway.protocols.intermediate.kouban import KOUBAN_NUMBERS


class FlagState(StrEnum):
    """Where a flag is in its two-person life."""

    SET_PENDING = "set-pending"
    ACTIVE = "active"
    CLEAR_PENDING = "clear-pending"
    CLEARED = "cleared"


class FlagAction(StrEnum):
    """What an operator does to a flag."""

    REQUEST_CLEAR = "request-clear"
    CONFIRM = "confirm"


#: Every state that blocks automatic answers: all but a confirmed clear.
BLOCKING_STATES: frozenset[FlagState] = frozenset(
    {FlagState.SET_PENDING, FlagState.ACTIVE, FlagState.CLEAR_PENDING}
)

#: (state, action) -> next state. A set request creates a flag in ``set-pending``.
TRANSITIONS: dict[tuple[FlagState, FlagAction], FlagState] = {
    (FlagState.SET_PENDING, FlagAction.CONFIRM): FlagState.ACTIVE,
    (FlagState.SET_PENDING, FlagAction.REQUEST_CLEAR): FlagState.CLEAR_PENDING,
    (FlagState.ACTIVE, FlagAction.REQUEST_CLEAR): FlagState.CLEAR_PENDING,
    (FlagState.CLEAR_PENDING, FlagAction.CONFIRM): FlagState.CLEARED,
}

_REASON = re.compile(r"\d{2,4}")
_DATE = re.compile(r"\d{8}")


@dataclass(frozen=True, slots=True)
class FlagScope:
    """What a scoped flag covers: a 項番, an item, or an item under one 項番."""

    kouban: int | None = None
    item: str | None = None

    def matches(self, kouban: int, items: frozenset[str]) -> bool:
        """Whether a query under ``kouban`` for ``items`` falls in this scope."""
        return (self.kouban is None or self.kouban == kouban) and (
            self.item is None or self.item in items
        )

    def to_text(self) -> str:
        """``項番:item`` with ``*`` for any (the CLI and store form)."""
        return f"{self.kouban if self.kouban is not None else '*'}:{self.item or '*'}"

    @classmethod
    def from_text(cls, text: str) -> FlagScope:
        """Parse ``項番:item`` (either may be ``*``; a bare number is a 項番)."""
        kouban_text, _, item_text = text.partition(":")
        item_text = item_text or "*"
        try:
            kouban = None if kouban_text in ("", "*") else int(kouban_text)
        except ValueError:
            raise FlagInvalid(f"flag scope {text!r}: 項番 must be a number or *") from None
        scope = cls(kouban, None if item_text == "*" else item_text)
        scope.validate()
        return scope

    def validate(self) -> None:
        """Refuse a scope naming an unknown 項番 or item, or covering nothing narrower than all."""
        if self.kouban is not None and self.kouban not in KOUBAN_NUMBERS:
            raise FlagInvalid(f"flag scope names 項 {self.kouban}, which is not provided here")
        if self.item is not None and self.item not in ITEMS_BY_KEY:
            raise FlagInvalid(f"flag scope names unknown item {self.item!r}")


@dataclass(frozen=True, slots=True)
class Flag:
    """One auto-response-block flag and who did what to it."""

    flag_id: str
    atena_no: str
    scopes: tuple[FlagScope, ...]  # empty: every item under every 項番
    reason_code: str
    review_date: str
    state: FlagState
    requested_by: str
    requested_at: str
    confirmed_by: str | None = None
    confirmed_at: str | None = None
    clear_requested_by: str | None = None
    clear_requested_at: str | None = None
    cleared_by: str | None = None
    cleared_at: str | None = None
    #: 併せて支援を求める者: household members named in the same request, covered by this flag
    accompanying: tuple[str, ...] = ()

    @property
    def subjects(self) -> tuple[str, ...]:
        """Everyone this flag covers: the person it is on, then the accompanying members."""
        return (self.atena_no, *self.accompanying)

    @property
    def blocking(self) -> bool:
        """Whether this flag currently blocks automatic answers."""
        return self.state in BLOCKING_STATES

    def applies_to(self, kouban: int, items: frozenset[str]) -> bool:
        """Whether this flag blocks a query under ``kouban`` for ``items``."""
        if not self.blocking:
            return False
        return not self.scopes or any(s.matches(kouban, items) for s in self.scopes)

    @property
    def pending_operator(self) -> str | None:
        """The operator whose request awaits confirmation, if any."""
        if self.state is FlagState.SET_PENDING:
            return self.requested_by
        if self.state is FlagState.CLEAR_PENDING:
            return self.clear_requested_by
        return None


def request_set(
    flag_id: str,
    atena_no: str,
    scopes: Iterable[FlagScope],
    reason_code: str,
    review_date: str,
    operator: str,
    now: str,
    accompanying: Iterable[str] = (),
) -> Flag:
    """A new flag in ``set-pending``: it blocks from this moment, before confirmation.

    ``accompanying`` names 併せて支援を求める者 (household members the victim asks to protect
    in the same request): the flag covers them too, with the same scopes and life.
    """
    scopes = tuple(scopes)
    for scope in scopes:
        scope.validate()
    members = tuple(accompanying)
    for n, atena in enumerate((atena_no, *members)):
        if not is_atena_no(atena):
            # the value is not echoed: a mistyped number may be most of a person's real one
            who = "the person flagged" if n == 0 else f"accompanying person {n}"
            raise FlagInvalid(f"団体内統合宛名番号 of {who} is not {ATENA_NO_WIDTH} digits")
    if len(set(members)) != len(members) or atena_no in members:
        raise FlagInvalid("an accompanying person is named twice, or is the person flagged")
    if not _REASON.fullmatch(reason_code):
        raise FlagInvalid(f"reason code {reason_code!r} must be 2-4 digits")
    if not _DATE.fullmatch(review_date) or review_date < now[:8]:
        raise FlagInvalid(f"review date {review_date!r} must be YYYYMMDD, today or later")
    if not operator:
        raise FlagInvalid("a flag request needs an operator")
    return Flag(
        flag_id, atena_no, scopes, reason_code, review_date, FlagState.SET_PENDING, operator, now,
        accompanying=members,
    )


def apply_action(flag: Flag, action: FlagAction, operator: str, now: str) -> Flag:
    """The flag after ``operator`` does ``action``, per :data:`TRANSITIONS` and the 2-person rule."""
    target = TRANSITIONS.get((flag.state, action))
    if target is None:
        if action is FlagAction.CONFIRM:
            raise NothingToConfirm(f"flag {flag.flag_id} ({flag.state}) has nothing to confirm")
        raise FlagRequestConflict(f"flag {flag.flag_id} is {flag.state}: cannot {action}")
    if action is FlagAction.CONFIRM:
        if operator == flag.pending_operator:
            raise SelfConfirmation(
                f"operator {operator} requested this change to flag {flag.flag_id} and cannot "
                "confirm it: a different operator must"
            )
        if target is FlagState.ACTIVE:
            return replace(flag, state=target, confirmed_by=operator, confirmed_at=now)
        return replace(flag, state=target, cleared_by=operator, cleared_at=now)
    return replace(flag, state=target, clear_requested_by=operator, clear_requested_at=now)


def blocking_flags(flags: Iterable[Flag], kouban: int, items: frozenset[str]) -> tuple[Flag, ...]:
    """The flags among ``flags`` that block a query under ``kouban`` for ``items``."""
    return tuple(f for f in flags if f.applies_to(kouban, items))
