"""The Juki-net message catalogue: type codes, directions, body layouts and responses.

One table (:data:`JUKINET_MESSAGES`) drives the frame decoder's record-length map, the link
handlers' dispatch and ``docs/messages.md`` (rendered by :func:`render_catalogue`; a test fails
when the committed file is stale). Types 0x0001–0x0005 are the codec's base types
(ERROR, PING, PONG, ACK, NACK); the Juki-net links use 0x0101–0x0133.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

from juki_gateway.codecs.schema import Layout
from juki_gateway.protocols.jukinet.errors import ERROR_CLASSES
from juki_gateway.protocols.jukinet.layouts import (
    CONSISTENCY_DIFF,
    CONSISTENCY_ENTRY,
    HONNIN_KAKUNIN,
    KOJIN_BANGO_REQUEST,
    KOJIN_BANGO_RESPONSE,
    LAYOUTS,
    MOVE_IN_NOTICE,
    POOL_ENTRY,
    POOL_REQUEST,
    SEARCH_REQUEST,
    SOUFUSAKI,
)

# The codec's base message types (frame contract); repeated here only as numbers for routing.
ERROR = 0x0001
PING = 0x0002
PONG = 0x0003
ACK = 0x0004
NACK = 0x0005


class JukinetMessage(IntEnum):
    """Message types of the Juki-net links."""

    UPDATE_NOTIFY = 0x0101
    SOUFUSAKI_BATCH = 0x0102
    MOVE_IN_NOTICE = 0x0103
    KOJIN_BANGO_REQUEST = 0x0111
    KOJIN_BANGO_RESPONSE = 0x0112
    POOL_REQUEST = 0x0113
    POOL_RESPONSE = 0x0114
    SEARCH_REQUEST = 0x0121
    SEARCH_RESPONSE = 0x0122
    CONSISTENCY_CHUNK = 0x0131
    CONSISTENCY_DIFF = 0x0132
    CONSISTENCY_END = 0x0133


@dataclass(frozen=True, slots=True)
class MessageDef:
    """One catalogue entry."""

    type: JukinetMessage
    jp: str
    layout: Layout | None
    direction: str
    responses: str
    sequenced: bool
    description: str


M = JukinetMessage

JUKINET_MESSAGES: tuple[MessageDef, ...] = (
    MessageDef(M.UPDATE_NOTIFY, "本人確認情報更新通知", HONNIN_KAKUNIN,
               "CS → 都道府県, 都道府県 → 機構", "ACK / NACK", True,
               "A run of consecutive 更新順番号 (header seq = first); applied in order, acked after commit; "
               "the prefecture forwards each record to 機構 under its own numbering."),
    MessageDef(M.SOUFUSAKI_BATCH, "送付先情報送付", SOUFUSAKI,
               "CS → 機構 (カード管理)", "ACK / NACK", True,
               "送付先 records for card management; the CS deletes its copy one business day after the ACK."),
    MessageDef(M.MOVE_IN_NOTICE, "転入通知", MOVE_IN_NOTICE,
               "CS A → 都道府県 → 機構 → 都道府県 → CS B", "ACK / NACK", True,
               "Routed hop by hop by the old municipality's 市町村コード (prefecture = first 2 digits)."),
    MessageDef(M.KOJIN_BANGO_REQUEST, "個人番号生成要求", KOJIN_BANGO_REQUEST,
               "CS → 都道府県 → 機構", "KOJIN_BANGO_RESPONSE / ERROR", False,
               "Ask 機構 for a new 個人番号 (header request_no = 依頼管理番号, echoed in the response)."),
    MessageDef(M.KOJIN_BANGO_RESPONSE, "個人番号生成応答", KOJIN_BANGO_RESPONSE,
               "機構 → 都道府県 → CS", "—", False,
               "A new, valid, never reused 個人番号; asking again for the same 住民票コード returns the same number."),
    MessageDef(M.POOL_REQUEST, "住民票コード払出要求", POOL_REQUEST,
               "CS → 機構", "POOL_RESPONSE / ERROR", False,
               "Ask 機構 for a batch of unused 住民票コード."),
    MessageDef(M.POOL_RESPONSE, "住民票コード払出応答", POOL_ENTRY,
               "機構 → CS", "—", False,
               "Unused, never issued 住民票コード; the CS hands them out at random."),
    MessageDef(M.SEARCH_REQUEST, "本人確認情報検索要求", SEARCH_REQUEST,
               "CS → 都道府県 / 機構", "SEARCH_RESPONSE / ERROR 5102", False,
               "By 住民票コード, 個人番号, or at least two of 氏名/生年月日/住所 (R3; 性別 does not count). "
               "Every search, answered or refused, leaves a provision record."),
    MessageDef(M.SEARCH_RESPONSE, "本人確認情報検索応答", HONNIN_KAKUNIN,
               "都道府県 / 機構 → CS", "—", False,
               "The matching current records (record_count may be 0)."),
    MessageDef(M.CONSISTENCY_CHUNK, "整合性確認データ", CONSISTENCY_ENTRY,
               "CS → 都道府県 / 機構", "CONSISTENCY_DIFF", False,
               "A chunk of the CS's file in ascending 住民票コード order; each chunk gets one DIFF."),
    MessageDef(M.CONSISTENCY_DIFF, "整合性確認結果", CONSISTENCY_DIFF,
               "都道府県 / 機構 → CS", "—", False,
               "Differences decided so far (may be empty)."),
    MessageDef(M.CONSISTENCY_END, "整合性確認終了", None,
               "CS → 都道府県 / 機構, and back", "CONSISTENCY_DIFF then CONSISTENCY_END", False,
               "End of the CS's stream; the peer answers with the remaining differences, then END "
               "with header seq = records compared."),
)

BY_TYPE: Mapping[int, MessageDef] = {m.type: m for m in JUKINET_MESSAGES}

SEQUENCED_TYPES: frozenset[int] = frozenset(m.type for m in JUKINET_MESSAGES if m.sequenced)


def record_lengths() -> dict[int, int]:
    """msg_type → body record length for the frame decoder (0 = no body), base types included."""
    lengths = {ERROR: _ERROR_RECORD, PING: 0, PONG: 0, ACK: 0, NACK: _ERROR_RECORD}
    lengths.update({int(m.type): (m.layout.record_length if m.layout else 0) for m in JUKINET_MESSAGES})
    return lengths


_ERROR_RECORD = 4 + 32 + 200  # the codec's `error` layout (frame contract)


def render_catalogue() -> str:
    """The Markdown text of docs/messages.md."""
    lines = [
        "# Juki-net message catalogue",
        "",
        "Generated from `juki_gateway/protocols/jukinet/messages.py` and `layouts.py` by",
        "`python -m juki_gateway.protocols.jukinet.docs`; do not edit by hand.",
        "",
        "Every message travels in the frame envelope of `docs/wire-format.md`. A body is",
        "`record_count` records of the message's layout. Sequenced messages carry the link's",
        "更新順番号 in the header (`seq` = first record, records numbered consecutively) and",
        "`recovery_seq` (異常時更新順番号) ≠ 0 when resent after an outage; the receiver answers",
        "every frame with ACK (`seq` = last applied, sent only after commit) or NACK (`seq` =",
        "expected number, body = one `error` record with code 5101).",
        "",
        "| type | name | 名称 | direction | body layout | responses | sequenced |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in JUKINET_MESSAGES:
        body = f"`{m.layout.name}` ({m.layout.record_length} B)" if m.layout else "none"
        lines.append(
            f"| 0x{m.type:04X} | {m.type.name} | {m.jp} | {m.direction} | {body} | "
            f"{m.responses} | {'yes' if m.sequenced else 'no'} |"
        )
    lines += ["", "## Messages", ""]
    for m in JUKINET_MESSAGES:
        lines += [f"- **{m.type.name}** (0x{m.type:04X}, {m.jp}): {m.description}"]
    lines += [
        "", "## Body layouts", "",
        "Tables of the codec's layout model (`juki_gateway/codecs/schema.py`); `honnin-kakunin` and",
        "`soufusaki` are the codec's own 本人確認情報 and 送付先情報 (their item notes, derived items",
        "and code tables are in `docs/wire-format.md`). Every record is validated by the codec's",
        "generated fast path; an optional item not given is all spaces (U+3000 for text, zeros",
        "for bytes).",
        "",
    ]
    for lay in LAYOUTS.values():
        lines += [
            f"### `{lay.name}`: {lay.label} ({lay.record_length} bytes)",
            "",
            "| # | offset | width | field | 項目 | kind | optional |",
            "|---|---|---|---|---|---|---|",
        ]
        for f, off in zip(lay.fields, lay.offsets, strict=True):
            kind = f.kind.describe(f.width).replace("|", "/")
            if f.derive is not None:
                kind += f"; derived: {f.derive.describe()}"
            lines.append(
                f"| {f.no} | {off} | {f.width} | `{f.name}` | {f.label} | {kind} | "
                f"{'yes' if f.optional else ''} |"
            )
        lines.append("")
    lines += [
        "## Error codes",
        "",
        "Sent as the `error_code` of an ERROR or NACK body; the connection stays open.",
        "",
        "| wire code | code | meaning |",
        "|---|---|---|",
    ]
    for cls in ERROR_CLASSES:
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        lines.append(f"| {cls.wire_code} | `{cls.code}` | {doc} |")
    lines.append("")
    return "\n".join(lines)
