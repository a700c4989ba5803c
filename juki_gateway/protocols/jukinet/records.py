"""Building the 本人確認情報 an update notification carries, shared by the simulators and tests.

The record is the codec's 36-item ``honnin-kakunin`` (profile ``jukinet``); 異動事由 codes come
from the codec's :data:`~juki_gateway.codecs.codetables.CHANGE_REASON` table, looked up by the
name of the change (``国内転入``, ``転居`` …) so no caller writes a code number by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from juki_gateway.codecs.codetables import CHANGE_REASON
from juki_gateway.protocols.jukinet.errors import JuminhyoCodeChangeRefused
from juki_gateway.protocols.jukinet.layouts import (
    HONNIN_KAKUNIN,
    decode_body,
    encode_body,
    field_slice,
)

#: 異動事由 name (without its 記載/消除/修正 group) → code, e.g. ``"転居" → "30"``.
CHANGE_REASON_BY_NAME: Mapping[str, str] = {
    label.split(": ", 1)[1]: code for code, label in CHANGE_REASON.codes.items()
}

#: 異動事由 codes of the 消除 group (the resident leaves the file: 転出, 死亡 …).
REMOVAL_REASONS: frozenset[str] = frozenset(
    code for code, label in CHANGE_REASON.codes.items() if label.startswith("消除")
)

TENNYU = CHANGE_REASON_BY_NAME["国内転入"]
SHUSSEI = CHANGE_REASON_BY_NAME["出生"]
TENKYO = CHANGE_REASON_BY_NAME["転居"]
SHIBOU = CHANGE_REASON_BY_NAME["死亡"]
TENSHUTSU = CHANGE_REASON_BY_NAME["国内転出"]
SHOKKEN_SHUSEI = CHANGE_REASON_BY_NAME["職権修正"]
#: 住民票コードの変更請求: the record carries the new code (item 1) and the old one (item 24, 旧住民票コード)
JUMINHYO_CODE_CHANGE = CHANGE_REASON_BY_NAME["住民票コードの変更請求"]
#: 個人番号の変更請求: the record carries the new 個人番号 機構 generated (番号法 7条2項)
KOJIN_BANGO_CHANGE = CHANGE_REASON_BY_NAME["個人番号の変更請求"]

_OLD_CODE = field_slice(HONNIN_KAKUNIN, "old_juminhyo_code")

_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def fullwidth_digits(n: int | str) -> str:
    """A number in full-width digits, as double-byte text fields hold them (１２３)."""
    return str(n).translate(_FULLWIDTH)


def honnin_kakunin_record(
    *,
    juminhyo_code: str,
    kanji_name: str,
    kana_name: str,
    birth_date: str,
    sex: str,
    lg_code: str,
    address: str,
    change_reason: str,
    change_date: str,
    kojin_bango: str | None = None,
    seq: int = 0,
    **items: Any,
) -> bytes:
    """The encoded 本人確認情報 of one change; items not given get neutral defaults (the dates
    of the change, 世帯主, no flags), and the 消除 group sets レコード状況フラグ to 消除."""
    values: dict[str, Any] = {
        "juminhyo_code": juminhyo_code, "kanji_name": kanji_name, "kana_name": kana_name,
        "birth_date": birth_date, "sex": sex, "lg_code": lg_code, "aza_code": "0000000",
        "postal_code": "9208577", "address": address, "kojin_bango": kojin_bango or None,
        "resident_since": change_date, "address_since": change_date,
        "notification_date": change_date, "relationship": "01000000",
        "change_reason": change_reason, "change_date": change_date,
        "change_reason_detail": "01", "juminhyo_code_since": min(birth_date, change_date),
        "request_no": f"{seq:016d}", "operator_id": "OP0001", "terminal_id": "TERM001",
        "seq": seq, "recovery_seq": 0, "update_lock_flag": "0", "scheduled_flag": "0",
        "exclusive_flag": "0",
        "record_status_flag": "1" if change_reason in REMOVAL_REASONS else "0",
        "timestamp": change_date + "090000",
    }
    values.update(items)
    return encode_body(HONNIN_KAKUNIN, values)


def old_juminhyo_code(record: bytes) -> str | None:
    """The 旧住民票コード (item 24) of a validated 本人確認情報, or None when it is empty."""
    old = record[_OLD_CODE].decode("ascii", "replace").strip()
    return old or None


def code_change_of(index: int, juminhyo_code: str, record: bytes) -> str:
    """The 旧住民票コード of the 住民票コード変更 record at ``index`` of a frame (a validated
    record of 異動事由 :data:`JUMINHYO_CODE_CHANGE` whose new code is ``juminhyo_code``);
    :class:`JuminhyoCodeChangeRefused` when it names none or names the new code itself."""
    old = old_juminhyo_code(record)
    if old is None:
        raise JuminhyoCodeChangeRefused(
            f"record {index}: a 住民票コード変更 needs its 旧住民票コード (item 24)")
    if old == juminhyo_code:
        raise JuminhyoCodeChangeRefused(
            f"record {index}: its 旧住民票コード is its new 住民票コード")
    return old


def decode_honnin_kakunin(record: bytes) -> dict[str, Any]:
    """The items of one 本人確認情報 (validated by the codec's fast path)."""
    return decode_body(HONNIN_KAKUNIN, record)
