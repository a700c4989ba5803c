"""符号 (情報提供用個人識別符号) issuance: the pure rules on both sides of the link.

The intermediate server never makes a 符号: bango-renkei asks it for one for a new
団体内統合宛名番号 (``FUGO_REQUEST`` with the person's 住民票コード), the server asks ipnw
(``FUGO_ISSUE_REQUEST``: our organisation and the 住民票コード), and ipnw answers
(``FUGO_ISSUE_RESPONSE``). Until then bango-renkei gets the "pending" result and asks again.
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
    """A 符号 request names a 住民票コード that is not 11 digits with a valid check digit."""

    code = "fugo_bad_juminhyo_code"
    wire_code = 6609


class UnexpectedFugo(IntermediateError):
    """ipnw sent a 符号 nobody asked for, or for another organisation."""

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
