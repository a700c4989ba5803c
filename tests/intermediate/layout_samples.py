"""Sample values of every intermediate-link body layout, for the golden byte vectors.

``tests/vectors/intermediate/NAME.bin`` holds the bytes of ``SAMPLES[NAME]``; they were written
by the intermediate server's first layout engine, so the test over them proves the codec's
layout tables kept the wire bytes identical (``answer-info.bin``, which came later, was written
by hand from the byte description in ``docs/intermediate.md``; the 符号 layouts by 処理通番 —
``fugo-request``, ``fugo-response``, ``shori-tsuban-request``, ``shori-tsuban-issue``,
``fugo-issue-response`` — were rewritten when they changed, and the reference codec checks them;
so were ``fugo-request``, ``fugo-response``, ``fukuhon-report``, ``answer-items`` and
``query-result`` when 団体内統合宛名番号 became 15 digits everywhere and the answer items took the
副本's widths and codes, docs/wire-format.md "One width per item").
Blank optional items are ``None``.
"""

from __future__ import annotations

from typing import Any

KEY = bytes([4]) + bytes(range(1, 65))
SIGNATURE = bytes(range(100, 164))

PERMIT_UNSIGNED: dict[str, Any] = {
    "permit_id": "pm-1764158400-00000042",
    "requester": "mhlw-000001",
    "provider": "ims-172014",
    "kouban": "001",
    "items": "0100010000000000",
    "fugo": "0123456789abcdef0123456789abcdef",
    "issued": "20261126110000",
    "expires": "20261126130000",
    "requester_key": KEY,
}
PERMIT: dict[str, Any] = {**PERMIT_UNSIGNED, "signature": SIGNATURE}
ANSWER_ITEMS: dict[str, Any] = {
    "setai_no": "000000123456",
    "shimei": "髙橋　﨑子",
    "seinengappi": "19800401",
    "seibetsu": "2",
    "zokugara": "01000000",
    "jusho": "石川県金沢市広坂一丁目１番１号",
    "jumin_date": "20100401",
    "setainushi": "𠮷田　太郎",
    "jumin_kubun": "2",
    "kokuseki": "VNM",
    "zairyu_shikaku": "05",
    "zairyu_kikan": "0300",
    "zairyu_manryo": None,
    "ho30_45": "1",
    "tsusho": "中村　ジョン",
    "kyuuji": None,
}

SAMPLES: dict[str, dict[str, Any]] = {
    "permit-unsigned": PERMIT_UNSIGNED,
    "permit": PERMIT,
    "info-query": {
        "fugo": "0123456789abcdef0123456789abcdef",
        "kouban": "001",
        "items": "0100010000000000",
        "route": "mhlw-000001",
        "permit": bytes(range(256)) + bytes(16),
    },
    "query-result": {
        "permit_id": "pm-1764158400-00000042",
        "requester": "mhlw-000001",
        "status": "1",
        "reason_code": "6201",
        "items": "0000000000000000",
        "sealed": bytes(i % 251 for i in range(617)),
    },
    "fugo-request": {"atena_no": "172014000000002"},
    "fugo-response": {"atena_no": "172014000000003", "fugo": None, "shori_tsuban": "4711000000000042",
                      "result_code": "6608"},
    "shori-tsuban-request": {"organisation": "ims-172014", "request_id": "0f1e2d3c4b5a6978"},
    "shori-tsuban-issue": {"organisation": "ims-172014", "request_id": "0f1e2d3c4b5a6978",
                           "shori_tsuban": "4711000000000042"},
    "fugo-issue-response": {
        "organisation": "ims-172014",
        "shori_tsuban": "4711000000000042",
        "fugo": "0123456789abcdef0123456789abcdef",
    },
    "fukuhon-report": {
        "index": 3,
        "atena_no": "172014000000004",
        "result_code": "6402",
        "detail": "団体内統合宛名番号 172014000000004 has no 符号".encode("ascii", "replace").decode(),
    },
    "permission-list-result": {"version": 7, "result_code": "0000", "kept_version": 7},
    "permission-list-header": {"version": 7, "issued": "20261126120000", "entry_count": 2},
    "permission-list-entry": {"requester": "mhlw-000001", "kouban": "001", "items": "1110000000000000"},
    "answer-items": ANSWER_ITEMS,
    "answer-info": {
        "domain": "JKGW answer v2\x00",
        "permit_id": "pm-1764158400-00000042",
        "provider": "ims-172014",
        "requester": "mhlw-000001",
    },
}
