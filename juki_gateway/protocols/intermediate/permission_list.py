"""The 照会許可照会リスト (query-permission list) as signed, versioned master data.

ipnw distributes the list: which requester may receive which items under which 主務省令第2条 項.
Wire form (a byte body): a ``permission-list-header`` record (``version``, ``issued``,
``entry_count``), ``entry_count`` ``permission-list-entry`` records (``requester``, ``kouban``,
``items`` mask) — codec layouts defined in :mod:`.messages` — then the network's 64-byte
signature over ``PERMISSION_LIST_DOMAIN ‖ everything before it``. :class:`PermissionListHolder` keeps the newest
valid version and refuses an older, equal or badly signed one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec

from juki_gateway.protocols.intermediate import crypto
from juki_gateway.protocols.intermediate.errors import (
    FukuhonFieldInvalid,
    MalformedMessage,
    PermissionListBadSignature,
    PermissionListMalformed,
    PermissionListStale,
)
from juki_gateway.protocols.intermediate.items import (
    items_to_mask,
    mask_to_items,
)
from juki_gateway.protocols.intermediate.kouban import KOUBAN_NUMBERS
from juki_gateway.protocols.intermediate.messages import (
    PERMISSION_LIST_ENTRY_LAYOUT,
    PERMISSION_LIST_HEADER_LAYOUT,
)

PERMISSION_LIST_DOMAIN = b"JKGW permission-list v1\x00"
@dataclass(frozen=True, slots=True)
class PermissionEntry:
    """One row: ``requester`` may receive ``items`` under 項 ``kouban``."""

    requester: str
    kouban: int
    items: frozenset[str]


@dataclass(frozen=True, slots=True)
class PermissionList:
    """A version of the permission list (signature empty before signing)."""

    version: int
    issued: str
    entries: tuple[PermissionEntry, ...]
    signature: bytes = b""
    _index: dict[tuple[str, int], frozenset[str]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        index: dict[tuple[str, int], frozenset[str]] = {}
        for e in self.entries:
            index[(e.requester, e.kouban)] = (
                index.get((e.requester, e.kouban), frozenset()) | e.items
            )
        object.__setattr__(self, "_index", index)

    def canonical_bytes(self) -> bytes:
        """The bytes the network signs."""
        head = PERMISSION_LIST_HEADER_LAYOUT.encode(
            {"version": self.version, "issued": self.issued, "entry_count": len(self.entries)}
        )
        rows = b"".join(
            PERMISSION_LIST_ENTRY_LAYOUT.encode(
                {
                    "requester": e.requester,
                    "kouban": f"{e.kouban:03d}",
                    "items": items_to_mask(e.items),
                }
            )
            for e in self.entries
        )
        return head + rows

    def to_bytes(self) -> bytes:
        """The wire form: canonical bytes followed by the signature."""
        return self.canonical_bytes() + self.signature

    def signed(self, network_key: ec.EllipticCurvePrivateKey) -> PermissionList:
        """This version signed by the network's key (used by the ipnw simulator)."""
        sig = crypto.sign(network_key, PERMISSION_LIST_DOMAIN, self.canonical_bytes())
        return PermissionList(self.version, self.issued, self.entries, sig)

    def permits(self, requester: str, kouban: int, items: frozenset[str]) -> bool:
        """Whether ``requester`` may receive all of ``items`` under 項 ``kouban``."""
        allowed: dict[tuple[str, int], frozenset[str]] = self._index
        granted = allowed.get((requester, kouban))
        return granted is not None and bool(items) and items <= granted


def decode_permission_list(data: bytes) -> PermissionList:
    """A permission list from its wire form (layout-checked, signature not yet verified)."""
    head_length = PERMISSION_LIST_HEADER_LAYOUT.length
    try:
        head = PERMISSION_LIST_HEADER_LAYOUT.decode(data[:head_length])
        count = int(head["entry_count"])
        end = head_length + count * PERMISSION_LIST_ENTRY_LAYOUT.length
        if len(data) != end + crypto.SIGNATURE_LENGTH:
            raise PermissionListMalformed(
                f"permission list of {count} entries needs {end + crypto.SIGNATURE_LENGTH} "
                f"bytes, got {len(data)}"
            )
        entries = []
        for row in PERMISSION_LIST_ENTRY_LAYOUT.decode_many(data[head_length:end]):
            kouban = int(row["kouban"])
            if kouban not in KOUBAN_NUMBERS:
                raise PermissionListMalformed(
                    f"permission list names 項 {kouban}, which is not a row this "
                    "municipality provides under (主務省令第2条)"
                )
            entries.append(PermissionEntry(row["requester"], kouban, mask_to_items(row["items"])))
    except (MalformedMessage, FukuhonFieldInvalid) as exc:
        raise PermissionListMalformed(f"permission list malformed: {exc.message}") from None
    return PermissionList(int(head["version"]), head["issued"], tuple(entries), data[end:])


class PermissionListHolder:
    """Keeps the newest validly signed permission list; pure (the caller persists it)."""

    def __init__(
        self, network_key: ec.EllipticCurvePublicKey, current: PermissionList | None = None
    ) -> None:
        self._key = network_key
        self.current = current

    def offer(self, data: bytes) -> PermissionList:
        """Accept a distributed list if validly signed and newer; else raise why not."""
        candidate = decode_permission_list(data)
        if not crypto.verify(
            self._key, PERMISSION_LIST_DOMAIN, candidate.canonical_bytes(), candidate.signature
        ):
            raise PermissionListBadSignature(
                f"permission list version {candidate.version} is not signed by the network's key"
            )
        if self.current is not None and candidate.version <= self.current.version:
            raise PermissionListStale(
                f"permission list version {candidate.version} is not newer than the kept "
                f"version {self.current.version}"
            )
        self.current = candidate
        return candidate
