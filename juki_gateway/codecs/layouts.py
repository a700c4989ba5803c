"""The layout tables: one table per record, and the registry :data:`LAYOUTS`.

Item numbers and Japanese labels follow the seed's 別添2 (本人確認情報: 36 items, 送付先情報: 59 items)
and brief §4 (住民票関係情報 副本). Widths, encodings and code tables are the project's own wire
specification; everything else (construct Structs, the fast codec, ``docs/wire-format.md``, the
CLI's JSON field names, the golden vectors) is derived from these tables.
"""

from __future__ import annotations

from juki_gateway.codecs.fields import (
    AsciiText,
    AsciiToken,
    Magic,
    Number,
    Timestamp,
    UInt,
    Utf8Text,
)
from juki_gateway.codecs.schema import Field, Layout

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

LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (FRAME_HEADER, ERROR_RECORD)
}
