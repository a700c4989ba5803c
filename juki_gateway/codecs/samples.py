"""Sample residents and link messages for the demo, the golden vectors and the benchmarks.

The records hold only primary items: the encoder derives 外字数, 外字フラグ, 代替文字, 清音化かな
and 項目長. Check-digit codes are drawn with :mod:`checkdigits` from a seeded ``random.Random``,
so every run gives the same bytes. :data:`SAMPLERS` has one sampler per body layout of the
Juki-net links and :data:`FRAME_SAMPLES` the header of one sample frame per message type, from
which ``vectors.py`` builds ``tests/vectors/jukinet/``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from juki_gateway.codecs.checkdigits import generate_juminhyo_code, generate_kojin_bango

KANAZAWA = "172014"

#: (漢字氏名, ふりがな, sex, birth date, foreign) — includes 髙, 﨑, 𠮷 and foreign residents.
PEOPLE: tuple[tuple[str, str, str, str, bool], ...] = (
    ("髙橋\u3000﨑子", "タカハシ\u3000サキコ", "2", "19800315", False),
    ("𠮷田\u3000太郎", "ヨシダ\u3000タロウ", "1", "19751102", False),
    ("金沢\u3000花子", "カナザワ\u3000ハナコ", "2", "20010228", False),
    ("德永\u3000ジョージ", "トクナガ\u3000ジョージ", "1", "19630704", False),
    ("グエン\u3000ヴァン\u3000アン", "グエン\u3000ヴァン\u3000アン", "1", "19970912", True),
    ("ＳＭＩＴＨ\u3000ＪＯＨＮ", "スミス\u3000ジョン", "1", "19881130", True),
)

ADDRESSES: tuple[str, ...] = (
    "石川県金沢市広坂１丁目１番１号",
    "石川県金沢市髙岡町７番２５号",
    "石川県金沢市長町２丁目４番１０号\u3000﨑ハイツ１０２",
)


def _operator(i: int) -> str:
    return f"OP{i:04d}"


def sample_honnin_kakunin(i: int, rng: random.Random | None = None) -> dict[str, Any]:
    """The ``i``-th sample 本人確認情報 record (primary items only)."""
    rng = rng or random.Random(i)
    name, kana, sex, birth, _foreign = PEOPLE[i % len(PEOPLE)]
    moved = i % 3 == 1
    return {
        "juminhyo_code": generate_juminhyo_code(rng),
        "kanji_name": name,
        "kana_name": kana,
        "birth_date": birth,
        "sex": sex,
        "lg_code": KANAZAWA,
        "aza_code": f"{rng.randrange(10**7):07d}",
        "postal_code": "9208577",
        "address": ADDRESSES[i % len(ADDRESSES)],
        "kojin_bango": generate_kojin_bango(rng) if i % 5 != 4 else None,
        "resident_since": "20200401",
        "address_since": "20200401",
        "notification_date": "20200403",
        "previous_lg_code": "131016" if moved else None,
        "previous_address": "東京都千代田区千代田１番１号" if moved else None,
        "relationship": "01000000" if i % 2 == 0 else "06030000",
        "change_reason": "10" if moved else "12",
        "change_date": "20200401",
        "change_reason_detail": "01",
        "old_juminhyo_code": None,
        "juminhyo_code_since": "20020805",
        "request_no": f"{i:016d}",
        "operator_id": _operator(i % 500),
        "terminal_id": f"TERM{i % 40:03d}",
        "seq": i + 1,
        "recovery_seq": 0,
        "update_lock_flag": "0",
        "scheduled_flag": "0",
        "exclusive_flag": "0",
        "record_status_flag": "0",
        "timestamp": "20260401093000",
    }


#: the 送付先情報 items that describe Kanazawa's office (市町村, 交付場所, no separate カード送付場所)
KANAZAWA_CARD_OFFICE: dict[str, Any] = {
    "lg_code": KANAZAWA,
    "lg_name": "金沢市",
    "lg_postal_code": "9208577",
    "lg_address": "石川県金沢市広坂１丁目１番１号",
    "issue_place_name": "金沢市役所\u3000市民課",
    "issue_place_address": "石川県金沢市広坂１丁目１番１号",
    "issue_place_phone": "076-220-2111",
    "card_dest_name": None,
    "card_dest_postal_code": None,
    "card_dest_address": None,
    "card_dest_phone": None,
    "person_count": 1,
}


def sample_soufusaki(i: int, rng: random.Random | None = None) -> dict[str, Any]:
    """The ``i``-th sample 送付先情報 record (primary items only)."""
    rng = rng or random.Random(1000 + i)
    name, kana, sex, birth, foreign = PEOPLE[i % len(PEOPLE)]
    address = ADDRESSES[i % len(ADDRESSES)]
    return {
        "soufusaki_no": f"{i:012d}",
        "dest_postal_code": "9208577",
        "dest_address": address,
        "dest_name": name,
        **KANAZAWA_CARD_OFFICE,
        "processing_date": "20260401",
        "operator_id": _operator(i % 500),
        "terminal_id": f"TERM{i % 40:03d}",
        "print_class": "0",
        "juminhyo_code": generate_juminhyo_code(rng),
        "kanji_name": name,
        "kana_name": kana,
        "postal_code": "9208577",
        "address": address,
        "birth_date": birth,
        "sex": sex,
        "kojin_bango": generate_kojin_bango(rng),
        "foreign_resident_class": "1" if foreign else None,
        "residence_expiry_date": "20290331" if foreign else None,
    }


def sample_fukuhon_juminhyo(i: int, rng: random.Random | None = None) -> dict[str, Any]:
    """The ``i``-th sample 副本 record (primary items only)."""
    name, _kana, sex, birth, foreign = PEOPLE[i % len(PEOPLE)]
    return {
        "atena_no": f"{i + 1:015d}",
        "setai_no": f"{i // 2 + 1:012d}",
        "kanji_name": name,
        "birth_date": birth,
        "sex": sex,
        "relationship": "01000000" if i % 2 == 0 else "03000000",
        "address": ADDRESSES[i % len(ADDRESSES)],
        "resident_since": "20200401",
        "householder_name": PEOPLE[(i // 2 * 2) % len(PEOPLE)][0],
        "resident_class": "2" if foreign else "1",
        "nationality": ("VNM" if "グエン" in name else "USA") if foreign else None,
        "residence_status": "05" if foreign else None,
        "residence_period": "0300" if foreign else None,
        "residence_expiry_date": "20290331" if foreign else None,
        "foreign_resident_class": "1" if foreign else None,
        # a 通称 for some foreign residents, a 旧氏 (with a 外字) for some Japanese ones
        "alias_name": "中村\u3000ジョン" if foreign and i % 2 else None,
        "former_surname": "𠮷岡" if not foreign and sex == "2" else None,
    }


# -- the small bodies of the Juki-net links ----------------------------------------------------------

#: valid 地方公共団体コード: 金沢市, 小松市, 富山市, 千代田区
MUNICIPALITIES: tuple[str, ...] = (KANAZAWA, "172031", "162019", "131016")


def _codes(i: int, salt: int) -> random.Random:
    return random.Random(salt * 1000 + i)


def sample_error(i: int) -> dict[str, Any]:
    """The ``i``-th sample error record (the body of ERROR and NACK)."""
    return (
        {"error_code": 5101, "error_name": "sequence_gap",
         "detail": f"sequence gap: expected 更新順番号 {41 + i}, got {43 + i}"},
        {"error_code": 5102, "error_name": "search_too_broad",
         "detail": "氏名 is missing (R3: 住民票コード or 個人番号, or 氏名 plus 生年月日 or a 住所 "
                   "naming a 市区町村; 性別 does not count)"},
    )[i % 2]


def sample_move_in_notice(i: int) -> dict[str, Any]:
    """The ``i``-th sample 転入通知: a resident of another municipality moved to Kanazawa."""
    name, _kana, _sex, birth, _foreign = PEOPLE[i % len(PEOPLE)]
    return {
        "juminhyo_code": generate_juminhyo_code(_codes(i, 2)),
        "new_lg_code": KANAZAWA,
        "old_lg_code": MUNICIPALITIES[1 + i % 3],
        "kanji_name": name,
        "birth_date": birth,
        "new_address": ADDRESSES[i % len(ADDRESSES)],
        "move_in_date": "20260401",
    }


def sample_kojin_bango_request(i: int) -> dict[str, Any]:
    """The ``i``-th sample 個人番号生成要求."""
    return {"juminhyo_code": generate_juminhyo_code(_codes(i, 3)), "lg_code": KANAZAWA}


def sample_kojin_bango_response(i: int) -> dict[str, Any]:
    """The answer to the ``i``-th sample 個人番号生成要求."""
    return {"juminhyo_code": generate_juminhyo_code(_codes(i, 3)),
            "kojin_bango": generate_kojin_bango(_codes(i, 4))}


def sample_kojin_bango_change_request(i: int) -> dict[str, Any]:
    """The ``i``-th sample 個人番号変更要求: the person of the ``i``-th 個人番号生成要求 replaces
    the number it was given."""
    return {**sample_kojin_bango_response(i), "lg_code": KANAZAWA}


def sample_pool_request(i: int) -> dict[str, Any]:
    """The ``i``-th sample 住民票コード払出要求."""
    return {"lg_code": MUNICIPALITIES[i % 2], "count": 500 * (i + 1)}


def sample_juminhyo_code_draw_request(i: int) -> dict[str, Any]:
    """The ``i``-th sample 住民票コード取得要求 of an existing system to its CS."""
    return {"lg_code": KANAZAWA, "count": 1 + i % 3}


def sample_move_in_delivery(i: int) -> dict[str, Any]:
    """The ``i``-th sample delivery of a 転入通知 to the old municipality's existing system."""
    from juki_gateway.codecs.record import get_codec  # the layout is registered by now

    return {"delivery_no": i + 1,
            "notice": get_codec("move-in-notice").encode(sample_move_in_notice(i))}


