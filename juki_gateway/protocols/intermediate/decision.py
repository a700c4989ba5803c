"""The information-query decision (R7, R8): one pure function, checks in one fixed order.

:data:`CHECK_ORDER` is the order, and :func:`decide_query` runs it; the first failing check
decides. Each refusal has its own :class:`Reason` (code and 4-digit wire code sent to the
requester). Fail-closed: any exception while reading flags holds the query (nothing is answered
automatically), and a missing permission list refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum

from cryptography.hazmat.primitives.asymmetric import ec

from juki_gateway.protocols.intermediate.flags import Flag, blocking_flags
from juki_gateway.protocols.intermediate.permission_list import PermissionList
from juki_gateway.protocols.intermediate.permit import Permit


class Outcome(StrEnum):
    """What happens to a query."""

    ANSWERED = "answered"
    HELD = "held"
    REFUSED = "refused"


class Reason(Enum):
    """Every outcome reason: (code, wire code, outcome, explanation)."""

    ANSWERED = ("answered", 0, Outcome.ANSWERED, "answered automatically")
    BAD_SIGNATURE = (
        "permit_bad_signature",
        6101,
        Outcome.REFUSED,
        "permit not signed by the network",
    )
    PERMIT_MISMATCH = ("permit_mismatch", 6102, Outcome.REFUSED, "query differs from its permit")
    EXPIRED = ("permit_expired", 6103, Outcome.REFUSED, "permit expired or not yet valid")
    REPLAYED = ("permit_replayed", 6104, Outcome.REFUSED, "permit id already used")
    WRONG_PROVIDER = ("wrong_provider", 6105, Outcome.REFUSED, "permit names another provider")
    NO_PERMISSION_LIST = ("no_permission_list", 6106, Outcome.REFUSED, "no valid permission list")
    NOT_PERMITTED = ("not_on_permission_list", 6107, Outcome.REFUSED, "not on the permission list")
    UNKNOWN_FUGO = ("unknown_fugo", 6108, Outcome.REFUSED, "符号 unknown here")
    NO_FUKUHON = ("no_fukuhon", 6109, Outcome.REFUSED, "no 副本 for this person")
    BAD_REQUESTER_KEY = (
        "permit_bad_requester_key",
        6110,
        Outcome.REFUSED,
        "the permit's requester key is not a valid P-256 key",
    )
    HELD_FLAG = ("held_flag", 6201, Outcome.HELD, "auto-response-block flag: held for review")
    HELD_FLAG_STORE = (
        "held_flag_store_unavailable",
        6202,
        Outcome.HELD,
        "flag store unreadable: held for review",
    )
    WITHHELD = ("withheld_by_operator", 6203, Outcome.REFUSED, "refused after review (不開示)")
    RELEASED = ("released_by_operator", 6204, Outcome.ANSWERED, "answered after review")

    def __init__(self, code: str, wire_code: int, outcome: Outcome, text: str) -> None:
        self.code = code
        self.wire_code = wire_code
        self.outcome = outcome
        self.text = text

    @classmethod
    def from_wire(cls, wire_code: int) -> Reason:
        """The reason with this wire code."""
        for reason in cls:
            if reason.wire_code == wire_code:
                return reason
        raise ValueError(f"no reason has wire code {wire_code}")


@dataclass(frozen=True, slots=True)
class InfoQuery:
    """An information query as delivered by ipnw."""

    fugo: str
    kouban: int
    items: frozenset[str]
    route: str
    permit: Permit


@dataclass(frozen=True, slots=True)
class DecisionContext:
    """What the decision reads; the callables are the store's, the key is loaded once."""

    network_key: ec.EllipticCurvePublicKey
    provider_id: str
    now: str  # 14-digit UTC timestamp
    permit_used: Callable[[str], bool]
    permission_list: PermissionList | None
    atena_for_fugo: Callable[[str], str | None]
    flags_for_atena: Callable[[str], Sequence[Flag]]


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome, its reason, the person (when known) and the flags that held it."""

    reason: Reason
    atena_no: str | None = None
    flag_ids: tuple[str, ...] = ()
    consumes_permit: bool = False  # the permit id is spent (authentic and not replayed)

    @property
    def outcome(self) -> Outcome:
        """Answered, held or refused."""
        return self.reason.outcome


def _signature(q: InfoQuery, ctx: DecisionContext) -> Reason | None:
    return None if q.permit.signature_valid(ctx.network_key) else Reason.BAD_SIGNATURE


def _binding(q: InfoQuery, ctx: DecisionContext) -> Reason | None:
    p = q.permit
    same = (p.fugo, p.kouban, p.items, p.requester) == (q.fugo, q.kouban, q.items, q.route)
    return None if same else Reason.PERMIT_MISMATCH


def _expiry(q: InfoQuery, ctx: DecisionContext) -> Reason | None:
    return None if q.permit.issued <= ctx.now < q.permit.expires else Reason.EXPIRED


def _replay(q: InfoQuery, ctx: DecisionContext) -> Reason | None:
    return Reason.REPLAYED if ctx.permit_used(q.permit.permit_id) else None


def _provider(q: InfoQuery, ctx: DecisionContext) -> Reason | None:
    return None if q.permit.provider == ctx.provider_id else Reason.WRONG_PROVIDER


def _permission_list(q: InfoQuery, ctx: DecisionContext) -> Reason | None:
    if ctx.permission_list is None:
        return Reason.NO_PERMISSION_LIST
    if ctx.permission_list.permits(q.permit.requester, q.kouban, q.items):
        return None
    return Reason.NOT_PERMITTED


Check = Callable[[InfoQuery, DecisionContext], "Reason | None"]

#: The checks before the person is looked up, in the order R8 prescribes.
CHECK_ORDER: tuple[tuple[str, Check], ...] = (
    ("signature", _signature),
    ("permit-binding", _binding),
    ("expiry", _expiry),
    ("replay", _replay),
    ("provider", _provider),
    ("permission-list", _permission_list),
)
_SPENDS_PERMIT_AFTER = "replay"


def decide_query(q: InfoQuery, ctx: DecisionContext) -> Decision:
    """Decide a query: the first failing check refuses; then 符号, then the flag check."""
    spent = False
    for name, check in CHECK_ORDER:
        reason = check(q, ctx)
        if reason is not None:
            return Decision(reason, consumes_permit=spent)
        if name == _SPENDS_PERMIT_AFTER:
            spent = True
    atena_no = ctx.atena_for_fugo(q.fugo)
    if atena_no is None:
        return Decision(Reason.UNKNOWN_FUGO, consumes_permit=True)
    try:
        flags = list(ctx.flags_for_atena(atena_no))
        holding = blocking_flags(flags, q.kouban, q.items)
    except Exception:  # fail-closed: whatever went wrong reading flags, hold
        return Decision(Reason.HELD_FLAG_STORE, atena_no, consumes_permit=True)
    if holding:
        return Decision(
            Reason.HELD_FLAG, atena_no, tuple(f.flag_id for f in holding), consumes_permit=True
        )
    return Decision(Reason.ANSWERED, atena_no, consumes_permit=True)
