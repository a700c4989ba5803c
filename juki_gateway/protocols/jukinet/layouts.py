"""Body layouts of the Juki-net messages, as tables of the codec's layout model.

Update notifications carry the codec's 36-item 本人確認情報
(:data:`~juki_gateway.codecs.layouts.HONNIN_KAKUNIN`, 898 bytes) and 送付先 batches the codec's
59-item 送付先情報 (:data:`~juki_gateway.codecs.layouts.SOUFUSAKI`); the small request and answer
bodies of the links (転入通知, 個人番号 and 住民票コード requests, searches and their answers, whose
records nest a 本人確認情報 as opaque bytes, the consistency check) are tables of the same :class:`~juki_gateway.codecs.schema.Field` rows and kinds,
registered with the codec (``register_layouts``). So one mechanism computes offsets, validates
(``get_codec``'s generated fast codec, cached by :func:`codec_of`) and renders
``docs/wire-format.md``.

:func:`decode_body` and :func:`encode_body` are what the links call: they turn a codec refusal
into the Juki-net error a peer is told (5103 for a failed check digit, 5108 for anything else
malformed), keeping the codec's message, which names the field and byte offset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from juki_gateway.codecs import codetables as ct
from juki_gateway.codecs import fields
from juki_gateway.codecs.errors import BadCheckDigit as CodecBadCheckDigit
from juki_gateway.codecs.errors import CodecError
from juki_gateway.codecs.fields import Code, CodeTable, Date, Number
from juki_gateway.codecs.layouts import (
    ALNUM,
    HONNIN_KAKUNIN,
    JUMINHYO,
    KOJIN,
    LGC,
    SOUFUSAKI,
    register_layouts,
)
from juki_gateway.codecs.record import RecordCodec, get_codec
from juki_gateway.codecs.schema import Field, Layout
from juki_gateway.codecs.textfields import Kana, Text
from juki_gateway.protocols.jukinet.errors import BadBody, BadCheckDigit

__all__ = [
    "CONSISTENCY_DIFF",
    "CONSISTENCY_ENTRY",
    "HONNIN_KAKUNIN",
    "JUMINHYO_CODE_DRAW_REQUEST",
    "KOJIN_BANGO_CHANGE_REQUEST",
    "KOJIN_BANGO_REQUEST",
    "KOJIN_BANGO_RESPONSE",
    "LAYOUTS",
    "MAX_CODE_DRAW",
    "MOVE_IN_NOTICE",
    "POOL_ENTRY",
    "POOL_REQUEST",
    "SEARCH_HIT",
    "SEARCH_REQUEST",
    "SHORI_TSUBAN_ACK",
    "SHORI_TSUBAN_NOTICE",
    "SOUFUSAKI",
    "TENSHUTSU_SHOMEI",
    "TENSHUTSU_SHOMEI_REQUEST",
    "RawBytes",
    "codec_of",
    "decode_bodies",
    "decode_body",
    "encode_body",
    "field_slice",
    "link_error",
]


class RawBytes(fields.RawBytes):
    """Opaque bytes of exactly the field's width (a digest, an embedded record); empty = zeros."""

    def empty(self, width: int) -> bytes:
        return b"\x00" * width


DIFF_KIND = CodeTable(
    "consistency_diff_kind", "差異区分", {"M": "相手に無し", "E": "CSに無し", "D": "項目相違"}
)

MOVE_IN_NOTICE = Layout(
    "move-in-notice",
    "転入通知",
    (
        Field(1, "juminhyo_code", "住民票コード", 11, JUMINHYO),
        Field(2, "new_lg_code", "転入先市町村コード", 6, LGC),
        Field(3, "old_lg_code", "転出元市町村コード", 6, LGC),
        Field(4, "kanji_name", "漢字氏名", 80, Text()),
        Field(5, "birth_date", "生年月日", 8, Date()),
        Field(6, "new_address", "転入先住所", 200, Text()),
        Field(7, "move_in_date", "転入年月日", 8, Date()),
    ),
    "Sent by the new municipality's CS to the old one, routed by 市町村コード.",
)

