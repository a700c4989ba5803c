"""副本 records on the wire: the codec's ``fukuhon-juminhyo`` layout, intermediate profile.

bango-renkei registers, and ``fukuhon export`` writes, 副本 as ``fukuhon-juminhyo`` records of
the project's record codec (see ``docs/wire-format.md``): every record is decoded with the
``intermediate`` profile (外字 = outside JIS X 0213), so check digits, dates, code tables and
the derived 外字数 are checked exactly as everywhere else (R12). Inside the server a 副本 is
the providable items of :mod:`.items`; this module maps between the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from juki_gateway.codecs.layouts import FUKUHON_JUMINHYO
from juki_gateway.codecs.record import RecordCodec, get_codec
from juki_gateway.protocols.intermediate.items import FUKUHON_ITEMS, check_fukuhon_values

FUKUHON_LAYOUT = FUKUHON_JUMINHYO.name
FUKUHON_PROFILE = "intermediate"

#: 副本 item -> field of the codec's fukuhon-juminhyo layout.
CODEC_FIELDS: dict[str, str] = {item.key: item.codec_field for item in FUKUHON_ITEMS}


def fukuhon_codec() -> RecordCodec:
    """The record codec of 副本 records (cached by the codec module)."""
    return get_codec(FUKUHON_LAYOUT, FUKUHON_PROFILE)


FUKUHON_RECORD_LENGTH: int = fukuhon_codec().record_length


def decode_fukuhon(record: bytes) -> tuple[str, dict[str, str]]:
    """(団体内統合宛名番号, items) of one record; raises the codec's error or FukuhonFieldInvalid."""
    values = fukuhon_codec().decode(record)
    items = {key: _text(values.get(field)) for key, field in CODEC_FIELDS.items()}
    return str(values["atena_no"]), check_fukuhon_values(items)


def encode_fukuhon(atena_no: str, items: Mapping[str, str]) -> bytes:
    """One ``fukuhon-juminhyo`` record for a person's items (the codec derives 外字数)."""
    record: dict[str, Any] = {"atena_no": atena_no}
    for key, field in CODEC_FIELDS.items():
        value = items.get(key, "")
        record[field] = value if value != "" else None
    return fukuhon_codec().encode(record)


def _text(value: Any) -> str:
    return "" if value is None else str(value)
