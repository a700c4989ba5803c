"""The 情報提供許可証 (provision permit): its fields, canonical bytes and signature.

A permit says that ``requester`` may receive ``items`` about the person with ``fugo`` from
``provider`` under 主務省令第2条 項 ``kouban`` between ``issued`` and ``expires`` (14-digit UTC
timestamps), and carries the requester's P-256 encryption key (the route information the answer
is sealed to). It is signed by the information provision network's key over
``PERMIT_DOMAIN ‖ canonical bytes``, where the canonical bytes are the fixed-width
``permit-unsigned`` layout; the wire form appends the 64-byte raw signature.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec

from juki_gateway.protocols.intermediate import crypto
from juki_gateway.protocols.intermediate.items import items_to_mask, mask_to_items
from juki_gateway.protocols.intermediate.messages import (
    PERMIT_LAYOUT,
    PERMIT_UNSIGNED_LAYOUT,
)

PERMIT_DOMAIN = b"JKGW permit v1\x00"

#: How long a spent permit id is remembered once its permit has expired. The decision checks
#: expiry before replay, so an expired permit is refused as ``permit_expired`` whether or not
#: its id is remembered; the margin only covers a server clock stepped back by less than this.
SPENT_ID_GRACE = dt.timedelta(hours=1)


def timestamp14(value: str) -> dt.datetime:
    """A 14-digit UTC timestamp (``YYYYMMDDhhmmss``) as a naive UTC datetime (ValueError when
    it is not one; slicing is five times faster than ``strptime``, once per query)."""
    if len(value) != 14 or not (value.isascii() and value.isdigit()):
        raise ValueError(f"not a 14-digit timestamp: {value!r}")
    v = value
    return dt.datetime(int(v[:4]), int(v[4:6]), int(v[6:8]), int(v[8:10]), int(v[10:12]),
                       int(v[12:]))


@dataclass(frozen=True, slots=True)
class Permit:
    """A provision permit (signature may be empty before signing)."""

    permit_id: str
    requester: str
    provider: str
    kouban: int
    items: frozenset[str]
    fugo: str
    issued: str
    expires: str
    requester_key: bytes
    signature: bytes = b""
    #: the wire bytes this permit was decoded from (they decode to exactly these fields);
    #: not an init field, so ``dataclasses.replace`` never carries stale bytes to new values
    wire: bytes = field(default=b"", init=False, repr=False, compare=False)

    @property
    def expires_at(self) -> dt.datetime:
        """``expires`` as a naive UTC datetime (how the store keeps it)."""
        return timestamp14(self.expires)

    def canonical_bytes(self) -> bytes:
        """The bytes the network signs: the fixed-width unsigned layout."""
        if self.wire:
            return self.wire[: PERMIT_UNSIGNED_LAYOUT.length]
        return PERMIT_UNSIGNED_LAYOUT.encode(self._fields())

    def _fields(self) -> dict[str, str | bytes]:
        return {
            "permit_id": self.permit_id,
            "requester": self.requester,
            "provider": self.provider,
            "kouban": f"{self.kouban:03d}",
            "items": items_to_mask(self.items),
            "fugo": self.fugo,
            "issued": self.issued,
            "expires": self.expires,
            "requester_key": self.requester_key,
        }

    def to_bytes(self) -> bytes:
        """The wire form: canonical bytes followed by the 64-byte signature."""
        if self.wire:
            return self.wire
        return PERMIT_LAYOUT.encode({**self._fields(), "signature": self.signature})

    def signed(self, network_key: ec.EllipticCurvePrivateKey) -> Permit:
        """This permit signed by the network's key (used by the ipnw simulator)."""
        sig = crypto.sign(network_key, PERMIT_DOMAIN, self.canonical_bytes())
        return Permit(
            self.permit_id,
            self.requester,
            self.provider,
            self.kouban,
            self.items,
            self.fugo,
            self.issued,
            self.expires,
            self.requester_key,
            sig,
        )

    def signature_valid(self, network_key: ec.EllipticCurvePublicKey) -> bool:
        """Whether the permit is signed by ``network_key`` (any failure is False)."""
        try:
            data = self.canonical_bytes()
        except Exception:
            return False
        return crypto.verify(network_key, PERMIT_DOMAIN, data, self.signature)


def decode_permit(data: bytes) -> Permit:
    """A permit from its wire form (layout-checked; the signature is not verified here)."""
    values = PERMIT_LAYOUT.decode(data)
    permit = Permit(
        permit_id=values["permit_id"],
        requester=values["requester"],
        provider=values["provider"],
        kouban=int(values["kouban"]),
        items=mask_to_items(values["items"]),
        fugo=values["fugo"],
        issued=values["issued"],
        expires=values["expires"],
        requester_key=values["requester_key"],
        signature=values["signature"],
    )
    object.__setattr__(permit, "wire", data)
    return permit
