"""Juki-net link tables: link leases, issued 住民票コード, the CS's code pool

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 12:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "link_lease",
        sa.Column("link", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=96), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("link", name=op.f("pk_link_lease")),
    )
    op.create_table(
        "jukinet_issued_juminhyo_code",
        sa.Column("juminhyo_code", sa.String(length=11), nullable=False),
        sa.Column("municipality_code", sa.String(length=6), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("juminhyo_code", name=op.f("pk_jukinet_issued_juminhyo_code")),
    )
    op.create_table(
        "jukinet_code_pool",
        sa.Column("juminhyo_code", sa.String(length=11), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("juminhyo_code", name=op.f("pk_jukinet_code_pool")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("jukinet_code_pool")
    op.drop_table("jukinet_issued_juminhyo_code")
    op.drop_table("link_lease")
