"""The layout tables: one table per record, and the registry :data:`LAYOUTS`.

Item numbers and Japanese labels follow the seed's 別添2 (本人確認情報: 36 items, 送付先情報: 59 items)
and brief §4 (住民票関係情報 副本). Widths, encodings and code tables are the project's own wire
specification; everything else (construct Structs, the fast codec, ``docs/wire-format.md``, the
CLI's JSON field names, the golden vectors) is derived from these tables.
"""

from __future__ import annotations

from juki_gateway.codecs import codetables as ct
from juki_gateway.codecs.checkdigits import JUMINHYO_CODE, KOJIN_BANGO, LG_CODE
from juki_gateway.codecs.fields import (
    CheckDigitCode,
    Code,
    Date,
    Digits,
    FlagString,
    Magic,
    Number,
    Positions,
    Timestamp,
    UInt,
)
from juki_gateway.codecs.schema import (
    Field,
    GaijiCount,
    GaijiFlag,
    GaijiPattern,
    ItemLength,
    Layout,
    SeionKana,
    SubstitutePositions,
    SubstituteResult,
    SubstituteText,
)
from juki_gateway.codecs.textfields import (
    AsciiText,
    AsciiToken,
    Kana,
    Text,
    Utf8Text,
)


def register_layouts(*layouts: Layout) -> None:
    """Add the body layouts of a link whose tables live with its protocol module to :data:`LAYOUTS`.

    The intermediate server's bodies are tables of this module's model kept beside their
    protocol (``protocols/intermediate/messages.py``); once registered, ``get_codec`` runs them
    and ``docs/wire-format.md`` lists them. Registering a table twice is a no-op; a different
    table under a taken name is refused.
    """
    for layout in layouts:
        if LAYOUTS.setdefault(layout.name, layout) is not layout:
            raise ValueError(f"layout name {layout.name!r} is already taken")


NODE_ID = AsciiToken("0-9A-Za-z._-", "node id (ASCII letters, digits, '.', '_', '-')")

FRAME_MAGIC = b"JKGW"
FRAME_VERSION = 1

#: The frame envelope header (big-endian), see ``frame.py``.
FRAME_HEADER = Layout(
    "frame-header",
    "フレームヘッダ",
    (
        Field(1, "magic", "識別子", 4, Magic(FRAME_MAGIC)),
        Field(2, "version", "版数", 1, UInt()),
        Field(3, "msg_type", "電文種別", 2, UInt()),
        Field(4, "sender", "送信元ノード", 16, NODE_ID),
        Field(5, "receiver", "送信先ノード", 16, NODE_ID),
        Field(6, "request_no", "依頼管理番号", 8, UInt()),
        Field(7, "seq", "更新順番号", 8, UInt()),
        Field(8, "recovery_seq", "異常時更新順番号", 8, UInt()),
        Field(9, "timestamp", "タイムスタンプ", 14, Timestamp()),
        Field(10, "record_count", "レコード件数", 4, UInt()),
        Field(11, "body_length", "本文長", 4, UInt()),
        Field(12, "trailer_length", "署名トレーラ長", 2, UInt()),
    ),
    "Fixed-length envelope header in front of every frame's body records and signature trailer.",
)

#: The body of ERROR and NACK frames.
ERROR_RECORD = Layout(
    "error",
    "エラー情報",
    (
        Field(1, "error_code", "エラーコード", 4, Number()),
        Field(2, "error_name", "エラー名", 32, AsciiText()),
        Field(3, "detail", "詳細", 200, Utf8Text(), note="free text: any printable character"),
    ),
    "One record in ERROR and NACK bodies: the wire code, name and a readable detail.",
)

ALNUM = AsciiToken("0-9A-Za-z", "ASCII letters and digits")
PHONE = AsciiToken("0-9-", "telephone number (digits and '-')")
NATIONALITY = AsciiToken("A-Z", "ISO 3166-1 alpha-3 country code letters")
JUMINHYO = CheckDigitCode(JUMINHYO_CODE)
KOJIN = CheckDigitCode(KOJIN_BANGO)
LGC = CheckDigitCode(LG_CODE)
#: 団体内統合宛名番号: 15 ASCII digits in every layout that carries it (``docs/wire-format.md``,
#: "One width per item").
ATENA_NO_WIDTH = 15
ATENA_NO = Digits()


