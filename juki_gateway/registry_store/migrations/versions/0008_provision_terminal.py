"""Provision records: ``terminal_id`` (操作端末ID where the request carries one), ``kind`` indexed

Every provision the seed names is recorded now (update notices, 送付先, consistency checks,
転入通知, searches, 個人番号 requests, intermediate-server answers); listing them by kind reads
the new index. Existing rows keep a NULL terminal.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("provision_record") as batch_op:
        batch_op.add_column(sa.Column("terminal_id", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_provision_record_kind"), ["kind"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("provision_record") as batch_op:
        batch_op.drop_index(batch_op.f("ix_provision_record_kind"))
        batch_op.drop_column("terminal_id")