def sample_tenshutsu_shomei(i: int) -> dict[str, Any]:
    """The ``i``-th sample 転出証明書情報: a Kanazawa resident moving to 野々市市 with the card
    (the second sample: a paper 転出証明書, not 特例)."""
    name, kana, sex, birth, _foreign = PEOPLE[i % len(PEOPLE)]
    return {
        "juminhyo_code": generate_juminhyo_code(_codes(i, 8)),
        "kojin_bango": generate_kojin_bango(_codes(i, 8)), "kanji_name": name, "kana_name": kana,
        "birth_date": birth, "sex": sex, "householder_name": name, "relationship": "01000000",
        "old_lg_code": KANAZAWA, "old_address": ADDRESSES[i % len(ADDRESSES)],
        "new_lg_code": MUNICIPALITIES[1], "new_address": "石川県野々市市三納一丁目１番地",
        "move_out_date": "20260328", "notification_date": "20260320",
        "tokurei": "1" if i % 2 == 0 else "0",
    }


def sample_tenshutsu_shomei_request(i: int) -> dict[str, Any]:
    """The ``i``-th sample 特例転入 request: 野々市市 asks for the ``i``-th 転出証明書情報."""
    shomei = sample_tenshutsu_shomei(i)
    return {"juminhyo_code": shomei["juminhyo_code"], "birth_date": shomei["birth_date"],
            "old_lg_code": KANAZAWA, "new_lg_code": MUNICIPALITIES[1],
            "operator_id": _operator(i % 500), "terminal_id": f"TERM{i % 40:03d}"}


