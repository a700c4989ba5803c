"""Shared builders for the intermediate-server tests: keys, permits, lists, 副本."""

from __future__ import annotations

from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric import ec

from juki_gateway.protocols.intermediate.crypto import public_key_bytes
from juki_gateway.protocols.intermediate.permission_list import PermissionEntry, PermissionList
from juki_gateway.protocols.intermediate.permit import Permit

NOW = "20261126120000"
PROVIDER = "ims-172014"
REQUESTER = "mhlw-000001"

NETWORK_KEY = ec.generate_private_key(ec.SECP256R1())
REQUESTER_KEY = ec.generate_private_key(ec.SECP256R1())

FUKUHON = {
    "setai_no": "000000123456",
    "shimei": "金沢　花子",
    "seinengappi": "19800401",
    "seibetsu": "2",
    "zokugara": "01000000",
    "jusho": "石川県金沢市広坂一丁目１番１号",
    "jumin_date": "20100401",
    "setainushi": "金沢　花子",
    "jumin_kubun": "1",
}


def make_permit(
    permit_id: str = "p-0001",
    *,
    items: Iterable[str] = ("shimei", "jusho"),
    kouban: int = 1,
    fugo: str = "f" * 32,
    provider: str = PROVIDER,
    requester: str = REQUESTER,
    issued: str = "20261126110000",
    expires: str = "20261126130000",
    key: ec.EllipticCurvePrivateKey = NETWORK_KEY,
) -> Permit:
    """A permit signed by ``key`` (the network's by default)."""
    return Permit(
        permit_id,
        requester,
        provider,
        kouban,
        frozenset(items),
        fugo,
        issued,
        expires,
        public_key_bytes(REQUESTER_KEY.public_key()),
    ).signed(key)


def make_list(
    version: int = 1,
    entries: Iterable[PermissionEntry] | None = None,
    key: ec.EllipticCurvePrivateKey = NETWORK_KEY,
) -> PermissionList:
    """A permission list letting REQUESTER have names and addresses under 項 1 by default."""
    rows = (
        tuple(entries)
        if entries is not None
        else (PermissionEntry(REQUESTER, 1, frozenset({"shimei", "jusho", "seinengappi"})),)
    )
    return PermissionList(version, NOW, rows).signed(key)
