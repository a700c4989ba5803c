"""One synthetic resident of Kanazawa and the records the codec's layouts carry for them.

:class:`Resident` holds the items of one person of the population (:mod:`.population` draws
them); its methods give the primary items of the three record layouts the simulators send:
``honnin-kakunin`` (本人確認情報, to the CS), ``fukuhon-juminhyo`` (副本, to the intermediate
server) and ``soufusaki`` (送付先情報, to card management). The encoder derives the rest (外字数,
代替文字, 清音化かな, 項目長).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from juki_gateway.codecs.gaiji import JUKINET
from juki_gateway.codecs.samples import KANAZAWA_CARD_OFFICE
from juki_gateway.simulators.foreign import ForeignStatus

KANAZAWA = "172014"


def age_on(birth_date: str, day: dt.date) -> int:
    """Age in whole years on ``day`` of someone born on ``birth_date`` (YYYYMMDD)."""
    born = (int(birth_date[:4]), int(birth_date[4:6]), int(birth_date[6:]))
    return day.year - born[0] - ((day.month, day.day) < born[1:])


@dataclass(frozen=True, slots=True)
class Resident:
    """One synthetic resident with everything the three record layouts need."""

    juminhyo_code: str
    kojin_bango: str
    atena_no: str
    setai_no: str
    kanji_name: str
    kana_name: str
    birth_date: str
    sex: str
    relationship: str
    householder_name: str
    postal_code: str
    aza_code: str
    address: str
    resident_since: str
    foreign: ForeignStatus | None = None
    #: 通称 (foreign residents) and 旧氏 (Japanese residents who had it recorded): carried in the
    #: 副本 only (docs/wire-format.md, "One width per item")
    tsusho: str | None = None
    kyuuji: str | None = None

    @property
    def has_gaiji(self) -> bool:
        """Whether the name or address holds a 外字 of Juki-net links (outside JIS X 0208)."""
        return JUKINET.gaiji_count(self.kanji_name + self.address) > 0

    def honnin_kakunin(
        self, *, change_reason: str, change_date: str, seq: int, request_no: int,
        timestamp: str, operator_id: str = "OP0001", terminal_id: str = "TERM001",
        previous_lg_code: str | None = None, previous_address: str | None = None,
        record_status_flag: str = "0",
    ) -> dict[str, Any]:
        """This resident's 本人確認情報 record (primary items) for one change."""
        return {
            "juminhyo_code": self.juminhyo_code,
            "kanji_name": self.kanji_name,
            "kana_name": self.kana_name,
            "birth_date": self.birth_date,
            "sex": self.sex,
            "lg_code": KANAZAWA,
            "aza_code": self.aza_code,
            "postal_code": self.postal_code,
            "address": self.address,
            "kojin_bango": self.kojin_bango,
            "resident_since": self.resident_since,
            "address_since": self.resident_since,
            "notification_date": change_date,
            "previous_lg_code": previous_lg_code,
            "previous_address": previous_address,
            "relationship": self.relationship,
            "change_reason": change_reason,
            "change_date": change_date,
            "change_reason_detail": "01",
            "old_juminhyo_code": None,
            "juminhyo_code_since": self.resident_since,
            "request_no": f"{request_no:016d}",
            "operator_id": operator_id,
            "terminal_id": terminal_id,
            "seq": seq,
            "recovery_seq": 0,
            "update_lock_flag": "0",
            "scheduled_flag": "0",
            "exclusive_flag": "0",
            "record_status_flag": record_status_flag,
            "timestamp": timestamp,
        }

    def fukuhon(self) -> dict[str, Any]:
        """This resident's 住民票関係情報 副本 record (primary items)."""
        f = self.foreign
        return {
            "atena_no": self.atena_no,
            "setai_no": self.setai_no,
            "kanji_name": self.kanji_name,
            "birth_date": self.birth_date,
            "sex": self.sex,
            "relationship": self.relationship,
            "address": self.address,
            "resident_since": self.resident_since,
            "householder_name": self.householder_name,
            "resident_class": "2" if f else "1",
            "nationality": f.nationality if f else None,
            "residence_status": f.residence_status if f else None,
            "residence_period": f.residence_period if f else None,
            "residence_expiry_date": f.residence_expiry_date if f else None,
            "foreign_resident_class": f.foreign_resident_class if f else None,
            "alias_name": self.tsusho,
            "former_surname": self.kyuuji,
        }

    def soufusaki(self, soufusaki_no: int, processing_date: str) -> dict[str, Any]:
        """This resident's 送付先情報 record (primary items), sent to card management."""
        f = self.foreign
        return {
            "soufusaki_no": f"{soufusaki_no:012d}",
            "dest_postal_code": self.postal_code,
            "dest_address": self.address,
            "dest_name": self.kanji_name,
            **KANAZAWA_CARD_OFFICE,
            "processing_date": processing_date,
            "operator_id": "OP0001",
            "terminal_id": "TERM001",
            "print_class": "0",
            "juminhyo_code": self.juminhyo_code,
            "kanji_name": self.kanji_name,
            "kana_name": self.kana_name,
            "postal_code": self.postal_code,
            "address": self.address,
            "birth_date": self.birth_date,
            "sex": self.sex,
            "kojin_bango": self.kojin_bango,
            "foreign_resident_class": f.foreign_resident_class if f else None,
            "residence_expiry_date": f.residence_expiry_date if f else None,
        }