def is_atena_no(value: str) -> bool:
    """Whether ``value`` is a 団体内統合宛名番号: exactly 15 ASCII digits."""
    return len(value) == ATENA_NO_WIDTH and value.isascii() and value.isdigit()


#: 世帯番号: 12 ASCII digits in every layout that carries it.
SETAI_NO_WIDTH = 12
SETAI_NO = Digits()

#: 本人確認情報 (別添2 (2)): 36 items, 898 bytes.
HONNIN_KAKUNIN = Layout(
    "honnin-kakunin",
    "本人確認情報",
    (
        Field(1, "juminhyo_code", "住民票コード", 11, JUMINHYO),
        Field(2, "kanji_name", "漢字氏名", 80, Text()),
        Field(3, "kanji_name_gaiji_count", "外字数(氏名)", 2, Number(), derive=GaijiCount("kanji_name")),
        Field(4, "kana_name", "ふりがな氏名", 100, Kana()),
        Field(5, "seion_kana_name", "清音化かな氏名", 100, Kana(), derive=SeionKana("kana_name")),
        Field(6, "birth_date", "生年月日", 8, Date()),
        Field(7, "sex", "性別", 1, Code(ct.SEX)),
        Field(8, "lg_code", "市町村コード", 6, LGC),
        Field(9, "aza_code", "大字・字コード", 7, Digits()),
        Field(10, "postal_code", "郵便番号", 7, Digits()),
        Field(11, "address", "住所", 200, Text()),
        Field(12, "address_gaiji_count", "外字数(住所)", 2, Number(), derive=GaijiCount("address")),
        Field(13, "kojin_bango", "個人番号", 12, KOJIN, optional=True,
              note="empty until 機構 has generated the number"),
        Field(14, "resident_since", "住民となった日", 8, Date()),
        Field(15, "address_since", "住所を定めた日", 8, Date()),
        Field(16, "notification_date", "届出の年月日", 8, Date()),
        Field(17, "previous_lg_code", "市町村コード(転入前)", 6, LGC, optional=True),
        Field(18, "previous_address", "転入前住所", 200, Text(), optional=True),
        Field(19, "previous_address_gaiji_count", "外字数(転入前住所)", 2, Number(),
              derive=GaijiCount("previous_address")),
        Field(20, "relationship", "続柄", 8, Code(ct.RELATIONSHIP)),
        Field(21, "change_reason", "異動事由", 2, Code(ct.CHANGE_REASON)),
        Field(22, "change_date", "異動年月日", 8, Date()),
        Field(23, "change_reason_detail", "異動事由詳細", 2, Code(ct.CHANGE_REASON_DETAIL)),
        Field(24, "old_juminhyo_code", "旧住民票コード", 11, JUMINHYO, optional=True),
        Field(25, "juminhyo_code_since", "住民票コード使用年月日", 8, Date()),
        Field(26, "request_no", "依頼管理番号", 16, Digits()),
        Field(27, "operator_id", "操作者ID", 16, ALNUM),
        Field(28, "terminal_id", "操作端末ID", 16, ALNUM),
        Field(29, "seq", "更新順番号", 12, Number()),
        Field(30, "recovery_seq", "異常時更新順番号", 12, Number()),
        Field(31, "update_lock_flag", "更新禁止フラグ", 1, Code(ct.FLAG)),
        Field(32, "scheduled_flag", "予定者フラグ", 1, Code(ct.FLAG)),
        Field(33, "exclusive_flag", "排他フラグ", 1, Code(ct.FLAG)),
        Field(34, "gaiji_flag", "外字フラグ", 1, Code(ct.FLAG),
              derive=GaijiFlag("kanji_name", "address", "previous_address")),
        Field(35, "record_status_flag", "レコード状況フラグ", 1, Code(ct.RECORD_STATUS)),
        Field(36, "timestamp", "タイムスタンプ", 14, Timestamp()),
    ),
    "The identity-confirmation record a municipal CS keeps and notifies to its prefecture and 機構.",
)

_SOUFUSAKI_GAIJI = (
    "dest_address", "dest_name", "lg_address", "issue_place_name", "issue_place_address",
    "card_dest_name", "card_dest_address", "kanji_name", "address",
)


