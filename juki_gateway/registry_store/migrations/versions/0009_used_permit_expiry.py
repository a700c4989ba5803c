"""Spent permit ids carry their permit's expiry, so they can be forgotten once it has passed

A spent 情報提供許可証 id only matters while its permit is valid: the decision checks expiry
before replay, so a replay after ``expires`` is refused as ``permit_expired`` whatever the
store holds. ``ims_used_permit.expires_at`` (indexed) lets the server load only unexpired ids
at start and the retention job delete the others. Rows spent before this revision did not
record their permit's expiry; they get the largest one a permit can carry (9999-12-31
23:59:59), so they keep refusing replays as before and are never purged. The downgrade drops
the column (and forgets nothing).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 10:00:00
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The expiry given to ids spent before this revision: the latest a 14-digit permit can state.
UNKNOWN_EXPIRY = dt.datetime(9999, 12, 31, 23, 59, 59)


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("ims_used_permit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
    used = sa.table("ims_used_permit", sa.column("expires_at", sa.DateTime()))
    op.execute(used.update().values(expires_at=UNKNOWN_EXPIRY))
    with op.batch_alter_table("ims_used_permit", schema=None) as batch_op:
        batch_op.alter_column("expires_at", existing_type=sa.DateTime(), nullable=False)
        batch_op.create_index(
            batch_op.f("ix_ims_used_permit_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("ims_used_permit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ims_used_permit_expires_at"))
        batch_op.drop_column("expires_at")
