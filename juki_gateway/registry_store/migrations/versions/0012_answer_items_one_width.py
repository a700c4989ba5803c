"""副本 records in the ``answer-items`` layout of one width per item: codes, 世帯番号 12 digits, 通称, 旧氏

The intermediate server stores each 副本 (``fukuhon.record``) and the content of each held query
(``ims_held_query.content``) as an ``answer-items`` record. That layout now carries every item
in the width and kind of the ``fukuhon-juminhyo`` record it is registered with
(``docs/wire-format.md``, "One width per item"): 世帯番号 12 digits (was 16 ASCII, space-padded),
続柄, 国籍, 在留資格, 在留期間 and 法30条の45区分 as the 副本's codes (were the same codes as
UTF-16 text of 40, 40, 40, 20 and 20 bytes), and two new optional items at the end, 通称 (80
bytes) and 旧氏 (40 bytes), blank in every existing record. Every value moves as it is: the 副本
import only ever stored what the ``fukuhon-juminhyo`` record held, so every 世帯番号 has 12 digits
and every coded item is its code. A value that does not fit stops the upgrade (naming the table,
row number and item, never the value).

A QUERY_RESULT still waiting for ipnw in the outbox holds an answer sealed in the old layout,
signed and encrypted: it cannot be rewritten here. The upgrade refuses while one is pending;
let ipnw fetch them (run the daemon at revision 0011 until the outbox is empty), then upgrade.

The layouts are frozen below (a migration never imports the live ones). Down again converts the
records back, refusing when a 通称 or 旧氏 would be lost.

Revision ID: 0012
Revises: 0011
Create Date: 2027-01-14 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUERY_RESULT = 0x0632
IDEOGRAPHIC_SPACE = "\u3000"

#: (item, width, "ascii" | "utf16") of the answer-items layout before this revision (562 bytes)
V1: tuple[tuple[str, int, str], ...] = (
    ("setai_no", 16, "ascii"), ("shimei", 80, "utf16"), ("seinengappi", 8, "ascii"),
    ("seibetsu", 1, "ascii"), ("zokugara", 40, "utf16"), ("jusho", 200, "utf16"),
    ("jumin_date", 8, "ascii"), ("setainushi", 80, "utf16"), ("jumin_kubun", 1, "ascii"),
    ("kokuseki", 40, "utf16"), ("zairyu_shikaku", 40, "utf16"), ("zairyu_kikan", 20, "utf16"),
    ("zairyu_manryo", 8, "ascii"), ("ho30_45", 20, "utf16"),
)
#: ... and from this revision on (536 bytes)
V2: tuple[tuple[str, int, str], ...] = (
    ("setai_no", 12, "ascii"), ("shimei", 80, "utf16"), ("seinengappi", 8, "ascii"),
    ("seibetsu", 1, "ascii"), ("zokugara", 8, "ascii"), ("jusho", 200, "utf16"),
    ("jumin_date", 8, "ascii"), ("setainushi", 80, "utf16"), ("jumin_kubun", 1, "ascii"),
    ("kokuseki", 3, "ascii"), ("zairyu_shikaku", 2, "ascii"), ("zairyu_kikan", 4, "ascii"),
    ("zairyu_manryo", 8, "ascii"), ("ho30_45", 1, "ascii"), ("tsusho", 80, "utf16"),
    ("kyuuji", 40, "utf16"),
)


class RecordNotConvertible(RuntimeError):
    """A stored record that does not fit the other layout (the migration stops, nothing changed)."""


def split(layout: Sequence[tuple[str, int, str]], record: bytes, where: str) -> dict[str, str]:
    """The item values of one record of ``layout`` (blank items are '')."""
    if len(record) != sum(width for _, width, _ in layout):
        raise RecordNotConvertible(f"{where}: {len(record)} bytes is not an answer-items record")
    values: dict[str, str] = {}
    pos = 0
    for name, width, enc in layout:
        raw = record[pos : pos + width]
        pos += width
        try:
            values[name] = (raw.decode("ascii").rstrip(" ") if enc == "ascii"
                            else raw.decode("utf-16-be").rstrip(IDEOGRAPHIC_SPACE))
        except UnicodeDecodeError:
            raise RecordNotConvertible(f"{where}, item {name}: not {enc}") from None
    return values


def join(layout: Sequence[tuple[str, int, str]], values: dict[str, str], where: str) -> bytes:
    """One record of ``layout`` holding ``values`` (missing items blank)."""
    out = []
    for name, width, enc in layout:
        value = values.get(name, "")
        if enc == "ascii":
            if not value.isascii():
                raise RecordNotConvertible(f"{where}, item {name}: not ASCII in the new layout")
            data = value.encode("ascii").ljust(width, b" ")
        else:
            data = value.encode("utf-16-be")
            data += IDEOGRAPHIC_SPACE.encode("utf-16-be") * ((width - len(data)) // 2)
        if len(data) != width:
            raise RecordNotConvertible(f"{where}, item {name}: does not fit {width} bytes")
        out.append(data)
    return b"".join(out)


def _refuse_pending_results(conn: sa.Connection) -> None:
    outbox = sa.table("outbox", sa.column("msg_type", sa.Integer), sa.column("state", sa.String))
    pending = conn.execute(
        sa.select(sa.func.count()).select_from(outbox)
        .where(outbox.c.msg_type == QUERY_RESULT, outbox.c.state == "pending")
    ).scalar_one()
    if pending:
        raise RecordNotConvertible(
            f"the outbox holds {pending} QUERY_RESULT frame(s) ipnw has not acknowledged; their "
            "sealed answers are in the other answer-items layout and cannot be rewritten: let "
            "ipnw fetch them first (run the daemon at the current revision until the outbox is "
            "empty), then migrate"
        )


def _convert(old: Sequence[tuple[str, int, str]], new: Sequence[tuple[str, int, str]],
             keep: bool) -> None:
    """Rewrite every stored answer-items record from ``old`` to ``new``; unless ``keep``, refuse
    to drop a non-blank item ``new`` lacks."""
    conn = op.get_bind()
    _refuse_pending_results(conn)
    dropped = {name for name, _, _ in old} - {name for name, _, _ in new}
    tables = (
        (sa.table("fukuhon", sa.column("atena_no", sa.String), sa.column("koban", sa.String),
                  sa.column("record", sa.LargeBinary)), ("atena_no", "koban"), "record"),
        (sa.table("ims_held_query", sa.column("held_id", sa.String),
                  sa.column("content", sa.LargeBinary)), ("held_id",), "content"),
    )
    for table, key, column in tables:
        rows = conn.execute(sa.select(*(table.c[k] for k in key), table.c[column])
                            .order_by(*(table.c[k] for k in key))).all()
        for n, row in enumerate(rows, start=1):
            where = f"{table.name} row {n}"
            values = split(old, bytes(row[-1]), where)
            lost = sorted(name for name in dropped if values.get(name))
            if lost and not keep:
                raise RecordNotConvertible(f"{where}: {', '.join(lost)} would be lost")
            record = join(new, values, where)
            conn.execute(table.update()
                         .where(*(table.c[k] == row[i] for i, k in enumerate(key)))
                         .values({column: record}))


def upgrade() -> None:
    """Apply this revision."""
    _convert(V1, V2, keep=True)


def downgrade() -> None:
    """Revert this revision (refused when a 通称 or 旧氏 would be lost)."""
    _convert(V2, V1, keep=False)
