"""The intermediate server's own tables, declared on the registry store's metadata.

The intermediate server uses the store's ``fugo_map``, ``fukuhon``, ``provision_record`` and the
audit log as they are. These four tables hold what R7 and R8 need beyond them: flags with 項番
scopes, a reason code, a review date and the pending-set / pending-clear states (fail-closed),
held queries with the content that would be sent, every distributed permission-list version,
and the spent permit ids (replay) until their permits expire; ``ims_fugo_request`` (``0011``)
matches the network's 処理通番 to the 団体内統合宛名番号 a 符号 was asked for. They belong to the one store
schema: Alembic revision ``0002`` creates them on both engines (``0009`` adds the expiry); :mod:`.models` imports this module so that the metadata
(and autogenerate) sees them. The service runs Core statements on the ``ims_*`` Table objects.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Integer, LargeBinary, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from juki_gateway.registry_store.models import Base, table_of


class ImsFlag(Base):
    """A 自動応答不可フラグ on a 団体内統合宛名番号, for all items or listed 項番:item scopes (R7)."""

    __tablename__ = "ims_flag"

    flag_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    atena_no: Mapped[str] = mapped_column(String(20), index=True)
    scopes: Mapped[str] = mapped_column(Text)  # space-separated 項番:item, empty = all
    reason_code: Mapped[str] = mapped_column(String(4))
    review_date: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), index=True)
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[str] = mapped_column(String(14))
    confirmed_by: Mapped[str | None] = mapped_column(String(64))
    confirmed_at: Mapped[str | None] = mapped_column(String(14))
    clear_requested_by: Mapped[str | None] = mapped_column(String(64))
    clear_requested_at: Mapped[str | None] = mapped_column(String(14))
    cleared_by: Mapped[str | None] = mapped_column(String(64))
    cleared_at: Mapped[str | None] = mapped_column(String(14))


class ImsFlagMember(Base):
    """An accompanying person (併せて支援を求める者) a flag covers besides its ``atena_no``."""

    __tablename__ = "ims_flag_member"

    flag_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    atena_no: Mapped[str] = mapped_column(String(20), primary_key=True, index=True)


class ImsHeldQuery(Base):
    """An information query held for an operator because it hit a flag; keeps what would be sent."""

    __tablename__ = "ims_held_query"

    held_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    permit_id: Mapped[str] = mapped_column(String(32), unique=True)
    requester: Mapped[str] = mapped_column(String(16))
    atena_no: Mapped[str] = mapped_column(String(20), index=True)
    kouban: Mapped[int] = mapped_column(Integer)
    items: Mapped[str] = mapped_column(Text)
    reason_code: Mapped[int] = mapped_column(Integer)
    flag_ids: Mapped[str] = mapped_column(Text)
    permit: Mapped[bytes] = mapped_column(LargeBinary)
    content: Mapped[bytes] = mapped_column(LargeBinary)  # the answer-items record
    state: Mapped[str] = mapped_column(String(10), index=True)  # held | released | refused
    held_at: Mapped[dt.datetime] = mapped_column(DateTime)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class ImsPermissionList(Base):
    """One accepted version of the signed 照会許可照会リスト, as distributed (R8)."""

    __tablename__ = "ims_permission_list"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    issued: Mapped[str] = mapped_column(String(14))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime)


class ImsUsedPermit(Base):
    """A spent 情報提供許可証 id: a permit answers one query only (R8 replay check).

    Kept until its permit expires (``expires_at``, revision ``0009``): after that a replay is
    refused as expired before the replay check is reached, so the row may go (the retention job
    deletes it, and the server no longer loads it).
    """

    __tablename__ = "ims_used_permit"

    permit_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    used_at: Mapped[dt.datetime] = mapped_column(DateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)


class ImsFugoRequest(Base):
    """A 符号 request of bango-renkei: the server's 依頼番号, the 団体内統合宛名番号 and, once the
    network issued it, the 処理通番 the 符号 will come back under (revision ``0011``). No
    住民票コード: the intermediate server never holds one."""

    __tablename__ = "ims_fugo_request"

    request_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    atena_no: Mapped[str] = mapped_column(String(20), unique=True)
    shori_tsuban: Mapped[str | None] = mapped_column(String(16), unique=True)
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime)


ims_flag: Table = table_of(ImsFlag)
ims_flag_member: Table = table_of(ImsFlagMember)
ims_held: Table = table_of(ImsHeldQuery)
ims_permission_list: Table = table_of(ImsPermissionList)
ims_used_permit: Table = table_of(ImsUsedPermit)
ims_fugo_request: Table = table_of(ImsFugoRequest)
