"""SQLite: 本人確認情報 current rows in an ordinary rowid table instead of WITHOUT ROWID

A WITHOUT ROWID table is stored as an index B-tree, whose cells hold at most about a quarter
of a page (1,002 bytes of a 4 KiB page); a current row with its 898-byte 本人確認情報 record is
about 1,100 bytes, so every row had an overflow page of its own and interior pages carried
whole rows. As a rowid table each row sits in one leaf and the 住民票コード key is a small
separate index. PostgreSQL tables have no such option: nothing to do there.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 16:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = """
    juminhyo_code VARCHAR(11) NOT NULL,
    history_no INTEGER NOT NULL,
    updated_at DATETIME NOT NULL,
    kojin_bango VARCHAR(12),
    name_kanji VARCHAR(64) NOT NULL,
    seion_kana VARCHAR(64) NOT NULL,
    birth_date DATE NOT NULL,
    sex VARCHAR(1) NOT NULL,
    municipality_code VARCHAR(6) NOT NULL,
    address VARCHAR(200) NOT NULL,
    change_reason VARCHAR(4) NOT NULL,
    change_date DATE NOT NULL,
    seq BIGINT NOT NULL,
    record BLOB NOT NULL,
    CONSTRAINT pk_honnin_kakunin PRIMARY KEY (juminhyo_code)"""

_INDEXES = (
    "CREATE INDEX ix_honnin_kakunin_kana_birth ON honnin_kakunin (seion_kana, birth_date)",
    "CREATE INDEX ix_honnin_kakunin_kojin_bango ON honnin_kakunin (kojin_bango)",
    "CREATE INDEX ix_honnin_kakunin_name_address ON honnin_kakunin (name_kanji, address)",
    "CREATE INDEX ix_honnin_kakunin_name_birth ON honnin_kakunin (name_kanji, birth_date)",
)


def _rebuild(table_options: str) -> None:
    """Copy honnin_kakunin into a new table with ``table_options`` (rows in key order)."""
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(f"CREATE TABLE _honnin_kakunin_new ({_COLUMNS}\n){table_options}")
    op.execute("INSERT INTO _honnin_kakunin_new SELECT juminhyo_code, history_no, updated_at, "
               "kojin_bango, name_kanji, seion_kana, birth_date, sex, municipality_code, "
               "address, change_reason, change_date, seq, record FROM honnin_kakunin "
               "ORDER BY juminhyo_code")
    op.execute("DROP TABLE honnin_kakunin")
    op.execute("ALTER TABLE _honnin_kakunin_new RENAME TO honnin_kakunin")
    for statement in _INDEXES:
        op.execute(statement)


def upgrade() -> None:
    """Apply this revision."""
    _rebuild("")


def downgrade() -> None:
    """Revert this revision."""
    _rebuild(" WITHOUT ROWID")
