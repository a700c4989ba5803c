"""The Juki-net message types: the links' table of entries for the one message catalogue.

Types 0x0101–0x0164 are defined here in :data:`JUKINET_MESSAGES`: type code, 名称, direction
(for a request or notice: which role takes it from which roles), body layout (tables of
:mod:`.layouts`, registered with the codec there), responses, whether the type is sequenced, and
the error classes a receiver answers it with. The links use the base types of the codec too
(ERROR, PING, PONG, ACK, NACK). ``juki_gateway/protocols/catalogue.py`` builds the one catalogue
from this table and the other links'; what the links read from here are views of the same
entries: :data:`JUKINET_MESSAGES` (also :data:`BY_TYPE`), :data:`SEQUENCED_TYPES`,
:data:`ACCEPTS` (receiving role, type → sender roles) and :func:`record_lengths`, the frame
decoder's table. ``docs/messages.md``, ``docs/wire-format.md`` (``python -m juki_gateway.docs``)
and ``tests/vectors/jukinet/`` are generated from the same catalogue.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

from juki_gateway.codecs.messages import (
    BASE_MESSAGES,
    MessageSpec,
    message_table,
    record_length,
)
from juki_gateway.errors import JukiError
from juki_gateway.protocols.jukinet.errors import (
    BadBody,
    BadCheckDigit,
    BadSequenceNumber,
    JuminhyoCodeChangeRefused,
    KojinBangoNotAuthentic,
    LinkProtocolError,
    NotTokureiTenshutsu,
    NumberSpaceExhausted,
    PoolExhausted,
    SearchTooBroad,
    SequenceGap,
    SoufusakiMismatch,
    TenshutsuShomeiUnknown,
    TenshutsuShomeiWrongRequester,
    UnknownMunicipality,
    UnsortedStream,
    WrongSender,
)
from juki_gateway.protocols.jukinet.layouts import (
    CONSISTENCY_DIFF,
    CONSISTENCY_ENTRY,
    HONNIN_KAKUNIN,
    JUMINHYO_CODE_DRAW_REQUEST,
    KOJIN_BANGO_CHANGE_REQUEST,
    KOJIN_BANGO_REQUEST,
    KOJIN_BANGO_RESPONSE,
    MAX_CODE_DRAW,
    MOVE_IN_DELIVERY,
    MOVE_IN_NOTICE,
    POOL_ENTRY,
    POOL_REQUEST,
    SEARCH_HIT,
    SEARCH_REQUEST,
    SHORI_TSUBAN_ACK,
    SHORI_TSUBAN_NOTICE,
    SOUFUSAKI,
    TENSHUTSU_SHOMEI,
    TENSHUTSU_SHOMEI_REQUEST,
)
from juki_gateway.protocols.jukinet.routing import Role
from juki_gateway.protocols.jukinet.search import DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT

#: The most 転入通知 one MOVE_IN_NOTICE_LIST carries.
MAX_MOVE_IN_DELIVERIES = 100


class JukinetMessage(IntEnum):
    """Message types of the Juki-net links."""

    UPDATE_NOTIFY = 0x0101
    SOUFUSAKI_BATCH = 0x0102
    MOVE_IN_NOTICE = 0x0103
    SHORI_TSUBAN_NOTIFY = 0x0104
    KOJIN_BANGO_REQUEST = 0x0111
    KOJIN_BANGO_RESPONSE = 0x0112
    POOL_REQUEST = 0x0113
    POOL_RESPONSE = 0x0114
    KOJIN_BANGO_CHANGE_REQUEST = 0x0115
    KOJIN_BANGO_CHANGE_RESPONSE = 0x0116
    JUMINHYO_CODE_DRAW_REQUEST = 0x0117
    JUMINHYO_CODE_DRAW_RESPONSE = 0x0118
    MOVE_IN_NOTICE_FETCH = 0x0151
    MOVE_IN_NOTICE_LIST = 0x0152
    TENSHUTSU_SHOMEI_NOTIFY = 0x0161
    TENSHUTSU_SHOMEI_ACCEPTED = 0x0162
    TENSHUTSU_SHOMEI_REQUEST = 0x0163
    TENSHUTSU_SHOMEI_RESPONSE = 0x0164
    SEARCH_REQUEST = 0x0121
    SEARCH_RESPONSE = 0x0122
    CONSISTENCY_CHUNK = 0x0131
    CONSISTENCY_DIFF = 0x0132
    CONSISTENCY_END = 0x0133
    SHORI_TSUBAN_FETCH = 0x0141
    SHORI_TSUBAN_LIST = 0x0142


M = JukinetMessage
R = Role
#: what a sequenced message is NACKed (5101) or refused (the others) with
_SEQUENCED_ERRORS = (SequenceGap, BadCheckDigit, WrongSender, BadBody, LinkProtocolError,
                     BadSequenceNumber)
_ANSWERS = "—"
#: how docs/messages.md names the roles
ROLE_LABELS: Mapping[str, str] = {
    R.KIZON_JUKI: "既存住基", R.MUNICIPAL_CS: "CS", R.PREFECTURE: "都道府県", R.KIKO: "機構",
    R.IPNW: "情報提供NW",
}
_CS_TO_PREF_KIKO = {R.PREFECTURE: (R.MUNICIPAL_CS,), R.KIKO: (R.MUNICIPAL_CS,)}
#: a request the existing system sends its CS, which asks on (via its prefecture) of 機構
_KIZON_CS_PREF_TO_KIKO = {R.MUNICIPAL_CS: (R.KIZON_JUKI,), R.PREFECTURE: (R.MUNICIPAL_CS,),
                          R.KIKO: (R.MUNICIPAL_CS, R.PREFECTURE)}


def _hops(accepts: Mapping[Role, tuple[Role, ...]]) -> str:
    return "; ".join(f"{' / '.join(ROLE_LABELS[s] for s in senders)} → {ROLE_LABELS[receiver]}"
                     for receiver, senders in accepts.items())


#: The most records one frame of a sequenced type carries (a node's frames hold up to
#: ``NodeConfig.max_batch``, 3,000 by default, which must not exceed this).
MAX_SEQUENCED_RECORDS = 3000
#: The most (住民票コード, 処理通番) pairs one SHORI_TSUBAN_LIST carries (and acks one FETCH).
SHORI_TSUBAN_FETCH_LIMIT = 1000


def _spec(name: str, jp: str, body: str | None, route: str | Mapping[Role, tuple[Role, ...]],
          responses: str, description: str, *errors: type[JukiError],
          sequenced: bool = False, max_records: int | None = None) -> MessageSpec:
    """One entry; ``route`` is the authorization table of a request (receiver → senders, also
    rendered as its direction) or, for an answer, the direction it travels in."""
    accepts = {} if isinstance(route, str) else route
    return MessageSpec(name, body, description, jp=jp,
                       direction=route if isinstance(route, str) else _hops(route),
                       responses=responses, sequenced=sequenced, errors=errors,
                       max_records=MAX_SEQUENCED_RECORDS if sequenced else max_records,
                       accepts=tuple((str(r), tuple(map(str, s))) for r, s in accepts.items()))


#: The Juki-net entries of the catalogue, by type (an immutable table).
JUKINET_MESSAGES: Mapping[int, MessageSpec] = message_table({
    M.UPDATE_NOTIFY: _spec(
        "UPDATE_NOTIFY", "本人確認情報更新通知", HONNIN_KAKUNIN.name,
        {R.MUNICIPAL_CS: (R.KIZON_JUKI,), R.PREFECTURE: (R.MUNICIPAL_CS,), R.KIKO: (R.PREFECTURE,)},
        "ACK / NACK",
        "A run of consecutive 更新順番号 (header seq = first); applied in order, acked after commit; "
        "the prefecture forwards each record to 機構 under its own numbering. 機構 refuses a frame "
        "with a record whose 個人番号 is not the one it generated for that 住民票コード (5114). "
        "A record of 異動事由 34 (住民票コードの変更請求) carries the new code as its 住民票コード "
        "and the old one as its 旧住民票コード: every node makes the new code current and retires "
        "the old one (a 消除者 whose last version is this record; its 個人番号 follows the "
        "person), in the frame's transaction; refused (5116) when the 旧住民票コード is missing, "
        "is the new code or is not current at that node, when the new code is already used "
        "there, or for a record of a retired code.",
        *_SEQUENCED_ERRORS, KojinBangoNotAuthentic, JuminhyoCodeChangeRefused, sequenced=True),
    M.SOUFUSAKI_BATCH: _spec(
        "SOUFUSAKI_BATCH", "送付先情報送付", SOUFUSAKI.name,
        {R.MUNICIPAL_CS: (R.KIZON_JUKI,), R.KIKO: (R.MUNICIPAL_CS,)}, "ACK / NACK",
        "送付先 records for card management (機構); the CS deletes its copy one business day after "
        "the ACK. 機構 refuses a frame with a record whose 個人番号 it did not generate for that "
        "住民票コード (5114) or whose 基本4情報 (氏名, 生年月日, 性別, 住所) differ from its "
        "本人確認情報 (5115); the card gets 機構's own 個人番号.",
        *_SEQUENCED_ERRORS, KojinBangoNotAuthentic, SoufusakiMismatch, sequenced=True),
    M.MOVE_IN_NOTICE: _spec(
        "MOVE_IN_NOTICE", "転入通知", MOVE_IN_NOTICE.name,
        {R.MUNICIPAL_CS: (R.KIZON_JUKI, R.PREFECTURE), R.PREFECTURE: (R.MUNICIPAL_CS, R.KIKO),
         R.KIKO: (R.PREFECTURE,)}, "ACK / NACK",
        "CS A → 都道府県 → 機構 → 都道府県 → CS B: routed hop by hop by the old municipality's "
        "市町村コード (prefecture = first 2 digits).",
        *_SEQUENCED_ERRORS, UnknownMunicipality, sequenced=True),
    M.MOVE_IN_NOTICE_FETCH: _spec(
        "MOVE_IN_NOTICE_FETCH", "転入通知取得要求", None,
        {R.MUNICIPAL_CS: (R.KIZON_JUKI,), R.PREFECTURE: (R.MUNICIPAL_CS,)},
        "MOVE_IN_NOTICE_LIST / ERROR",
        "The existing system asks its CS for the 転入通知 about its former residents that reached "
        "the CS (their new municipality's CS sent them); a CS its prefecture has no link to "
        "asks the prefecture for the 転入通知 it holds for that CS (docs/moves.md). No body; "
        "header seq = the last "
        "delivery_no it has durably processed (0 at first), request_no echoed. The CS forgets "
        f"the deliveries up to seq, then answers the next ones, at most {MAX_MOVE_IN_DELIVERIES}, "
        "oldest first; what is not acknowledged comes again in the next answer. On a notice the "
        "existing system records 転出確定 and sends the person's 消除 (国内転出) UPDATE_NOTIFY. A "
        "seq beyond the deliveries handed out is refused (5111) and forgets nothing.",
        WrongSender, BadBody, LinkProtocolError),
    M.MOVE_IN_NOTICE_LIST: _spec(
        "MOVE_IN_NOTICE_LIST", "転入通知一覧", MOVE_IN_DELIVERY.name,
        "CS → 既存住基; 都道府県 → CS", _ANSWERS,
        "The 転入通知 not yet acknowledged, one `move-in-delivery` each, by delivery_no; none: "
        "an answer of 0 records.", max_records=MAX_MOVE_IN_DELIVERIES),
    M.TENSHUTSU_SHOMEI_NOTIFY: _spec(
        "TENSHUTSU_SHOMEI_NOTIFY", "転出証明書情報通知", TENSHUTSU_SHOMEI.name,
        {R.MUNICIPAL_CS: (R.KIZON_JUKI,)}, "TENSHUTSU_SHOMEI_ACCEPTED / ERROR",
        "At a 転出届 the existing system gives its CS the person's 転出証明書情報 (one record; "
        "header request_no echoed). The CS keeps it, one per 住民票コード (a later one replaces "
        "it), until the 転入通知 about the person reaches the CS; answered after commit. The "
        "転出元市町村コード must be the CS's own (5104). Contract: docs/moves.md.",
        BadCheckDigit, WrongSender, BadBody),
    M.TENSHUTSU_SHOMEI_ACCEPTED: _spec(
        "TENSHUTSU_SHOMEI_ACCEPTED", "転出証明書情報受領", None, "CS → 既存住基", _ANSWERS,
        "The 転出証明書情報 is kept (committed). No body."),
    M.TENSHUTSU_SHOMEI_REQUEST: _spec(
        "TENSHUTSU_SHOMEI_REQUEST", "転出証明書情報要求", TENSHUTSU_SHOMEI_REQUEST.name,
        {R.MUNICIPAL_CS: (R.KIZON_JUKI, R.PREFECTURE),
         R.PREFECTURE: (R.MUNICIPAL_CS, R.KIKO), R.KIKO: (R.PREFECTURE, R.MUNICIPAL_CS)},
        "TENSHUTSU_SHOMEI_RESPONSE / ERROR",
        "特例転入: the new municipality's existing system asks its CS for the person's "
        "転出証明書情報; it travels CS → 都道府県 (→ 機構 → 都道府県) → the old municipality's CS, "
        "routed by 転出元市町村コード, each hop under a 依頼管理番号 of its own, and the answer or "
        "the refusal (its code unchanged) back. The old CS answers what its existing system "
        "gave it when the 住民票コード, 生年月日 and 転入先 match (5117 unknown person or "
        "生年月日, 5118 not a 特例転出, 5119 another 転出先) and leaves a provision record "
        "(kind `tenshutsu_shomei`) either way. Contract: docs/moves.md.",
        BadCheckDigit, WrongSender, UnknownMunicipality, BadBody, TenshutsuShomeiUnknown,
        NotTokureiTenshutsu, TenshutsuShomeiWrongRequester),
    M.TENSHUTSU_SHOMEI_RESPONSE: _spec(
        "TENSHUTSU_SHOMEI_RESPONSE", "転出証明書情報応答", TENSHUTSU_SHOMEI.name,
        "CS → 都道府県 (→ 機構 → 都道府県) → CS → 既存住基", _ANSWERS,
        "The 転出証明書情報 as the old municipality's existing system gave it (one record)."),
    M.SHORI_TSUBAN_NOTIFY: _spec(
        "SHORI_TSUBAN_NOTIFY", "処理通番通知", SHORI_TSUBAN_NOTICE.name,
        {R.MUNICIPAL_CS: (R.KIZON_JUKI,), R.PREFECTURE: (R.MUNICIPAL_CS,), R.KIKO: (R.PREFECTURE,)},
        "ACK / NACK",
        "符号 acquisition: the 住民票コード of a person with the 処理通番 the information provision "
        "network issued at the intermediate server's request (the municipality's linkage system "
        "learnt it in a FUGO_RESPONSE). Sequenced like UPDATE_NOTIFY, in the sender's one "
        "numbering: applied exactly once and in order, acked after commit, forwarded hop by hop "
        "(CS → 都道府県 → 機構) under each hop's own numbering; a CS takes records of its own "
        "市町村 only, a prefecture of its own CSs (5104). Every hop leaves a provision record "
        "(kind `shori_tsuban`). 機構 keeps each pair (a 処理通番 already kept stays as it was) "
        "until the network has taken it (SHORI_TSUBAN_FETCH).",
        *_SEQUENCED_ERRORS, sequenced=True),
    M.KOJIN_BANGO_REQUEST: _spec(
        "KOJIN_BANGO_REQUEST", "個人番号生成要求", KOJIN_BANGO_REQUEST.name, _KIZON_CS_PREF_TO_KIKO,
        "KOJIN_BANGO_RESPONSE / ERROR",
        "Ask 機構 for a new 個人番号 (header request_no = 依頼管理番号, echoed in the response); "
        "refused (5116) for a 住民票コード a 住民票コード変更 retired (the person's number is the "
        "new code's). The existing system asks its CS, which asks on via its prefecture (else "
        "機構 directly) under a 依頼管理番号 of its own, records the number and answers it, or "
        "relays 機構's refusal with its code unchanged; the 市町村コード must be the CS's own "
        "(5104).",
        BadCheckDigit, WrongSender, UnknownMunicipality, NumberSpaceExhausted, BadBody,
        JuminhyoCodeChangeRefused),
    M.KOJIN_BANGO_RESPONSE: _spec(
        "KOJIN_BANGO_RESPONSE", "個人番号生成応答", KOJIN_BANGO_RESPONSE.name,
        "機構 → 都道府県 → CS → 既存住基",
        _ANSWERS,
        "A new, valid, never reused 個人番号; asking again for the same 住民票コード returns the same "
        "number."),
    M.POOL_REQUEST: _spec(
        "POOL_REQUEST", "住民票コード払出要求", POOL_REQUEST.name, {R.KIKO: (R.MUNICIPAL_CS,)},
        "POOL_RESPONSE / ERROR", "Ask 機構 for a batch of unused 住民票コード (1–10000).",
        BadCheckDigit, WrongSender, NumberSpaceExhausted, BadBody),
    M.POOL_RESPONSE: _spec(
        "POOL_RESPONSE", "住民票コード払出応答", POOL_ENTRY.name, "機構 → CS", _ANSWERS,
        "Unused, never issued 住民票コード; the CS hands them out at random."),
    M.KOJIN_BANGO_CHANGE_REQUEST: _spec(
        "KOJIN_BANGO_CHANGE_REQUEST", "個人番号変更要求", KOJIN_BANGO_CHANGE_REQUEST.name,
        _KIZON_CS_PREF_TO_KIKO, "KOJIN_BANGO_CHANGE_RESPONSE / ERROR",
        "Ask 機構 to replace a person's 個人番号 (番号法 7条2項; header request_no = 依頼管理番号, "
        "echoed in the response); the prefecture relays it, and 機構's answer or refusal (its code "
        "unchanged) back. 機構 draws a new, never used number, "
        "keeps the old one marked replaced with the day (JST) and answers the new one; from then "
        "on it refuses the old number for that person (5114) in update notifications and "
        "送付先, and takes the new one (the CS sends the change as an UPDATE_NOTIFY of 異動事由 "
        "33 carrying it). A request naming a number already replaced for that 住民票コード is "
        "answered with the person's current number and draws nothing (a lost answer may be "
        "asked for again); one naming any other number (not one 機構 gave that 住民票コード, or a "
        "dead resident's) is refused (5114). The 市町村コード must be the asking CS's own, or "
        "one of the relaying prefecture's (5104). The existing system asks its CS (the "
        "市町村コード must be the CS's own, 5104), which asks on as it asks for itself, records "
        "both numbers and answers the new one (or relays the refusal).",
        BadCheckDigit, WrongSender, KojinBangoNotAuthentic, NumberSpaceExhausted, BadBody),
    M.KOJIN_BANGO_CHANGE_RESPONSE: _spec(
        "KOJIN_BANGO_CHANGE_RESPONSE", "個人番号変更応答", KOJIN_BANGO_RESPONSE.name,
        "機構 → 都道府県 → CS → 既存住基", _ANSWERS,
        "The person's new 個人番号, with the 住民票コード of the request."),
    M.JUMINHYO_CODE_DRAW_REQUEST: _spec(
        "JUMINHYO_CODE_DRAW_REQUEST", "住民票コード取得要求", JUMINHYO_CODE_DRAW_REQUEST.name,
        {R.MUNICIPAL_CS: (R.KIZON_JUKI,)}, "JUMINHYO_CODE_DRAW_RESPONSE / ERROR",
        f"The existing system asks its CS for unused 住民票コード (1–{MAX_CODE_DRAW}; header "
        "request_no = "
        "依頼管理番号, echoed in the response) for residents it is about to record (出生, 国外"
        "転入 …). The CS takes them at random from its pool (POOL_RESPONSE codes of 機構), never "
        "hands one out twice, and when the draw would leave fewer than its low-water mark it "
        "first asks 機構 for more (POOL_REQUEST); refused (5106) when the pool cannot give as "
        "many as asked (nothing is taken then). The 市町村コード must be the CS's own (5104).",
        BadCheckDigit, WrongSender, PoolExhausted, BadBody),
    M.JUMINHYO_CODE_DRAW_RESPONSE: _spec(
        "JUMINHYO_CODE_DRAW_RESPONSE", "住民票コード取得応答", POOL_ENTRY.name, "CS → 既存住基",
        _ANSWERS, "As many unused 住民票コード as asked, one `pool-entry` each; each is the "
        "existing system's to use from then on.", max_records=MAX_CODE_DRAW),
    M.SEARCH_REQUEST: _spec(
        "SEARCH_REQUEST", "本人確認情報検索要求", SEARCH_REQUEST.name, _KIZON_CS_PREF_TO_KIKO,
        "SEARCH_RESPONSE / ERROR 5102",
        "By 住民票コード or 個人番号, or by 氏名 plus 生年月日 or a 住所 naming at least a 市区町村 "
        "(R3; 性別 does not count; the exact rule is in docs/messages.md, section Search (R3)). "
        "Every search, answered or refused, leaves a provision record. Each node answers from "
        "its own file: a CS (asked by its existing system) its municipality's 本人確認情報, a "
        "prefecture its prefecture's, 機構 the nation's; nothing is asked on.",
        SearchTooBroad, BadCheckDigit, WrongSender, BadBody),
    M.SEARCH_RESPONSE: _spec(
        "SEARCH_RESPONSE", "本人確認情報検索応答", SEARCH_HIT.name,
        "都道府県 / 機構 → CS; CS → 既存住基",
        _ANSWERS,
        "One `search-hit` per matching current record, smallest 住民票コード first, at most the "
        f"answering node's search limit (`search_limit`, {DEFAULT_SEARCH_LIMIT} by default); "
        "every record carries the count of all matches (`total`) and `truncated` = 1 when there "
        f"were more than it carries. 0 records: nothing matched. At most {MAX_SEARCH_LIMIT} "
        "records: a frame declaring more is refused from its header.",
        max_records=MAX_SEARCH_LIMIT),
    M.CONSISTENCY_CHUNK: _spec(
        "CONSISTENCY_CHUNK", "整合性確認データ", CONSISTENCY_ENTRY.name, _CS_TO_PREF_KIKO,
        "CONSISTENCY_DIFF",
        "A chunk of the CS's file in ascending 住民票コード order; each chunk gets one DIFF.",
        WrongSender, BadBody, UnsortedStream),
    M.CONSISTENCY_DIFF: _spec(
        "CONSISTENCY_DIFF", "整合性確認結果", CONSISTENCY_DIFF.name, "都道府県 / 機構 → CS", _ANSWERS,
        "Differences decided so far (may be empty)."),
    M.CONSISTENCY_END: _spec(
        "CONSISTENCY_END", "整合性確認終了", None, _CS_TO_PREF_KIKO,
        "CONSISTENCY_DIFF then CONSISTENCY_END",
        "End of the CS's stream; the peer answers with the remaining differences, then END back "
        "to the CS with header seq = records compared.",
        WrongSender, UnsortedStream),
    M.SHORI_TSUBAN_FETCH: _spec(
        "SHORI_TSUBAN_FETCH", "処理通番取得要求", SHORI_TSUBAN_ACK.name, {R.KIKO: (R.IPNW,)},
        "SHORI_TSUBAN_LIST / ERROR",
        "The information provision network takes 機構's (住民票コード, 処理通番) pairs: the body "
        "acknowledges, one `shori-tsuban-ack` each, the pairs it has taken from earlier answers "
        "(0 records: none); 機構 forgets those in the request's transaction and answers the "
        "pairs still kept. A pair is kept until acknowledged, so an answer lost is answered "
        "again; each taken pair leaves a provision record (kind `shori_tsuban`, recipient the "
        "network).",
        WrongSender, BadBody, max_records=SHORI_TSUBAN_FETCH_LIMIT),
    M.SHORI_TSUBAN_LIST: _spec(
        "SHORI_TSUBAN_LIST", "処理通番取得応答", SHORI_TSUBAN_NOTICE.name, "機構 → 情報提供NW",
        _ANSWERS,
        f"Up to {SHORI_TSUBAN_FETCH_LIMIT} pairs 機構 keeps, oldest first; 0 records: none.",
        max_records=SHORI_TSUBAN_FETCH_LIMIT),
})

BY_TYPE: Mapping[int, MessageSpec] = JUKINET_MESSAGES

SEQUENCED_TYPES: frozenset[int] = frozenset(t for t, spec in JUKINET_MESSAGES.items() if spec.sequenced)

#: (receiving role, msg_type) → the roles that role takes the type from (the catalogue's
#: ``accepts``, as one table; answers are not in it).
ACCEPTS: Mapping[tuple[str, int], frozenset[str]] = {
    (receiver, t): frozenset(senders)
    for t, spec in JUKINET_MESSAGES.items() for receiver, senders in spec.accepts
}

#: Every type a Juki-net link carries: the codec's base types, then the Juki-net ones.
LINK_TYPES: tuple[int, ...] = (*BASE_MESSAGES, *JUKINET_MESSAGES)
_LENGTHS: dict[int, int] = {t: record_length(spec)
                            for t, spec in {**BASE_MESSAGES, **JUKINET_MESSAGES}.items()}


def record_lengths() -> dict[int, int]:
    """msg_type → body record length for the links' frame decoder (0 = no body), base types included."""
    return dict(_LENGTHS)