def sample_shori_tsuban_notice(i: int) -> dict[str, Any]:
    """The ``i``-th sample (住民票コード, 処理通番) pair of a 符号 acquisition."""
    rng = random.Random(9100 + i)
    return {"juminhyo_code": generate_juminhyo_code(rng),
            "shori_tsuban": f"{4711000000000000 + 42 * (i + 1):016d}", "lg_code": KANAZAWA}


def sample_shori_tsuban_ack(i: int) -> dict[str, Any]:
    """The ``i``-th 処理通番 the network acknowledges taking."""
    return {"shori_tsuban": f"{4711000000000000 + 42 * (i + 1):016d}"}


def sample_pool_entry(i: int) -> dict[str, Any]:
    """The ``i``-th unused 住民票コード of a sample pool answer."""
    return {"juminhyo_code": generate_juminhyo_code(_codes(i, 5))}


def sample_search_request(i: int) -> dict[str, Any]:
    """The ``i``-th sample search (R3): by 氏名 and 生年月日, by 住民票コード, by 個人番号, then by
    氏名 and a 住所 naming its 市区町村."""
    blank: dict[str, Any] = {
        **dict.fromkeys(("juminhyo_code", "kojin_bango", "name", "birth_date", "address", "sex")),
        "operator_id": _operator(i % 500), "terminal_id": f"TERM{i % 40:03d}"}
    name, _kana, sex, birth, _foreign = PEOPLE[i % len(PEOPLE)]
    return (
        {**blank, "name": name, "birth_date": birth, "sex": sex},
        {**blank, "juminhyo_code": generate_juminhyo_code(_codes(i, 6))},
        {**blank, "kojin_bango": generate_kojin_bango(_codes(i, 6))},
        {**blank, "name": name, "address": "石川県金沢市"},
    )[i % 4]


