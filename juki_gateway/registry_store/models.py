"""The registry store's schema: typed SQLAlchemy 2.x models, one schema for SQLite and PostgreSQL.

Every table the links need lives here. Rows keep the columns the links look up by (住民票コード,
個人番号, names, birth date, address, 符号) plus the raw fixed-length ``record`` bytes for everything
else, so the schema does not follow each change of a record layout. The Alembic migrations in
``migrations/versions`` are generated from these models and must be kept in step with them.

Times are stored as naive UTC ``DateTime`` values (the caller's injected clock supplies them);
business dates (birth date, 異動年月日, 消除日) as ``Date``.
"""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so that migrations and downgrades work the same on both engines.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every registry-store table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# ---------------------------------------------------------------------------------------------
# 本人確認情報 (current rows, history, deleted residents, 個人番号 registry)
# ---------------------------------------------------------------------------------------------


class HonninKakuninColumns:
    """The lookup columns shared by the current, history and deleted-resident tables."""

    kojin_bango: Mapped[str | None] = mapped_column(String(12))
    name_kanji: Mapped[str] = mapped_column(String(64))
    seion_kana: Mapped[str] = mapped_column(String(64))
    birth_date: Mapped[dt.date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))
    municipality_code: Mapped[str] = mapped_column(String(6))
    address: Mapped[str] = mapped_column(String(200))
    change_reason: Mapped[str] = mapped_column(String(4))
    change_date: Mapped[dt.date] = mapped_column(Date)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    record: Mapped[bytes] = mapped_column(LargeBinary)


class HonninKakunin(HonninKakuninColumns, Base):
    """The current 本人確認情報 of one resident; ``history_no`` is this version's number (1, 2 …)."""

    __tablename__ = "honnin_kakunin"

    juminhyo_code: Mapped[str] = mapped_column(String(11), primary_key=True)
    history_no: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)

    __table_args__ = (
        Index("ix_honnin_kakunin_kojin_bango", "kojin_bango"),
        Index("ix_honnin_kakunin_kana_birth", "seion_kana", "birth_date"),
        # Also the index of 氏名+住所 lookups (its leading column): no (氏名, 住所) index, since
        # every 転居 would move its entry (revision 0005: a third of the pages a commit wrote).
        Index("ix_honnin_kakunin_name_birth", "name_kanji", "birth_date"),
        # SQLite: an ordinary rowid table (the 住民票コード key is a small separate index), not
        # WITHOUT ROWID. A WITHOUT ROWID table is an index B-tree: a cell holds at most ~1,000
        # bytes of a 4 KiB page, so every ~1,100-byte row (898-byte record) spilled into an
        # overflow page of its own, and interior pages held whole rows. Each update dirtied two
        # pages instead of one (revision 0004 measured 4.8k → 10.8k updates/s).
    )


class HonninKakuninHistory(HonninKakuninColumns, Base):
    """A superseded version of a resident's 本人確認情報: each change moves the previous current
    version here (R9: kept 5 years from ``superseded_at``). The current version is not
    duplicated here, so an initial load writes each resident once.

    Append-only: the clustered key ``id`` grows with every row, so the rows of a batch land
    together at the end of the table instead of on one random page each; (住民票コード,
    history_no) is a separate, small unique index."""

    __tablename__ = "honnin_kakunin_history"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    juminhyo_code: Mapped[str] = mapped_column(String(11))
    history_no: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime)  # when it became current
    superseded_at: Mapped[dt.datetime] = mapped_column(DateTime)

    __table_args__ = (
        Index("ix_honnin_kakunin_history_code_no", "juminhyo_code", "history_no", unique=True),
        Index("ix_honnin_kakunin_history_superseded_at", "superseded_at"),
    )


class DeletedResident(HonninKakuninColumns, Base):
    """A 消除者: the last 本人確認情報 of a resident who was removed (R9: kept 5 years)."""

    __tablename__ = "deleted_resident"

    juminhyo_code: Mapped[str] = mapped_column(String(11), primary_key=True)
    deleted_on: Mapped[dt.date] = mapped_column(Date)
    deceased: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_deleted_resident_deleted_on", "deleted_on"),
        Index("ix_deleted_resident_kojin_bango", "kojin_bango"),
        Index("ix_deleted_resident_name_birth", "name_kanji", "birth_date"),
    )