def _text_group(no: int, name: str, label: str, width: int, *, gaiji: bool = True,
                optional: bool = False) -> list[Field]:
    """項目長, value and (when ``gaiji``) 外字数 of one double-byte item, numbered from ``no``."""
    group = [
        Field(no, f"{name}_length", f"{label} 項目長", 3, Number(), derive=ItemLength(name)),
        Field(no + 1, name, label, width, Text(), optional=optional),
    ]
    if gaiji:
        group.append(Field(no + 2, f"{name}_gaiji_count", f"{label} 外字数", 2, Number(),
                           derive=GaijiCount(name)))
    return group


#: 送付先情報 (別添2 (3)): 59 items, sent from the CS to 機構's card management system.
SOUFUSAKI = Layout(
    "soufusaki",
    "送付先情報",
    (
        Field(1, "soufusaki_no", "送付先管理番号", 12, Digits()),
        Field(2, "dest_postal_code", "送付先郵便番号", 7, Digits()),
        *_text_group(3, "dest_address", "送付先住所 漢字", 200),
        *_text_group(6, "dest_name", "送付先氏名 漢字", 80),
        Field(9, "lg_code", "市町村コード", 6, LGC),
        *_text_group(10, "lg_name", "市町村名", 40, gaiji=False),
        Field(12, "lg_postal_code", "市町村郵便番号", 7, Digits()),
        *_text_group(13, "lg_address", "市町村住所", 200),
        *_text_group(16, "issue_place_name", "交付場所名", 80),
        *_text_group(19, "issue_place_address", "交付場所住所", 200),
        Field(22, "issue_place_phone", "交付場所電話番号", 15, PHONE),
        *_text_group(23, "card_dest_name", "カード送付場所名", 80, optional=True),
        Field(26, "card_dest_postal_code", "カード送付場所郵便番号", 7, Digits(), optional=True),
        *_text_group(27, "card_dest_address", "カード送付場所住所", 200, optional=True),
        Field(30, "card_dest_phone", "カード送付場所電話番号", 15, PHONE, optional=True),
        Field(31, "person_count", "対象となる人数", 3, Number()),
        Field(32, "processing_date", "処理年月日", 8, Date()),
        Field(33, "operator_id", "操作者ID", 16, ALNUM),
        Field(34, "terminal_id", "操作端末ID", 16, ALNUM),
        Field(35, "print_class", "印刷区分", 1, Code(ct.PRINT_CLASS)),
        Field(36, "juminhyo_code", "住民票コード", 11, JUMINHYO),
        Field(37, "kanji_name_length", "氏名 漢字項目長", 3, Number(), derive=ItemLength("kanji_name")),
        Field(38, "kanji_name", "氏名 漢字", 80, Text()),
        Field(39, "kanji_name_gaiji_count", "氏名 漢字 外字数", 2, Number(), derive=GaijiCount("kanji_name")),
        Field(40, "kana_name_length", "氏名 かな項目長", 3, Number(), derive=ItemLength("kana_name")),
        Field(41, "kana_name", "氏名 かな", 100, Kana()),
        Field(42, "postal_code", "郵便番号", 7, Digits()),
        *_text_group(43, "address", "住所", 200),
        Field(46, "birth_date", "生年月日", 8, Date()),
        Field(47, "sex", "性別", 1, Code(ct.SEX)),
        Field(48, "kojin_bango", "個人番号", 12, KOJIN),
        Field(49, "foreign_resident_class", "第30条の45に規定する区分", 1, Code(ct.FOREIGN_CLASS),
              optional=True, note="foreign residents only"),
        Field(50, "residence_expiry_date", "在留期間の満了の日", 8, Date(), optional=True,
              note="foreign residents only"),
        Field(51, "substitute_result", "代替文字変換結果", 1, Code(ct.SUBSTITUTE_RESULT),
              derive=SubstituteResult("kanji_name", "address")),
        Field(52, "substitute_name_length", "代替文字氏名 項目長", 3, Number(),
              derive=ItemLength("substitute_name")),
        Field(53, "substitute_name", "代替文字氏名", 80, Text(), derive=SubstituteText("kanji_name")),
        Field(54, "substitute_address_length", "代替文字住所 項目長", 3, Number(),
              derive=ItemLength("substitute_address")),
        Field(55, "substitute_address", "代替文字住所", 200, Text(), derive=SubstituteText("address")),
        Field(56, "substitute_name_positions", "代替文字氏名位置情報", 30, Positions(),
              derive=SubstitutePositions("kanji_name")),
        Field(57, "substitute_address_positions", "代替文字住所位置情報", 30, Positions(),
              derive=SubstitutePositions("address")),
        Field(58, "gaiji_flag", "外字フラグ", 1, Code(ct.FLAG), derive=GaijiFlag(*_SOUFUSAKI_GAIJI)),
        Field(59, "gaiji_pattern", "外字パターン", 9, FlagString(), derive=GaijiPattern(*_SOUFUSAKI_GAIJI),
              note="one flag per item, in this order: " + ", ".join(_SOUFUSAKI_GAIJI)
                   + " (docs/wire-format.md, \"外字パターン\")"),
    ),
    "The delivery-destination record the CS sends to 機構's card management system.",
)