#: the sample search answer is cut: this many residents matched, more than it carries
SAMPLE_SEARCH_TOTAL = 5


def sample_search_hit(i: int) -> dict[str, Any]:
    """The ``i``-th record of a sample search answer cut at its limit (``truncated`` 1, ``total``
    :data:`SAMPLE_SEARCH_TOTAL`): the ``i``-th sample 本人確認情報, nested as bytes."""
    from juki_gateway.codecs.record import get_codec

    return {"total": SAMPLE_SEARCH_TOTAL, "truncated": "1",
            "record": get_codec("honnin-kakunin").encode(sample_honnin_kakunin(i))}


def sample_consistency_entry(i: int) -> dict[str, Any]:
    """The ``i``-th entry of a sample consistency-check chunk (code and a 16-byte digest)."""
    return {"juminhyo_code": generate_juminhyo_code(_codes(i, 7)),
            "digest": bytes((i * 16 + k) % 256 for k in range(16))}


def sample_consistency_diff(i: int) -> dict[str, Any]:
    """The ``i``-th sample difference: missing at the peer (M), missing at the CS (E), differing (D)."""
    from juki_gateway.codecs.record import get_codec

    kind = "MED"[i % 3]
    record = sample_honnin_kakunin(i)
    return {
        "kind": kind,
        "juminhyo_code": record["juminhyo_code"],
        "peer_record": None if kind == "M" else get_codec("honnin-kakunin").encode(record),
    }


SAMPLERS: dict[str, Callable[[int], dict[str, Any]]] = {
    "honnin-kakunin": sample_honnin_kakunin,
    "soufusaki": sample_soufusaki,
    "fukuhon-juminhyo": sample_fukuhon_juminhyo,
    "error": sample_error,
    "move-in-notice": sample_move_in_notice,
    "kojin-bango-request": sample_kojin_bango_request,
    "kojin-bango-response": sample_kojin_bango_response,
    "kojin-bango-change-request": sample_kojin_bango_change_request,
    "pool-request": sample_pool_request,
    "pool-entry": sample_pool_entry,
    "move-in-delivery": sample_move_in_delivery,
    "juminhyo-code-draw-request": sample_juminhyo_code_draw_request,
    "tenshutsu-shomei": sample_tenshutsu_shomei,
    "tenshutsu-shomei-request": sample_tenshutsu_shomei_request,
    "shori-tsuban-notice": sample_shori_tsuban_notice,
    "shori-tsuban-ack": sample_shori_tsuban_ack,
    "search-request": sample_search_request,
    "search-hit": sample_search_hit,
    "consistency-entry": sample_consistency_entry,
    "consistency-diff": sample_consistency_diff,
}