class KojinBango(Base):
    """Every 個人番号 ever assigned; the number of a dead resident is kept, marked (R10), and so
    is one a 個人番号変更 replaced (with the day, revision 0010); a number is never reused. Its
    住民票コード follows the person through a 住民票コード変更."""

    __tablename__ = "kojin_bango"

    kojin_bango: Mapped[str] = mapped_column(String(12), primary_key=True)
    juminhyo_code: Mapped[str] = mapped_column(String(11), index=True)
    status: Mapped[str] = mapped_column(String(10))  # active | deceased | replaced
    assigned_at: Mapped[dt.datetime] = mapped_column(DateTime)
    deceased_on: Mapped[dt.date | None] = mapped_column(Date)
    replaced_on: Mapped[dt.date | None] = mapped_column(Date)  # JST day of the 個人番号変更


# ---------------------------------------------------------------------------------------------
# 送付先情報
# ---------------------------------------------------------------------------------------------


class Soufusaki(Base):
    """A 送付先情報 held on the CS until one business day after it was sent (R9)."""

    __tablename__ = "soufusaki"

    soufusaki_no: Mapped[str] = mapped_column(String(20), primary_key=True)
    juminhyo_code: Mapped[str] = mapped_column(String(11), index=True)
    kojin_bango: Mapped[str | None] = mapped_column(String(12), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)
    record: Mapped[bytes] = mapped_column(LargeBinary)


# ---------------------------------------------------------------------------------------------
# Durable queues (R4)
# ---------------------------------------------------------------------------------------------


class SeqCounter(Base):
    """The next 更新順番号 to give a message on one outgoing link."""

    __tablename__ = "seq_counter"

    link: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_seq: Mapped[int] = mapped_column(BigInteger)


class OutboxMessage(Base):
    """A frame waiting to be sent (or sent) on one link, numbered by the link's 更新順番号."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    link: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    msg_type: Mapped[int] = mapped_column(Integer)
    frame: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(10))  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[dt.datetime] = mapped_column(DateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        UniqueConstraint("link", "seq", name="uq_outbox_link_seq"),
        Index("ix_outbox_due", "link", "state", "next_try_at"),
    )


class InboxEntry(Base):
    """A message applied from a peer: the (receiver, sender, 更新順番号) key makes it exactly-once."""

    __tablename__ = "inbox"

    receiver: Mapped[str] = mapped_column(String(64), primary_key=True)
    sender: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    msg_type: Mapped[int] = mapped_column(Integer)
    applied_at: Mapped[dt.datetime] = mapped_column(DateTime)


class LinkLease(Base):
    """Which daemon instance drives an outgoing link now (several instances share one store).

    Taken with an atomic ``UPDATE … WHERE holder = me OR expires_at < now`` and renewed with the
    holder's injected clock; when the holder dies its lease runs out and another instance
    takes the link over, reloading the send state from the outbox.
    """

    __tablename__ = "link_lease"

    link: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(96))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)


# ---------------------------------------------------------------------------------------------
# Juki-net link tables: 住民票コード issued by 機構, the CS's pool of unused codes
# ---------------------------------------------------------------------------------------------


class IssuedJuminhyoCode(Base):
    """A 住民票コード 機構 handed out (never handed out again)."""

    __tablename__ = "jukinet_issued_juminhyo_code"

    juminhyo_code: Mapped[str] = mapped_column(String(11), primary_key=True)
    municipality_code: Mapped[str] = mapped_column(String(6))
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime)


class KikoShoriTsuban(Base):
    """A (住民票コード, 処理通番) pair a municipality sent 機構 (``SHORI_TSUBAN_NOTIFY``), kept
    until the information provision network has taken it (``SHORI_TSUBAN_FETCH``)."""

    __tablename__ = "kiko_shori_tsuban"

    shori_tsuban: Mapped[str] = mapped_column(String(16), primary_key=True)
    juminhyo_code: Mapped[str] = mapped_column(String(11))
    municipality_code: Mapped[str] = mapped_column(String(6))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime)


class TenshutsuShomei(Base):
    """The 転出証明書情報 of a resident who moved out, as the municipality's existing system gave
    it to its CS at the 転出届 (``TENSHUTSU_SHOMEI_NOTIFY``), kept until the 転入通知 about the
    person reaches the CS; answered to the new municipality for a 特例転入."""

    __tablename__ = "tenshutsu_shomei"

    juminhyo_code: Mapped[str] = mapped_column(String(11), primary_key=True)
    new_municipality_code: Mapped[str] = mapped_column(String(6))
    tokurei: Mapped[bool] = mapped_column(Boolean)
    record: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime)


class CodePoolEntry(Base):
    """An unused 住民票コード in a municipal CS's pool (received from 機構)."""

    __tablename__ = "jukinet_code_pool"

    juminhyo_code: Mapped[str] = mapped_column(String(11), primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime)