#: 住民票関係情報 副本 (brief §4): what the intermediate server may provide, keyed by 宛名番号.
FUKUHON_JUMINHYO = Layout(
    "fukuhon-juminhyo",
    "住民票関係情報 副本",
    (
        Field(1, "atena_no", "団体内統合宛名番号", ATENA_NO_WIDTH, ATENA_NO),
        Field(2, "setai_no", "世帯番号", SETAI_NO_WIDTH, SETAI_NO),
        Field(3, "kanji_name", "氏名", 80, Text()),
        Field(4, "kanji_name_gaiji_count", "外字数(氏名)", 2, Number(), derive=GaijiCount("kanji_name")),
        Field(5, "birth_date", "生年月日", 8, Date()),
        Field(6, "sex", "性別", 1, Code(ct.SEX)),
        Field(7, "relationship", "続柄", 8, Code(ct.RELATIONSHIP)),
        Field(8, "address", "住所", 200, Text()),
        Field(9, "address_gaiji_count", "外字数(住所)", 2, Number(), derive=GaijiCount("address")),
        Field(10, "resident_since", "住民となった年月日", 8, Date()),
        Field(11, "householder_name", "世帯主情報(氏名)", 80, Text()),
        Field(12, "householder_name_gaiji_count", "外字数(世帯主)", 2, Number(),
              derive=GaijiCount("householder_name")),
        Field(13, "resident_class", "住民区分", 1, Code(ct.RESIDENT_CLASS)),
        Field(14, "nationality", "国籍", 3, NATIONALITY, optional=True, note="foreign residents only"),
        Field(15, "residence_status", "在留資格", 2, Code(ct.RESIDENCE_STATUS), optional=True,
              note="foreign residents only"),
        Field(16, "residence_period", "在留期間", 4, Digits(), optional=True,
              note="YYMM (years, months); foreign residents only"),
        Field(17, "residence_expiry_date", "在留期間の満了の日", 8, Date(), optional=True,
              note="foreign residents only"),
        Field(18, "foreign_resident_class", "法30条の45区分", 1, Code(ct.FOREIGN_CLASS), optional=True,
              note="foreign residents only"),
        Field(19, "alias_name", "通称", 80, Text(), optional=True,
              note="foreign residents only: the 通称 recorded on the 住民票"),
        Field(20, "alias_name_gaiji_count", "外字数(通称)", 2, Number(), derive=GaijiCount("alias_name")),
        Field(21, "former_surname", "旧氏", 40, Text(), optional=True,
              note="the 旧氏 recorded on the 住民票 at the person's request (Japanese residents)"),
        Field(22, "former_surname_gaiji_count", "外字数(旧氏)", 2, Number(),
              derive=GaijiCount("former_surname")),
    ),
    "The 副本 of 住民票関係情報 the intermediate server answers information queries from.",
)

#: Every layout by name; the record layouts are the ones with a JSON form in the CLI.
LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (HONNIN_KAKUNIN, SOUFUSAKI, FUKUHON_JUMINHYO, FRAME_HEADER, ERROR_RECORD)
}
RECORD_LAYOUTS: tuple[str, ...] = (HONNIN_KAKUNIN.name, SOUFUSAKI.name, FUKUHON_JUMINHYO.name)
#: The codec's own layouts; the others in :data:`LAYOUTS` were added by :func:`register_layouts`.
CODEC_LAYOUT_NAMES: tuple[str, ...] = tuple(LAYOUTS)
