"""符号 (情報提供用個人識別符号) issuance: the pure rules on both sides of the link.

The intermediate server never makes a 符号 and never holds a 住民票コード: bango-renkei asks it
for the 符号 of a 団体内統合宛名番号 (``FUGO_REQUEST``), the server asks ipnw for a 処理通番
(``SHORI_TSUBAN_REQUEST``, answered ``SHORI_TSUBAN_ISSUE``) and tells bango-renkei "pending" with
that 処理通番; the municipality sends the 住民票コード with the 処理通番 through its CS and the
prefecture to 機構 (``SHORI_TSUBAN_NOTIFY``), 機構 passes the pair to the network
(``SHORI_TSUBAN_FETCH``), and ipnw delivers the 符号 with its 処理通番 (``FUGO_ISSUE_RESPONSE``).
Until then bango-renkei gets the "pending" result and asks again.
:func:`issue_fugo` is the simulated network's rule: a keyed hash of (organisation, person), so
the same person gets a different 符号 in every organisation and nobody without the network's
secret can link them.
"""

from __future__ import annotations

import hashlib
import hmac

from juki_gateway.codecs.checkdigits import juminhyo_code_check_digit
from juki_gateway.protocols.intermediate.errors import IntermediateError


class FugoPending(IntermediateError):
    """The 符号 has been requested from ipnw and has not arrived yet: ask again later."""

    code = "fugo_pending"
    wire_code = 6608


class BadJuminhyoCode(IntermediateError):
    """The network was given a 住民票コード that is not 11 digits with a valid check digit (the
    simulated network's rule; the intermediate server never sees one)."""

    code = "fugo_bad_juminhyo_code"
    wire_code = 6609


class UnexpectedFugo(IntermediateError):
    """ipnw sent a 処理通番 or 符号 nobody asked for (an unknown 依頼番号 or 処理通番), or for
    another organisation."""

    code = "fugo_unexpected"
    wire_code = 6610


def check_juminhyo_code(code: str) -> None:
    """Raise :class:`BadJuminhyoCode` unless ``code`` is a valid 住民票コード."""
    if (
        len(code) != 11
        or not code.isdigit()
        or juminhyo_code_check_digit(code[:10]) != int(code[10])
    ):
        raise BadJuminhyoCode(f"住民票コード {code!r} is not 11 digits with a valid check digit")


def issue_fugo(network_secret: bytes, organisation: str, juminhyo_code: str) -> str:
    """The 32-hex-digit 符号 the simulated network issues to ``organisation`` for a person."""
    check_juminhyo_code(juminhyo_code)
    mac = hmac.new(network_secret, f"{organisation}\x00{juminhyo_code}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]