# ---------------------------------------------------------------------------------------------
# Intermediate server: 符号, 副本, provision records (its flags, held queries, permission-list
# versions and spent permits are in ``ims_models``)
# ---------------------------------------------------------------------------------------------


class FugoMap(Base):
    """The 符号 issued for one 団体内統合宛名番号."""

    __tablename__ = "fugo_map"

    fugo: Mapped[str] = mapped_column(String(64), primary_key=True)
    atena_no: Mapped[str] = mapped_column(String(20), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Fukuhon(Base):
    """The 副本 of one addressee for one provision item group (項番), as raw record bytes."""

    __tablename__ = "fukuhon"

    atena_no: Mapped[str] = mapped_column(String(20), primary_key=True)
    koban: Mapped[str] = mapped_column(String(10), primary_key=True)
    record: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)
    #: 世帯番号 of the record (its first item), to find a flagged person's household
    setai_no: Mapped[str | None] = mapped_column(String(16), index=True)


class ProvisionRecord(Base):
    """情報提供等記録: every provision and every refusal (R5); ``kind`` sets its retention."""

    __tablename__ = "provision_record"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    #: update_notify | soufusaki | consistency | move_in_notice | search | kojin_bango |
    #: intermediate (older rows: honnin_kakunin for a search)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    provider: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(64))
    operator_id: Mapped[str | None] = mapped_column(String(32))
    terminal_id: Mapped[str | None] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(20), index=True)  # internal id, never a name
    items: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(10))  # provided | refused | held
    detail: Mapped[str] = mapped_column(Text, default="")


# ---------------------------------------------------------------------------------------------
# Operators and the audit log (R6)
# ---------------------------------------------------------------------------------------------


class Operator(Base):
    """A person allowed to run admin actions."""

    __tablename__ = "operator"

    operator_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)


class AuditEntry(Base):
    """One hash-chained audit entry; ``entry_hash`` = SHA-256 of its canonical form."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    operator_id: Mapped[str] = mapped_column(String(32), index=True)
    terminal_id: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The single row naming the chain's anchor and its newest entry; writers lock it."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    anchor_hash: Mapped[str] = mapped_column(String(64))  # prev_hash of the oldest kept entry
    last_id: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))
    entry_count: Mapped[int] = mapped_column(BigInteger)
    #: ``key_id:HMAC`` of the four fields above with the anchor key kept outside the database
    #: (:mod:`.anchor`); NULL when written without the key
    head_mac: Mapped[str | None] = mapped_column(String(90))


def table_of(model: type[Base]) -> Table:
    """The Core ``Table`` of a model, typed for Core statements (insert/update/delete)."""
    return cast(Table, model.__table__)


# The intermediate server's tables live in their own module on this metadata; importing it here
# makes every user of ``Base.metadata`` (migrations, autogenerate, tests) see the whole schema.
import juki_gateway.registry_store.ims_models  # noqa: E402,F401
