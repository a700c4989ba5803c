"""The 照会許可照会リスト (query-permission list) as signed, versioned master data.

ipnw distributes the list: which requester may receive which items under which 主務省令第2条 項.
Wire form (a byte body): a header ``version`` (u64), ``issued`` (14 digits), ``entry_count``
(u32), then ``entry_count`` entries of ``requester`` (16 ASCII), ``kouban`` (3 digits),
``items`` (16-character mask), then the network's 64-byte signature over
``PERMISSION_LIST_DOMAIN ‖ everything before it``. :class:`PermissionListHolder` keeps the newest
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
from juki_gateway.protocols.intermediate.layout import Field, Layout, get_int, get_str
from juki_gateway.protocols.intermediate.messages import NODE_WIDTH

PERMISSION_LIST_DOMAIN = b"JKGW permission-list v1\x00"
_HEADER = Layout(
    "permission-list-header",
    (Field("version", 8, "uint"), Field("issued", 14, "digits"), Field("entry_count", 4, "uint")),
)
_ENTRY = Layout(
    "permission-list-entry",
    (
        Field("requester", NODE_WIDTH, "ascii"),
        Field("kouban", 3, "digits"),
        Field("items", 16, "mask"),
    ),
)


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
        head = _HEADER.encode(
            {"version": self.version, "issued": self.issued, "entry_count": len(self.entries)}
        )
        rows = b"".join(
            _ENTRY.encode(
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
    try:
        head = _HEADER.decode(data[: _HEADER.length])
        count = get_int(head, "entry_count")
        end = _HEADER.length + count * _ENTRY.length
        if len(data) != end + crypto.SIGNATURE_LENGTH:
            raise PermissionListMalformed(
                f"permission list of {count} entries needs {end + crypto.SIGNATURE_LENGTH} "
                f"bytes, got {len(data)}"
            )
        entries = []
        for pos in range(_HEADER.length, end, _ENTRY.length):
            row = _ENTRY.decode(data[pos : pos + _ENTRY.length])
            kouban = int(get_str(row, "kouban"))
            if kouban not in KOUBAN_NUMBERS:
                raise PermissionListMalformed(
                    f"permission list names 項 {kouban}, which is not a row this "
                    "municipality provides under (主務省令第2条)"
                )
            entries.append(
                PermissionEntry(
                    get_str(row, "requester"), kouban, mask_to_items(get_str(row, "items"))
                )
            )
    except (MalformedMessage, FukuhonFieldInvalid) as exc:
        raise PermissionListMalformed(f"permission list malformed: {exc.message}") from None
    return PermissionList(
        get_int(head, "version"), get_str(head, "issued"), tuple(entries), data[end:]
    )


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
