"""本人確認情報: no (氏名, 住所) index; 氏名+住所 lookups use the 氏名 prefix of (氏名, 生年月日)

Every 転居 changes the 住所, so an index keyed on (氏名, 住所) moved one entry per update to a
random leaf: on SQLite that was a third of the pages each group commit wrote (500,000
residents, 20,000-update batches: 9,345 → 11,798 updates/s without it, 8,498 → 12,464 at
10,000). A search by 氏名+住所 finds the few residents of that name through
``ix_honnin_kakunin_name_birth`` (its leading column is 氏名) and compares their 住所, as a
清音化かな+住所 search already does through ``ix_honnin_kakunin_kana_birth``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 20:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.drop_index("ix_honnin_kakunin_name_address", table_name="honnin_kakunin")


def downgrade() -> None:
    """Revert this revision."""
    op.create_index("ix_honnin_kakunin_name_address", "honnin_kakunin", ["name_kanji", "address"])