MOVE_IN_DELIVERY = Layout(
    "move-in-delivery",
    "転入通知(既存住基宛)",
    (
        Field(1, "delivery_no", "配信番号", 12, Number(),
              note="the CS's number for this delivery to its existing system, from 1, no gaps"),
        Field(2, "notice", "転入通知", MOVE_IN_NOTICE.record_length, RawBytes(),
              note="the `move-in-notice` record as the CS received it"),
    ),
    "A 転入通知 about a former resident, handed by the old municipality's CS to its existing "
    "system (answer to MOVE_IN_NOTICE_FETCH).",
)

TENSHUTSU_SHOMEI = Layout(
    "tenshutsu-shomei",
    "転出証明書情報",
    (
        Field(1, "juminhyo_code", "住民票コード", 11, JUMINHYO),
        Field(2, "kojin_bango", "個人番号", 12, KOJIN, optional=True),
        Field(3, "kanji_name", "漢字氏名", 80, Text()),
        Field(4, "kana_name", "ふりがな氏名", 100, Kana()),
        Field(5, "birth_date", "生年月日", 8, Date()),
        Field(6, "sex", "性別", 1, Code(ct.SEX)),
        Field(7, "householder_name", "世帯主氏名", 80, Text(),
              note="the person's own name when the person is the 世帯主"),
        Field(8, "relationship", "続柄", 8, Code(ct.RELATIONSHIP), note="to the 世帯主"),
        Field(9, "old_lg_code", "転出元市町村コード", 6, LGC),
        Field(10, "old_address", "転出前住所", 200, Text()),
        Field(11, "new_lg_code", "転出先市町村コード", 6, LGC,
              note="the 市町村 the person declared moving to: the only one answered"),
        Field(12, "new_address", "転出先住所", 200, Text(), note="as declared at the 転出届"),
        Field(13, "move_out_date", "転出予定年月日", 8, Date(),
              note="the 異動年月日 of the 消除 sent at 転出確定"),
        Field(14, "notification_date", "転出届出年月日", 8, Date()),
        Field(15, "tokurei", "特例転出フラグ", 1, Code(ct.FLAG),
              note="1: moved out with the card (特例転出, 住基法24条の2); 0: a paper 転出証明書 was "
                   "issued"),
    ),
    "The 転出証明書情報 (住基法施行令24条): given by the old municipality's existing system to "
    "its CS at the 転出届 (TENSHUTSU_SHOMEI_NOTIFY), answered by that CS to the new "
    "municipality for a 特例転入 (TENSHUTSU_SHOMEI_RESPONSE).",
)

TENSHUTSU_SHOMEI_REQUEST = Layout(
    "tenshutsu-shomei-request",
    "転出証明書情報要求",
    (
        Field(1, "juminhyo_code", "住民票コード", 11, JUMINHYO, note="read from the card"),
        Field(2, "birth_date", "生年月日", 8, Date(), note="read from the card; must match"),
        Field(3, "old_lg_code", "転出元市町村コード", 6, LGC, note="routes the request"),
        Field(4, "new_lg_code", "転入先市町村コード", 6, LGC, note="the asking 市町村"),
        Field(5, "operator_id", "操作者ID", 16, ALNUM, optional=True,
              note="who asked; kept in the asking CS's refusals"),
        Field(6, "terminal_id", "操作端末ID", 16, ALNUM, optional=True),
    ),
    "A 特例転入: the new municipality asks the old one's CS for the person's 転出証明書情報, "
    "routed by 転出元市町村コード (CS → 都道府県 (→ 機構 → 都道府県) → CS).",
)

KOJIN_BANGO_REQUEST = Layout(
    "kojin-bango-request",
    "個人番号生成要求",
    (
        Field(1, "juminhyo_code", "住民票コード", 11, JUMINHYO),
        Field(2, "lg_code", "市町村コード", 6, LGC),
    ),
)

KOJIN_BANGO_RESPONSE = Layout(
    "kojin-bango-response",
    "個人番号生成応答",
    (
        Field(1, "juminhyo_code", "住民票コード", 11, JUMINHYO),
        Field(2, "kojin_bango", "個人番号", 12, KOJIN),
    ),
)

