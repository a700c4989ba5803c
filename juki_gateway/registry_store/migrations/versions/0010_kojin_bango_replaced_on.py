"""個人番号: ``replaced_on``, the day (JST) a 個人番号変更 replaced a number

機構 keeps a replaced number (status ``replaced``, never reused) with the day it was replaced;
the person's new number is a row of its own. Existing rows keep a NULL day.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-20 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("kojin_bango") as batch_op:
        batch_op.add_column(sa.Column("replaced_on", sa.Date(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("kojin_bango") as batch_op:
        batch_op.drop_column("replaced_on")
