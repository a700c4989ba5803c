"""Intermediate server tables; drop the store's unused flag, held-query and permission-list tables

The intermediate server keeps flags with 項番 scopes and pending-set/clear states, held queries
with the content that would be sent, permission-list versions and spent permit ids
(``registry_store.ims_models``). The first schema's ``auto_response_block``,
``pending_confirmation``, ``held_query`` and ``permission_list`` were never used; they are
dropped here (they held no data) and recreated, empty, on downgrade.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 12:39:16.122841
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "ims_flag",
        sa.Column("flag_id", sa.String(length=40), nullable=False),
        sa.Column("atena_no", sa.String(length=20), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("reason_code", sa.String(length=4), nullable=False),
        sa.Column("review_date", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.String(length=14), nullable=False),
        sa.Column("confirmed_by", sa.String(length=64), nullable=True),
        sa.Column("confirmed_at", sa.String(length=14), nullable=True),
        sa.Column("clear_requested_by", sa.String(length=64), nullable=True),
        sa.Column("clear_requested_at", sa.String(length=14), nullable=True),
        sa.Column("cleared_by", sa.String(length=64), nullable=True),
        sa.Column("cleared_at", sa.String(length=14), nullable=True),
        sa.PrimaryKeyConstraint("flag_id", name=op.f("pk_ims_flag")),
    )
    with op.batch_alter_table("ims_flag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ims_flag_atena_no"), ["atena_no"], unique=False)
        batch_op.create_index(batch_op.f("ix_ims_flag_state"), ["state"], unique=False)

    op.create_table(
        "ims_held_query",
        sa.Column("held_id", sa.String(length=40), nullable=False),
        sa.Column("permit_id", sa.String(length=32), nullable=False),
        sa.Column("requester", sa.String(length=16), nullable=False),
        sa.Column("atena_no", sa.String(length=20), nullable=False),
        sa.Column("kouban", sa.Integer(), nullable=False),
        sa.Column("items", sa.Text(), nullable=False),
        sa.Column("reason_code", sa.Integer(), nullable=False),
        sa.Column("flag_ids", sa.Text(), nullable=False),
        sa.Column("permit", sa.LargeBinary(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("held_at", sa.DateTime(), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("held_id", name=op.f("pk_ims_held_query")),
        sa.UniqueConstraint("permit_id", name=op.f("uq_ims_held_query_permit_id")),
    )
    with op.batch_alter_table("ims_held_query", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ims_held_query_atena_no"), ["atena_no"], unique=False)
        batch_op.create_index(batch_op.f("ix_ims_held_query_state"), ["state"], unique=False)

    op.create_table(
        "ims_permission_list",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("issued", sa.String(length=14), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_ims_permission_list")),
    )
    op.create_table(
        "ims_used_permit",
        sa.Column("permit_id", sa.String(length=32), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("permit_id", name=op.f("pk_ims_used_permit")),
    )
    with op.batch_alter_table("pending_confirmation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_confirmation_atena_no"))

    op.drop_table("pending_confirmation")
    with op.batch_alter_table("held_query", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_held_query_atena_no"))
        batch_op.drop_index(batch_op.f("ix_held_query_state"))

    op.drop_table("held_query")
    with op.batch_alter_table("permission_list", schema=None) as batch_op:
        batch_op.drop_index("ix_permission_list_requester_koban")

    op.drop_table("permission_list")
    op.drop_table("auto_response_block")


def downgrade() -> None:
    """Revert this revision."""
    op.create_table(
        "auto_response_block",
        sa.Column("atena_no", sa.String(length=20), nullable=False),
        sa.Column("item", sa.String(length=32), nullable=False),
        sa.Column("set_by", sa.String(length=32), nullable=False),
        sa.Column("confirmed_by", sa.String(length=32), nullable=False),
        sa.Column("set_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("atena_no", "item", name=op.f("pk_auto_response_block")),
    )
    op.create_table(
        "permission_list",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("requester", sa.String(length=64), nullable=False),
        sa.Column("koban", sa.String(length=10), nullable=False),
        sa.Column("items", sa.Text(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_permission_list")),
    )
    with op.batch_alter_table("permission_list", schema=None) as batch_op:
        batch_op.create_index(
            "ix_permission_list_requester_koban", ["requester", "koban"], unique=False
        )

    op.create_table(
        "held_query",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("query_id", sa.String(length=64), nullable=False),
        sa.Column("requester", sa.String(length=64), nullable=False),
        sa.Column("atena_no", sa.String(length=20), nullable=False),
        sa.Column("koban", sa.String(length=10), nullable=False),
        sa.Column("items", sa.Text(), nullable=False),
        sa.Column("request", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("held_at", sa.DateTime(), nullable=False),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_held_query")),
        sa.UniqueConstraint("query_id", name=op.f("uq_held_query_query_id")),
    )
    with op.batch_alter_table("held_query", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_held_query_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_held_query_atena_no"), ["atena_no"], unique=False)

    op.create_table(
        "pending_confirmation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("atena_no", sa.String(length=20), nullable=False),
        sa.Column("item", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("requested_by", sa.String(length=32), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_confirmation")),
    )
    with op.batch_alter_table("pending_confirmation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pending_confirmation_atena_no"), ["atena_no"], unique=False
        )

    op.drop_table("ims_used_permit")
    op.drop_table("ims_permission_list")
    with op.batch_alter_table("ims_held_query", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ims_held_query_state"))
        batch_op.drop_index(batch_op.f("ix_ims_held_query_atena_no"))

    op.drop_table("ims_held_query")
    with op.batch_alter_table("ims_flag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ims_flag_state"))
        batch_op.drop_index(batch_op.f("ix_ims_flag_atena_no"))

    op.drop_table("ims_flag")