@dataclass(frozen=True, slots=True)
class FrameSample:
    """The header of one sample frame: who sends it to whom, how many records, which numbers."""

    sender: str
    receiver: str
    records: int = 0
    request_no: int = 0
    seq: int = 0
    recovery_seq: int = 0


CS, PREF, KIKO, KIZON = "cs-172014", "pref-17", "kiko", "kizon-172014"
#: message name → the sample frame of ``tests/vectors/jukinet/`` (records from :data:`SAMPLERS`).
FRAME_SAMPLES: dict[str, FrameSample] = {
    "ERROR": FrameSample(PREF, CS, 1, request_no=9),
    "PING": FrameSample(CS, PREF),
    "PONG": FrameSample(PREF, CS),
    "ACK": FrameSample(PREF, CS, seq=43),
    "NACK": FrameSample(PREF, CS, 1, seq=41),
    "UPDATE_NOTIFY": FrameSample(CS, PREF, 3, seq=41),
    "SOUFUSAKI_BATCH": FrameSample(CS, KIKO, 3, seq=7, recovery_seq=2),
    "MOVE_IN_NOTICE": FrameSample(PREF, KIKO, 1, seq=12),
    "SHORI_TSUBAN_NOTIFY": FrameSample("kizon-172014", CS, 2, seq=44),
    "KOJIN_BANGO_REQUEST": FrameSample(CS, PREF, 1, request_no=5),
    "KOJIN_BANGO_RESPONSE": FrameSample(PREF, CS, 1, request_no=5),
    "POOL_REQUEST": FrameSample(CS, KIKO, 1, request_no=6),
    "POOL_RESPONSE": FrameSample(KIKO, CS, 3, request_no=6),
    "KOJIN_BANGO_CHANGE_REQUEST": FrameSample(CS, PREF, 1, request_no=7),
    "KOJIN_BANGO_CHANGE_RESPONSE": FrameSample(PREF, CS, 1, request_no=7),
    "JUMINHYO_CODE_DRAW_REQUEST": FrameSample(KIZON, CS, 1, request_no=8),
    "JUMINHYO_CODE_DRAW_RESPONSE": FrameSample(CS, KIZON, 2, request_no=8),
    "MOVE_IN_NOTICE_FETCH": FrameSample(KIZON, CS, request_no=10, seq=4),
    "MOVE_IN_NOTICE_LIST": FrameSample(CS, KIZON, 2, request_no=10),
    "TENSHUTSU_SHOMEI_NOTIFY": FrameSample(KIZON, CS, 1, request_no=14),
    "TENSHUTSU_SHOMEI_ACCEPTED": FrameSample(CS, KIZON, request_no=14),
    "TENSHUTSU_SHOMEI_REQUEST": FrameSample(PREF, CS, 1, request_no=15),
    "TENSHUTSU_SHOMEI_RESPONSE": FrameSample(CS, PREF, 1, request_no=15),
    "SEARCH_REQUEST": FrameSample(CS, PREF, 1, request_no=9),
    "SEARCH_RESPONSE": FrameSample(PREF, CS, 2, request_no=9),
    "CONSISTENCY_CHUNK": FrameSample(CS, KIKO, 3, request_no=11),
    "CONSISTENCY_DIFF": FrameSample(KIKO, CS, 3, request_no=11),
    "CONSISTENCY_END": FrameSample(KIKO, CS, request_no=11, seq=3),
    "SHORI_TSUBAN_FETCH": FrameSample("ipnw", KIKO, 1, request_no=13),
    "SHORI_TSUBAN_LIST": FrameSample(KIKO, "ipnw", 2, request_no=13),
}
