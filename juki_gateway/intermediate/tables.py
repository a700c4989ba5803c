"""Tables of the intermediate server that the registry store's schema does not carry yet.

The store (issue 4) has ``fugo_map``, ``fukuhon``, ``provision_record`` and the audit log, which
this service uses as they are. Its flag tables keep one row per (person, item) and no 項番
scope, reason code, review date or pending-set state, which R7's fail-closed rules need, so the
flags live here; held queries here keep the content that would be sent. These tables use their
own ``MetaData`` and :func:`ensure_tables` creates them (idempotent); folding them into the
store's models and an Alembic migration is left to the lead.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

ims_flag = Table(
    "ims_flag",
    metadata,
    Column("flag_id", String(40), primary_key=True),
    Column("atena_no", String(20), nullable=False, index=True),
    Column("scopes", Text, nullable=False),  # space-separated 項番:item, empty = all
    Column("reason_code", String(4), nullable=False),
    Column("review_date", String(8), nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("requested_by", String(64), nullable=False),
    Column("requested_at", String(14), nullable=False),
    Column("confirmed_by", String(64)),
    Column("confirmed_at", String(14)),
    Column("clear_requested_by", String(64)),
    Column("clear_requested_at", String(14)),
    Column("cleared_by", String(64)),
    Column("cleared_at", String(14)),
)

ims_held = Table(
    "ims_held_query",
    metadata,
    Column("held_id", String(40), primary_key=True),
    Column("permit_id", String(32), nullable=False, unique=True),
    Column("requester", String(16), nullable=False),
    Column("atena_no", String(20), nullable=False, index=True),
    Column("kouban", Integer, nullable=False),
    Column("items", Text, nullable=False),
    Column("reason_code", Integer, nullable=False),
    Column("flag_ids", Text, nullable=False),
    Column("permit", LargeBinary, nullable=False),
    Column("content", LargeBinary, nullable=False),  # the answer-items record that would be sent
    Column("state", String(10), nullable=False, index=True),  # held | released | refused
    Column("held_at", DateTime, nullable=False),
    Column("decided_by", String(64)),
    Column("decided_at", DateTime),
)

ims_permission_list = Table(
    "ims_permission_list",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("issued", String(14), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("received_at", DateTime, nullable=False),
)

ims_used_permit = Table(
    "ims_used_permit",
    metadata,
    Column("permit_id", String(32), primary_key=True),
    Column("used_at", DateTime, nullable=False),
)


def ensure_tables(engine: Engine) -> None:
    """Create the intermediate server's own tables if they do not exist."""
    metadata.create_all(engine)
