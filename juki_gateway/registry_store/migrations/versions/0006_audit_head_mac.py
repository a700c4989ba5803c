"""Audit chain head: ``head_mac``, the anchor key's HMAC of the head (kept outside the database)

An existing head stays NULL (unanchored) until an operator checks the chain and runs
``juki-gateway audit anchor``; ``audit verify`` with the key reports it until then.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("audit_chain_head") as batch:
        batch.add_column(sa.Column("head_mac", sa.String(length=90), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("audit_chain_head") as batch:
        batch.drop_column("head_mac")
