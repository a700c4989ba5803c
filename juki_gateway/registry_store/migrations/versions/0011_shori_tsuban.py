"""符号 by 処理通番: the intermediate server's 符号 requests, 機構's (住民票コード, 処理通番) pairs

The intermediate server no longer sees a 住民票コード: it keeps each 符号 request of bango-renkei
(``ims_fugo_request``: its 依頼番号, the 団体内統合宛名番号 and the network's 処理通番), and 機構
keeps each (住民票コード, 処理通番) pair a municipality sent until the network has taken it
(``kiko_shori_tsuban``). The outbox rows of the retired ``FUGO_ISSUE_REQUEST`` (0x0603, a
住民票コード for ipnw) are deleted: no store of the intermediate server keeps a 住民票コード.

Revision ID: 0011
Revises: 0010
Create Date: 2027-01-10 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RETIRED_FUGO_ISSUE_REQUEST = 0x0603


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "ims_fugo_request",
        sa.Column("request_id", sa.String(16), primary_key=True),
        sa.Column("atena_no", sa.String(20), nullable=False, unique=True),
        sa.Column("shori_tsuban", sa.String(16), nullable=True, unique=True),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "kiko_shori_tsuban",
        sa.Column("shori_tsuban", sa.String(16), primary_key=True),
        sa.Column("juminhyo_code", sa.String(11), nullable=False),
        sa.Column("municipality_code", sa.String(6), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
    )
    outbox = sa.table("outbox", sa.column("msg_type", sa.Integer))
    op.execute(outbox.delete().where(outbox.c.msg_type == RETIRED_FUGO_ISSUE_REQUEST))


def downgrade() -> None:
    """Revert this revision (the deleted outbox rows are not restored)."""
    op.drop_table("kiko_shori_tsuban")
    op.drop_table("ims_fugo_request")
