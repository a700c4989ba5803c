"""Message types and body layouts of the intermediate-server links (bango-renkei, ipnw).

The message types take the range 0x0600–0x06FF of the one message catalogue, which
``juki_gateway/protocols/catalogue.py`` builds from :data:`IMS_MESSAGES` and the other tables
(the admin port's types, 0x06A1–0x06A2, are in :mod:`.admin_messages`). Each
body is whole records of one fixed-width layout: a table of the record codec's fields
(``codecs/schema.py``), registered with the codec and run through ``get_codec`` by
:class:`~juki_gateway.protocols.intermediate.bodies.ImsBody`. The permission list, whose entry
count varies inside one signed blob, is a byte body (record length 1) parsed by
:mod:`juki_gateway.protocols.intermediate.permission_list`; 副本 registration carries the
codec's ``fukuhon-juminhyo`` records.

Every frame on an intermediate-server link carries a 64-byte signature trailer (R11) made by
:func:`juki_gateway.protocols.intermediate.crypto.sign` over the frame without its trailer.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

from juki_gateway.codecs.fields import Digits, FlagString, Magic, RawBytes, Timestamp, UInt
from juki_gateway.codecs.layouts import ALNUM, ATENA_NO, ATENA_NO_WIDTH, NODE_ID
from juki_gateway.codecs.messages import MessageSpec, message_table
from juki_gateway.codecs.schema import Field, Layout
from juki_gateway.codecs.textfields import AsciiText, AsciiToken
from juki_gateway.protocols.intermediate.bodies import PROFILE, ImsBody
from juki_gateway.protocols.intermediate.crypto import SEAL_OVERHEAD, SIGNATURE_LENGTH
from juki_gateway.protocols.intermediate.fukuhon import FUKUHON_LAYOUT
from juki_gateway.protocols.intermediate.items import ANSWER_ITEMS_LAYOUT, MASK_WIDTH


class ImsMessageType(IntEnum):
    """Message types of the intermediate-server links."""

    FUGO_REQUEST = 0x0601  # bango-renkei -> ims: a 符号 for a new 団体内統合宛名番号
    FUGO_RESPONSE = 0x0602  # ims -> bango-renkei: the 符号, or pending (with the 処理通番)
    FUGO_ISSUE_RESPONSE = 0x0604  # ipnw -> ims: the 符号 issued under a 処理通番
    SHORI_TSUBAN_REQUEST = 0x0605  # ims -> ipnw: issue a 処理通番 for a 符号 request
    SHORI_TSUBAN_ISSUE = 0x0606  # ipnw -> ims: the 処理通番 of a 符号 request
    FUKUHON_REGISTER = 0x0611  # bango-renkei -> ims: 副本 records
    FUKUHON_REPORT = 0x0612  # ims -> bango-renkei: one result per 副本 record
    PERMISSION_LIST = 0x0621  # ipnw -> ims: signed, versioned 照会許可照会リスト
    PERMISSION_LIST_RESULT = 0x0622  # ims -> ipnw
    INFO_QUERY = 0x0631  # ipnw -> ims: information query with a signed permit
    QUERY_RESULT = 0x0632  # ims -> ipnw: answered / held / refused / released / 不開示


class QueryStatus(IntEnum):
    """The status of a query result as the requester sees it."""

    ANSWERED = 0  # answered automatically
    HELD = 1  # held for manual response: no data
    REFUSED = 2  # refused with a reason code: no data
    RELEASED = 3  # answered after an operator reviewed it
    WITHHELD = 4  # 不開示: refused by an operator after review: no data


FUGO_WIDTH = 32
SHORI_TSUBAN_WIDTH = 16
REQUEST_ID_WIDTH = 16
NODE_WIDTH = 16
PERMIT_ID_WIDTH = 32

#: 符号 on these links: ASCII letters and digits. 団体内統合宛名番号 is the 副本's: 15 digits.
FUGO = ALNUM
#: permit ids: like node ids (letters, digits, '.', '_', '-').
PERMIT_ID = AsciiToken("0-9A-Za-z._-", "permit id (ASCII letters, digits, '.', '_', '-')")
ITEMS_MASK = FlagString()
KOUBAN = Digits()
RESULT_CODE = Digits()
#: 処理通番: the network's number of one 符号 acquisition (16 digits).
SHORI_TSUBAN = Digits()


def _permit_fields() -> tuple[Field, ...]:
    return (
        Field(1, "permit_id", "許可証ID", PERMIT_ID_WIDTH, PERMIT_ID),
        Field(2, "requester", "照会者", NODE_WIDTH, NODE_ID),
        Field(3, "provider", "提供者", NODE_WIDTH, NODE_ID),
        Field(4, "kouban", "主務省令第2条 項番", 3, KOUBAN),
        Field(5, "items", "照会項目", MASK_WIDTH, ITEMS_MASK, note="bit n = 副本 item n"),
        Field(6, "fugo", "符号", FUGO_WIDTH, FUGO),
        Field(7, "issued", "発行日時", 14, Timestamp(), note="UTC"),
        Field(8, "expires", "有効期限", 14, Timestamp(), note="UTC"),
        Field(9, "requester_key", "照会者公開鍵", 65, RawBytes(),
              note="P-256 key the answer is sealed to (route information)"),
    )


PERMIT_UNSIGNED_LAYOUT = ImsBody(Layout(
    "permit-unsigned", "情報提供許可証 (署名対象)", _permit_fields(),
    "The fields of a provision permit the network signs.",
))
PERMIT_LAYOUT = ImsBody(Layout(
    "permit", "情報提供許可証",
    (*_permit_fields(), Field(10, "signature", "署名", SIGNATURE_LENGTH, RawBytes(),
                              note="raw ECDSA P-256 r ‖ s by the network")),
    "A provision permit: its unsigned fields, then the network's signature.",
))
INFO_QUERY_LAYOUT = ImsBody(Layout(
    "info-query", "情報照会",
    (
        Field(1, "fugo", "符号", FUGO_WIDTH, FUGO),
        Field(2, "kouban", "主務省令第2条 項番", 3, KOUBAN),
        Field(3, "items", "照会項目", MASK_WIDTH, ITEMS_MASK),
        Field(4, "route", "経路情報", NODE_WIDTH, NODE_ID, note="the requester node to deliver to"),
        Field(5, "permit", "情報提供許可証", PERMIT_LAYOUT.length, RawBytes(), note="a `permit` record"),
    ),
    "An information query from ipnw with its signed permit.",
))

SEALED_ANSWER_LENGTH = SEAL_OVERHEAD + ANSWER_ITEMS_LAYOUT.length
QUERY_RESULT_LAYOUT = ImsBody(Layout(
    "query-result", "照会結果",
    (
        Field(1, "permit_id", "許可証ID", PERMIT_ID_WIDTH, PERMIT_ID),
        Field(2, "requester", "照会者", NODE_WIDTH, NODE_ID),
        Field(3, "status", "状態", 1, Digits(), note="QueryStatus (docs/intermediate.md)"),
        Field(4, "reason_code", "理由コード", 4, RESULT_CODE),
        Field(5, "items", "回答項目", MASK_WIDTH, ITEMS_MASK),
        Field(6, "sealed", "暗号化回答", SEALED_ANSWER_LENGTH, RawBytes(),
              note="sealed `answer-items`; zeros unless answered or released"),
    ),
    "The result of one information query: answered (sealed), held, refused, released, 不開示.",
))

#: The domain separator opening the HPKE ``info`` of every sealed answer.
ANSWER_DOMAIN = b"JKGW answer v2\x00"
ANSWER_INFO_LAYOUT = ImsBody(Layout(
    "answer-info", "暗号化回答 info",
    (
        Field(1, "domain", "領域分離子", len(ANSWER_DOMAIN), Magic(ANSWER_DOMAIN)),
        Field(2, "permit_id", "許可証ID", PERMIT_ID_WIDTH, PERMIT_ID,
              note="as in the `query-result` and `permit` records"),
        Field(3, "provider", "提供者", NODE_WIDTH, NODE_ID, note="the permit's provider"),
        Field(4, "requester", "照会者", NODE_WIDTH, NODE_ID,
              note="as in the `query-result` and `permit` records"),
    ),
    "The HPKE `info` a sealed answer is bound to (never sent: both sides build it).",
))

FUGO_REQUEST_LAYOUT = ImsBody(Layout(
    "fugo-request", "符号取得要求",
    (
        Field(1, "atena_no", "団体内統合宛名番号", ATENA_NO_WIDTH, ATENA_NO),
    ),
    "bango-renkei asks for the 符号 of a 団体内統合宛名番号 (never with a 住民票コード: the "
    "intermediate server holds none).",
))
FUGO_RESPONSE_LAYOUT = ImsBody(Layout(
    "fugo-response", "符号取得応答",
    (
        Field(1, "atena_no", "団体内統合宛名番号", ATENA_NO_WIDTH, ATENA_NO),
        Field(2, "fugo", "符号", FUGO_WIDTH, FUGO, optional=True, note="empty unless result 0000"),
        Field(3, "shori_tsuban", "処理通番", SHORI_TSUBAN_WIDTH, SHORI_TSUBAN, optional=True,
              note="with result 6608 once the network issued it: the 住民票コード goes to 機構 "
                   "with it (SHORI_TSUBAN_NOTIFY); empty before"),
        Field(4, "result_code", "結果コード", 4, RESULT_CODE),
    ),
    "The 符号, or the reason there is none yet (pending: with the 処理通番 once known).",
))
SHORI_TSUBAN_REQUEST_LAYOUT = ImsBody(Layout(
    "shori-tsuban-request", "処理通番払出要求",
    (
        Field(1, "organisation", "団体", NODE_WIDTH, NODE_ID),
        Field(2, "request_id", "依頼番号", REQUEST_ID_WIDTH, ALNUM,
              note="the intermediate server's own reference of one 符号 request (names nobody)"),
    ),
    "The intermediate server asks ipnw for a 処理通番 for one 符号 request.",
))
SHORI_TSUBAN_ISSUE_LAYOUT = ImsBody(Layout(
    "shori-tsuban-issue", "処理通番払出",
    (
        Field(1, "organisation", "団体", NODE_WIDTH, NODE_ID),
        Field(2, "request_id", "依頼番号", REQUEST_ID_WIDTH, ALNUM, note="as in the request"),
        Field(3, "shori_tsuban", "処理通番", SHORI_TSUBAN_WIDTH, SHORI_TSUBAN),
    ),
    "The 処理通番 ipnw issued for a 符号 request.",
))
FUGO_ISSUE_RESPONSE_LAYOUT = ImsBody(Layout(
    "fugo-issue-response", "符号発行通知",
    (
        Field(1, "organisation", "団体", NODE_WIDTH, NODE_ID),
        Field(2, "shori_tsuban", "処理通番", SHORI_TSUBAN_WIDTH, SHORI_TSUBAN),
        Field(3, "fugo", "符号", FUGO_WIDTH, FUGO),
    ),
    "The 符号 ipnw issued once 機構 passed it the 住民票コード of that 処理通番.",
))
FUKUHON_REPORT_LAYOUT = ImsBody(Layout(
    "fukuhon-report", "副本登録結果",
    (
        Field(1, "index", "レコード番号", 4, UInt(), note="0-based, in the registered body"),
        Field(2, "atena_no", "団体内統合宛名番号", ATENA_NO_WIDTH, ATENA_NO, optional=True,
              note="the record's first 15 bytes when they are 15 digits, else blank (`index` "
                   "names the record)"),
        Field(3, "result_code", "結果コード", 4, RESULT_CODE),
        Field(4, "detail", "詳細", 120, AsciiText()),
    ),
    "One result per registered 副本 record.",
))
PERMISSION_LIST_RESULT_LAYOUT = ImsBody(Layout(
    "permission-list-result", "照会許可照会リスト受領結果",
    (
        Field(1, "version", "版", 8, UInt()),
        Field(2, "result_code", "結果コード", 4, RESULT_CODE),
        Field(3, "kept_version", "保持する版", 8, UInt()),
    ),
    "A distributed permission list accepted or refused, and why.",
))
#: The permission list (a byte body): this header, ``entry_count`` entries, the signature.
PERMISSION_LIST_HEADER_LAYOUT = ImsBody(Layout(
    "permission-list-header", "照会許可照会リスト ヘッダ",
    (
        Field(1, "version", "版", 8, UInt()),
        Field(2, "issued", "作成日時", 14, Timestamp(), note="UTC"),
        Field(3, "entry_count", "件数", 4, UInt()),
    ),
    "The head of a distributed permission list: its version, when it was made, how many entries.",
))
PERMISSION_LIST_ENTRY_LAYOUT = ImsBody(Layout(
    "permission-list-entry", "照会許可照会リスト 明細",
    (
        Field(1, "requester", "照会者", NODE_WIDTH, NODE_ID),
        Field(2, "kouban", "主務省令第2条 項番", 3, KOUBAN),
        Field(3, "items", "照会可能項目", MASK_WIDTH, ITEMS_MASK),
    ),
    "One row: the requester may receive these items under this 項.",
))

#: The intermediate-server entries of the catalogue, by type (an immutable table).
IMS_MESSAGES: Mapping[int, MessageSpec] = message_table({
    ImsMessageType.FUGO_REQUEST: MessageSpec(
        "FUGO_REQUEST", FUGO_REQUEST_LAYOUT.name, "符号 request for a new 団体内統合宛名番号", PROFILE
    ),
    ImsMessageType.FUGO_RESPONSE: MessageSpec(
        "FUGO_RESPONSE", FUGO_RESPONSE_LAYOUT.name, "the 符号 (or the reason there is none)", PROFILE
    ),
    ImsMessageType.FUGO_ISSUE_RESPONSE: MessageSpec(
        "FUGO_ISSUE_RESPONSE", FUGO_ISSUE_RESPONSE_LAYOUT.name,
        "the 符号 ipnw issued, by 処理通番", PROFILE
    ),
    ImsMessageType.SHORI_TSUBAN_REQUEST: MessageSpec(
        "SHORI_TSUBAN_REQUEST", SHORI_TSUBAN_REQUEST_LAYOUT.name,
        "ask ipnw for a 処理通番 (delivered on ipnw's PING)", PROFILE
    ),
    ImsMessageType.SHORI_TSUBAN_ISSUE: MessageSpec(
        "SHORI_TSUBAN_ISSUE", SHORI_TSUBAN_ISSUE_LAYOUT.name,
        "the 処理通番 ipnw issued for a 符号 request", PROFILE
    ),
    ImsMessageType.FUKUHON_REGISTER: MessageSpec(
        "FUKUHON_REGISTER", FUKUHON_LAYOUT, "副本 records to register (R12 checked)", PROFILE
    ),
    ImsMessageType.FUKUHON_REPORT: MessageSpec(
        "FUKUHON_REPORT", FUKUHON_REPORT_LAYOUT.name, "one result per registered 副本 record", PROFILE
    ),
    ImsMessageType.PERMISSION_LIST: MessageSpec(
        "PERMISSION_LIST", None, "signed, versioned 照会許可照会リスト (byte body)", PROFILE, byte_body=True
    ),
    ImsMessageType.PERMISSION_LIST_RESULT: MessageSpec(
        "PERMISSION_LIST_RESULT", PERMISSION_LIST_RESULT_LAYOUT.name, "accepted or refused, and why", PROFILE
    ),
    ImsMessageType.INFO_QUERY: MessageSpec(
        "INFO_QUERY", INFO_QUERY_LAYOUT.name, "information query with its signed permit", PROFILE
    ),
    ImsMessageType.QUERY_RESULT: MessageSpec(
        "QUERY_RESULT", QUERY_RESULT_LAYOUT.name, "answer (sealed), held, refused, released, 不開示", PROFILE
    ),
})