KOJIN_BANGO_CHANGE_REQUEST = Layout(
    "kojin-bango-change-request",
    "個人番号変更要求",
    (
        Field(1, "juminhyo_code", "住民票コード", 11, JUMINHYO),
        Field(2, "lg_code", "市町村コード", 6, LGC,
              note="the asking CS's own 市町村 (a prefecture relays its own CSs' requests)"),
        Field(3, "kojin_bango", "現個人番号", 12, KOJIN,
              note="the number to replace: 機構's number of that 住民票コード"),
    ),
    "A 個人番号変更 (番号法 7条2項): the person's 住民票コード and the number to replace; "
    "answered with a `kojin-bango-response` carrying the new number.",
)

SHORI_TSUBAN_NOTICE = Layout(
    "shori-tsuban-notice",
    "処理通番通知",
    (
        Field(1, "juminhyo_code", "住民票コード", 11, JUMINHYO),
        Field(2, "shori_tsuban", "処理通番", 16, fields.Digits(),
              note="the information provision network's number of one 符号 acquisition, as the "
                   "intermediate server told the municipality's linkage system"),
        Field(3, "lg_code", "市町村コード", 6, LGC, note="the sending municipality"),
    ),
    "A 住民票コード with the 処理通番 of a 符号 acquisition: 既存住基 → CS → 都道府県 → 機構, "
    "which keeps it until the network has taken it (`SHORI_TSUBAN_FETCH`).",
)

SHORI_TSUBAN_ACK = Layout(
    "shori-tsuban-ack",
    "処理通番受領",
    (Field(1, "shori_tsuban", "処理通番", 16, fields.Digits()),),
    "A 処理通番 whose pair the network has taken (機構 forgets it).",
)

#: 要求件数 of 住民票コード, in every request that carries it (a pool refill and a draw)
REQUEST_COUNT_WIDTH = 6

POOL_REQUEST = Layout(
    "pool-request",
    "住民票コード払出要求",
    (
        Field(1, "lg_code", "市町村コード", 6, LGC),
        Field(2, "count", "要求件数", REQUEST_COUNT_WIDTH, Number()),
    ),
)

POOL_ENTRY = Layout(
    "pool-entry", "未使用住民票コード", (Field(1, "juminhyo_code", "住民票コード", 11, JUMINHYO),)
)

#: The most 住民票コード one JUMINHYO_CODE_DRAW_REQUEST may ask the CS for.
MAX_CODE_DRAW = 100

JUMINHYO_CODE_DRAW_REQUEST = Layout(
    "juminhyo-code-draw-request",
    "住民票コード取得要求",
    (
        Field(1, "lg_code", "市町村コード", 6, LGC, note="the asking existing system's own 市町村, the CS's"),
        Field(2, "count", "要求件数", REQUEST_COUNT_WIDTH, Number(), note=f"1–{MAX_CODE_DRAW}"),
    ),
    "The existing system asks its CS for unused 住民票コード from the CS's pool; answered with "
    "`pool-entry` records.",
)

SEARCH_REQUEST = Layout(
    "search-request",
    "本人確認情報検索要求",
    (
        Field(1, "juminhyo_code", "住民票コード", 11, JUMINHYO, optional=True),
        Field(2, "kojin_bango", "個人番号", 12, KOJIN, optional=True),
        Field(3, "name", "氏名(漢字又はかな)", 120, Text(), optional=True),
        Field(4, "birth_date", "生年月日", 8, Date(), optional=True),
        Field(5, "address", "住所", 200, Text(), optional=True),
        Field(6, "sex", "性別", 1, Code(ct.SEX), optional=True),
        Field(7, "operator_id", "操作者ID", 16, ALNUM, optional=True,
              note="who searched; kept in the provision record"),
        Field(8, "terminal_id", "操作端末ID", 16, ALNUM, optional=True,
              note="where from; kept in the provision record"),
    ),
    "Empty items are not given; R3 decides whether what is given is narrow enough. The "
    "operator and terminal of the search are kept in its provision records (R5).",
)

