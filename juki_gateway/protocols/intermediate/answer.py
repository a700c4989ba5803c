"""Building, sealing and opening an answer to an information query (R8, R11).

The answer holds exactly the permitted items of the person's 副本 (the others blank) in the
constant-length ``answer-items`` layout, sealed (HPKE, :mod:`.crypto`) to the requester's key
from the permit, bound to the permit id, provider and requester through HPKE's ``info``: the
``answer-info`` record (:func:`answer_info`). :func:`query_result_body` makes the
``query-result`` record for every status; only answered and released results carry a box.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from juki_gateway.protocols.intermediate import crypto
from juki_gateway.protocols.intermediate.decision import Reason
from juki_gateway.protocols.intermediate.items import (
    ANSWER_ITEMS_LAYOUT,
    items_to_mask,
    select_items,
)
from juki_gateway.protocols.intermediate.messages import (
    ANSWER_INFO_LAYOUT,
    QUERY_RESULT_LAYOUT,
    SEALED_ANSWER_LENGTH,
    QueryStatus,
)
from juki_gateway.protocols.intermediate.permit import Permit

_NO_BOX = bytes(SEALED_ANSWER_LENGTH)


def answer_plaintext(fukuhon: Mapping[str, str], items: frozenset[str]) -> bytes:
    """The answer-items record with exactly ``items`` of the 副本 filled in."""
    return ANSWER_ITEMS_LAYOUT.encode(select_items(fukuhon, items))


def answer_info(permit_id: str, provider: str, requester: str) -> bytes:
    """The HPKE ``info`` of an answer: the 79-byte ``answer-info`` record (domain ‖ permit id
    ‖ provider ‖ requester, each left-aligned and space-padded to its width)."""
    return ANSWER_INFO_LAYOUT.encode(
        {"permit_id": permit_id, "provider": provider, "requester": requester}
    )


def seal_answer(
    permit: Permit, plaintext: bytes, recipient: ec.EllipticCurvePublicKey | None = None
) -> bytes:
    """Seal an answer to the requester key named in the permit (``recipient``: that key, when
    the caller already loaded it); every box has its own ephemeral key."""
    key = recipient if recipient is not None else crypto.load_public_key(permit.requester_key)
    return crypto.seal(key, plaintext, answer_info(permit.permit_id, permit.provider,
                                                   permit.requester))


def query_result_body(
    permit: Permit, status: QueryStatus, reason: Reason, sealed: bytes | None = None
) -> bytes:
    """The ``query-result`` record; a box only for answered and released results."""
    if (status in (QueryStatus.ANSWERED, QueryStatus.RELEASED)) != (sealed is not None):
        raise ValueError("only answered and released results carry a sealed answer")
    return QUERY_RESULT_LAYOUT.encode(
        {
            "permit_id": permit.permit_id,
            "requester": permit.requester,
            "status": str(int(status)),
            "reason_code": f"{reason.wire_code:04d}",
            "items": items_to_mask(permit.items) if sealed is not None else "0" * 16,
            "sealed": sealed if sealed is not None else _NO_BOX,
        }
    )


@dataclass(frozen=True, slots=True)
class QueryResult:
    """A decoded query result; ``items`` only when the requester opened the box."""

    permit_id: str
    requester: str
    status: QueryStatus
    reason: Reason
    sealed: bytes | None
    items: dict[str, str] | None = None


def decode_query_result(body: bytes) -> QueryResult:
    """A query result from its record (the box left sealed)."""
    values = QUERY_RESULT_LAYOUT.decode(body)
    status = QueryStatus(int(values["status"]))
    sealed: bytes = values["sealed"]
    return QueryResult(
        permit_id=values["permit_id"],
        requester=values["requester"],
        status=status,
        reason=Reason.from_wire(int(values["reason_code"])),
        sealed=sealed if status in (QueryStatus.ANSWERED, QueryStatus.RELEASED) else None,
    )


def open_answer(
    result: QueryResult, key: ec.EllipticCurvePrivateKey, provider: str
) -> dict[str, str]:
    """The requester's side: open the box and return the items it holds (blank ones left out)."""
    if result.sealed is None:
        raise ValueError(f"a {result.status.name} result carries no answer")
    plain = crypto.open_sealed(
        key, result.sealed, answer_info(result.permit_id, provider, result.requester)
    )
    values = ANSWER_ITEMS_LAYOUT.decode(plain)
    return {k: v for k, v in values.items() if v is not None}
