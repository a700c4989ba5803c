"""Message types and body layouts of the intermediate-server links (bango-renkei, ipnw).

The message types extend the frame envelope's catalogue (``juki_gateway.codecs.messages``) in
the range 0x0600–0x06FF. Each body is whole records of one fixed-width layout defined here as a
table; :data:`RECORD_LENGTHS` gives the frame decoder the record length per type. The permission
list, whose entry count varies inside one signed blob, is carried as a byte body (record length
1) and parsed by :mod:`juki_gateway.protocols.intermediate.permission_list`.

Every frame on an intermediate-server link carries a 64-byte signature trailer (R11) made by
:func:`juki_gateway.protocols.intermediate.crypto.sign` over the frame without its trailer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from juki_gateway.protocols.intermediate.crypto import SEAL_OVERHEAD, SIGNATURE_LENGTH
from juki_gateway.protocols.intermediate.fukuhon import FUKUHON_RECORD_LENGTH
from juki_gateway.protocols.intermediate.items import ANSWER_ITEMS_LAYOUT, MASK_WIDTH
from juki_gateway.protocols.intermediate.layout import Field, Layout


class ImsMessageType(IntEnum):
    """Message types of the intermediate-server links."""

    FUGO_REQUEST = 0x0601  # bango-renkei -> ims: a 符号 for a new 団体内統合宛名番号
    FUGO_RESPONSE = 0x0602  # ims -> bango-renkei
    FUGO_ISSUE_REQUEST = 0x0603  # ims -> ipnw: issue our organisation's 符号 for a person
    FUGO_ISSUE_RESPONSE = 0x0604  # ipnw -> ims
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


ATENA_WIDTH = 16
FUGO_WIDTH = 32
NODE_WIDTH = 16
PERMIT_ID_WIDTH = 32

PERMIT_UNSIGNED_FIELDS: tuple[Field, ...] = (
    Field("permit_id", PERMIT_ID_WIDTH, "ascii"),
    Field("requester", NODE_WIDTH, "ascii"),
    Field("provider", NODE_WIDTH, "ascii"),
    Field("kouban", 3, "digits"),
    Field("items", MASK_WIDTH, "mask"),
    Field("fugo", FUGO_WIDTH, "ascii"),
    Field("issued", 14, "digits"),
    Field("expires", 14, "digits"),
    Field("requester_key", 65, "raw"),
)
PERMIT_UNSIGNED_LAYOUT = Layout("permit-unsigned", PERMIT_UNSIGNED_FIELDS)
PERMIT_LAYOUT = Layout(
    "permit", (*PERMIT_UNSIGNED_FIELDS, Field("signature", SIGNATURE_LENGTH, "raw"))
)

INFO_QUERY_LAYOUT = Layout(
    "info-query",
    (
        Field("fugo", FUGO_WIDTH, "ascii"),
        Field("kouban", 3, "digits"),
        Field("items", MASK_WIDTH, "mask"),
        Field("route", NODE_WIDTH, "ascii"),  # 経路情報: the requester node to deliver to
        Field("permit", PERMIT_LAYOUT.length, "raw"),
    ),
)

SEALED_ANSWER_LENGTH = SEAL_OVERHEAD + ANSWER_ITEMS_LAYOUT.length
QUERY_RESULT_LAYOUT = Layout(
    "query-result",
    (
        Field("permit_id", PERMIT_ID_WIDTH, "ascii"),
        Field("requester", NODE_WIDTH, "ascii"),
        Field("status", 1, "digits"),
        Field("reason_code", 4, "digits"),
        Field("items", MASK_WIDTH, "mask"),
        Field("sealed", SEALED_ANSWER_LENGTH, "raw"),  # zeros unless answered or released
    ),
)

FUGO_REQUEST_LAYOUT = Layout(
    "fugo-request",
    (Field("atena_no", ATENA_WIDTH, "ascii"), Field("juminhyo_code", 11, "digits")),
)
FUGO_RESPONSE_LAYOUT = Layout(
    "fugo-response",
    (
        Field("atena_no", ATENA_WIDTH, "ascii"),
        Field("fugo", FUGO_WIDTH, "ascii"),
        Field("result_code", 4, "digits"),
    ),
)
FUGO_ISSUE_REQUEST_LAYOUT = Layout(
    "fugo-issue-request",
    (Field("organisation", NODE_WIDTH, "ascii"), Field("juminhyo_code", 11, "digits")),
)
FUGO_ISSUE_RESPONSE_LAYOUT = Layout(
    "fugo-issue-response",
    (
        Field("organisation", NODE_WIDTH, "ascii"),
        Field("juminhyo_code", 11, "digits"),
        Field("fugo", FUGO_WIDTH, "ascii"),
    ),
)
FUKUHON_REPORT_LAYOUT = Layout(
    "fukuhon-report",
    (
        Field("index", 4, "uint"),
        Field("atena_no", ATENA_WIDTH, "ascii"),
        Field("result_code", 4, "digits"),
        Field("detail", 120, "ascii"),
    ),
)
PERMISSION_LIST_RESULT_LAYOUT = Layout(
    "permission-list-result",
    (
        Field("version", 8, "uint"),
        Field("result_code", 4, "digits"),
        Field("kept_version", 8, "uint"),
    ),
)


@dataclass(frozen=True, slots=True)
class ImsMessageSpec:
    """Catalogue entry: name, body layout (None = byte body) and description."""

    name: str
    body_layout: Layout | None
    description: str
    codec_layout: str | None = None  # a record layout of juki_gateway.codecs instead


IMS_CATALOGUE: dict[int, ImsMessageSpec] = {
    ImsMessageType.FUGO_REQUEST: ImsMessageSpec(
        "fugo-request", FUGO_REQUEST_LAYOUT, "符号 request for a new 団体内統合宛名番号"
    ),
    ImsMessageType.FUGO_RESPONSE: ImsMessageSpec(
        "fugo-response", FUGO_RESPONSE_LAYOUT, "the 符号 (or the reason there is none)"
    ),
    ImsMessageType.FUGO_ISSUE_REQUEST: ImsMessageSpec(
        "fugo-issue-request", FUGO_ISSUE_REQUEST_LAYOUT, "ask ipnw to issue our 符号"
    ),
    ImsMessageType.FUGO_ISSUE_RESPONSE: ImsMessageSpec(
        "fugo-issue-response", FUGO_ISSUE_RESPONSE_LAYOUT, "the 符号 ipnw issued"
    ),
    ImsMessageType.FUKUHON_REGISTER: ImsMessageSpec(
        "fukuhon-register",
        None,
        "副本 records to register: the codec's fukuhon-juminhyo layout (R12 checked)",
        codec_layout="fukuhon-juminhyo",
    ),
    ImsMessageType.FUKUHON_REPORT: ImsMessageSpec(
        "fukuhon-report", FUKUHON_REPORT_LAYOUT, "one result per registered 副本 record"
    ),
    ImsMessageType.PERMISSION_LIST: ImsMessageSpec(
        "permission-list", None, "signed, versioned 照会許可照会リスト (byte body)"
    ),
    ImsMessageType.PERMISSION_LIST_RESULT: ImsMessageSpec(
        "permission-list-result", PERMISSION_LIST_RESULT_LAYOUT, "accepted or refused, and why"
    ),
    ImsMessageType.INFO_QUERY: ImsMessageSpec(
        "info-query", INFO_QUERY_LAYOUT, "information query with its signed permit"
    ),
    ImsMessageType.QUERY_RESULT: ImsMessageSpec(
        "query-result", QUERY_RESULT_LAYOUT, "answer (sealed), held, refused, released, 不開示"
    ),
}

#: msg_type -> record length for the frame decoder (1 = a byte body).
RECORD_LENGTHS: dict[int, int] = {
    int(t): (
        spec.body_layout.length
        if spec.body_layout is not None
        else FUKUHON_RECORD_LENGTH
        if spec.codec_layout == "fukuhon-juminhyo"
        else 1
    )
    for t, spec in IMS_CATALOGUE.items()
}
