"""Flags: accompanying persons (併せて支援を求める者); 副本: 世帯番号 for household look-ups

``ims_flag_member`` lists the people a flag covers besides its ``atena_no``. ``fukuhon`` gets
``setai_no`` (indexed): the 世帯番号 of the record, so that a flag request can name the flagged
person's household members that stay unflagged. Existing records are filled from their first
item (世帯番号, 16 ASCII bytes at offset 0 of the ``answer-items`` layout, space-padded).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 02:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SETAI_WIDTH = 16


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "ims_flag_member",
        sa.Column("flag_id", sa.String(length=40), nullable=False),
        sa.Column("atena_no", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("flag_id", "atena_no", name=op.f("pk_ims_flag_member")),
    )
    with op.batch_alter_table("ims_flag_member") as batch_op:
        batch_op.create_index(batch_op.f("ix_ims_flag_member_atena_no"), ["atena_no"],
                              unique=False)
    with op.batch_alter_table("fukuhon") as batch_op:
        batch_op.add_column(sa.Column("setai_no", sa.String(length=16), nullable=True))
        batch_op.create_index(batch_op.f("ix_fukuhon_setai_no"), ["setai_no"], unique=False)
    conn = op.get_bind()
    fukuhon = sa.table("fukuhon", sa.column("atena_no", sa.String), sa.column("koban", sa.String),
                       sa.column("record", sa.LargeBinary), sa.column("setai_no", sa.String))
    rows = conn.execute(sa.select(fukuhon.c.atena_no, fukuhon.c.koban, fukuhon.c.record)).all()
    for row in rows:
        setai = bytes(row.record[:_SETAI_WIDTH]).decode("ascii", "replace").strip() or None
        conn.execute(fukuhon.update().where(fukuhon.c.atena_no == row.atena_no,
                                            fukuhon.c.koban == row.koban).values(setai_no=setai))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("fukuhon") as batch_op:
        batch_op.drop_index(batch_op.f("ix_fukuhon_setai_no"))
        batch_op.drop_column("setai_no")
    op.drop_table("ims_flag_member")
