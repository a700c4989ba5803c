"""Node identities of the Juki-net links and the routing of 転入通知, sans-IO.

A 転入通知 travels CS A → prefecture(A) → 機構 → prefecture(B) → CS B, where B is the old
municipality named by its 市町村コード (the prefecture is its first two digits). Each hop asks
:func:`next_hop` where the notice goes next; ``None`` means "deliver here".
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

from juki_gateway.protocols.jukinet.errors import UnknownMunicipality, WrongSender
from juki_gateway.protocols.jukinet.numbers import validate_municipality_code

KIKO_NODE_ID = "kiko"


class Role(StrEnum):
    """The endpoint roles on the Juki-net links."""

    MUNICIPAL_CS = "municipal-cs"
    PREFECTURE = "prefecture"
    KIKO = "kiko"
    KIZON_JUKI = "kizon-juki"
    #: the information provision network: takes 機構's (住民票コード, 処理通番) pairs
    IPNW = "ipnw"


def cs_node_id(municipality_code: str) -> str:
    """The node id of a municipality's CS (e.g. ``cs-172014``)."""
    return f"cs-{validate_municipality_code(municipality_code)}"


def prefecture_node_id(prefecture_code: str) -> str:
    """The node id of a prefecture server (e.g. ``pref-17``)."""
    if len(prefecture_code) != 2 or not prefecture_code.isdigit() or not 1 <= int(prefecture_code) <= 47:
        raise UnknownMunicipality(f"no prefecture {prefecture_code!r} (01–47)")
    return f"pref-{prefecture_code}"


def prefecture_of(municipality_code: str) -> str:
    """The 2-digit prefecture code of a 市町村コード (validated)."""
    code = validate_municipality_code(municipality_code)[:2]
    prefecture_node_id(code)
    return code


def next_hop(
    role: Role,
    node_id: str,
    destination_municipality: str,
    *,
    came_from: Role | None,
    known_municipalities: Collection[str] = (),
) -> str | None:
    """Where a 転入通知 for ``destination_municipality`` goes from this node; None = here."""
    dest_pref = prefecture_of(destination_municipality)
    if role is Role.MUNICIPAL_CS:
        if node_id == cs_node_id(destination_municipality):
            return None
        if came_from not in (None, Role.KIZON_JUKI):
            raise WrongSender(
                f"{node_id} received a 転入通知 for {destination_municipality} from {came_from}"
            )
        return prefecture_node_id(node_id[3:5])
    if role is Role.PREFECTURE:
        if came_from is Role.MUNICIPAL_CS:
            return KIKO_NODE_ID
        if came_from is Role.KIKO:
            if node_id != prefecture_node_id(dest_pref):
                raise WrongSender(f"{node_id} was sent a 転入通知 for {destination_municipality}")
            if known_municipalities and destination_municipality not in known_municipalities:
                raise UnknownMunicipality(
                    f"{node_id} has no CS for 市町村コード {destination_municipality}"
                )
            return cs_node_id(destination_municipality)
        raise WrongSender(f"a prefecture takes 転入通知 only from its CSs and 機構, not {came_from}")
    if role is Role.KIKO:
        if came_from is not Role.PREFECTURE:
            raise WrongSender(f"機構 takes 転入通知 only from prefectures, not {came_from}")
        return prefecture_node_id(dest_pref)
    raise WrongSender(f"role {role} does not route 転入通知")