SEARCH_HIT = Layout(
    "search-hit",
    "本人確認情報検索結果",
    (
        Field(1, "total", "該当件数", 9, Number(),
              note="current records matching the search in all, returned or not; the same in every "
                   "record of one answer"),
        Field(2, "truncated", "打切りフラグ", 1, Code(ct.FLAG),
              note="1 exactly when total > the answer's record_count (the search limit cut it); "
                   "the same in every record of one answer"),
        Field(3, "record", "本人確認情報", HONNIN_KAKUNIN.record_length, RawBytes(),
              note="one `honnin-kakunin` record, decoded and checked as that layout"),
    ),
    "One record of a search answer: the match counts, then one matching 本人確認情報. An answer "
    "holds the matches with the smallest 住民票コード, ascending, at most the answering node's "
    "search limit; no match is an answer of 0 records.",
)

CONSISTENCY_ENTRY = Layout(
    "consistency-entry",
    "整合性確認データ",
    (
        Field(1, "juminhyo_code", "住民票コード", 11, JUMINHYO),
        Field(2, "digest", "レコード要約(BLAKE2b-128)", 16, RawBytes()),
    ),
)

CONSISTENCY_DIFF = Layout(
    "consistency-diff",
    "整合性確認結果",
    (
        Field(1, "kind", "差異区分", 1, Code(DIFF_KIND)),
        Field(2, "juminhyo_code", "住民票コード", 11, JUMINHYO),
        Field(3, "peer_record", "相手側の本人確認情報", HONNIN_KAKUNIN.record_length, RawBytes(),
              optional=True, note="the peer's honnin-kakunin record for D and E; zeros for M"),
    ),
)

#: Every body layout of the links, by name (all registered with the codec's LAYOUTS below).
LAYOUTS: Mapping[str, Layout] = {
    lay.name: lay
    for lay in (
        HONNIN_KAKUNIN,
        SOUFUSAKI,
        MOVE_IN_NOTICE,
        MOVE_IN_DELIVERY,
        TENSHUTSU_SHOMEI,
        TENSHUTSU_SHOMEI_REQUEST,
        KOJIN_BANGO_REQUEST,
        KOJIN_BANGO_RESPONSE,
        KOJIN_BANGO_CHANGE_REQUEST,
        POOL_REQUEST,
        POOL_ENTRY,
        JUMINHYO_CODE_DRAW_REQUEST,
        SHORI_TSUBAN_NOTICE,
        SHORI_TSUBAN_ACK,
        SEARCH_REQUEST,
        SEARCH_HIT,
        CONSISTENCY_ENTRY,
        CONSISTENCY_DIFF,
    )
}
register_layouts(*LAYOUTS.values())  # get_codec runs them; docs/wire-format.md lists them

_CODECS: dict[str, RecordCodec] = {}


def codec_of(layout: Layout) -> RecordCodec:
    """The generated fast codec of a body layout on the Juki-net profile: the very codec
    ``get_codec(name, "jukinet")`` returns, cached here by name."""
    c = _CODECS.get(layout.name)
    if c is None:
        c = _CODECS[layout.name] = get_codec(layout.name)
    return c


def link_error(exc: CodecError) -> BadBody | BadCheckDigit:
    """The Juki-net refusal a peer is told for a codec error (5103 check digit, else 5108)."""
    if isinstance(exc, CodecBadCheckDigit):
        return BadCheckDigit(exc.message)
    return BadBody(exc.message)


def decode_body(layout: Layout, data: bytes) -> dict[str, Any]:
    """Decode and validate one record; a refusal is :class:`BadCheckDigit` or :class:`BadBody`."""
    try:
        return codec_of(layout).decode(data)
    except CodecError as exc:
        raise link_error(exc) from None


def decode_bodies(layout: Layout, body: bytes) -> list[dict[str, Any]]:
    """Decode a body holding a whole number of records."""
    try:
        return codec_of(layout).decode_many(body)
    except CodecError as exc:
        raise link_error(exc) from None


def encode_body(layout: Layout, values: Mapping[str, Any]) -> bytes:
    """Encode one record (derived items computed); a refusal is BadCheckDigit or BadBody."""
    try:
        return codec_of(layout).encode(dict(values))
    except CodecError as exc:
        raise link_error(exc) from None


def field_slice(layout: Layout, name: str) -> slice:
    """The byte range of one field (key extraction without a full decode)."""
    i = next(i for i, f in enumerate(layout.fields) if f.name == name)
    start = layout.offsets[i]
    return slice(start, start + layout.fields[i].width)
