"""特例転入: the CS keeps the 転出証明書情報 its existing system gave it

``tenshutsu_shomei``: one row per 住民票コード (the 転出先 市町村コード, whether it is a 特例転出,
the `tenshutsu-shomei` record), kept until the 転入通知 about the person reaches the CS.

Revision ID: 0013
Revises: 0012
Create Date: 2027-01-20 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "tenshutsu_shomei",
        sa.Column("juminhyo_code", sa.String(11), primary_key=True),
        sa.Column("new_municipality_code", sa.String(6), nullable=False),
        sa.Column("tokurei", sa.Boolean(), nullable=False),
        sa.Column("record", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("tenshutsu_shomei")
