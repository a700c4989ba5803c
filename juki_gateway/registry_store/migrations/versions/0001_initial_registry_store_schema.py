"""Initial registry store schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26 11:12:03.290602
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('audit_chain_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('anchor_hash', sa.String(length=64), nullable=False),
    sa.Column('last_id', sa.BigInteger(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=False),
    sa.Column('entry_count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_chain_head'))
    )
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('occurred_at', sa.DateTime(), nullable=False),
    sa.Column('operator_id', sa.String(length=32), nullable=False),
    sa.Column('terminal_id', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('entry_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_occurred_at'), ['occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_operator_id'), ['operator_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_subject'), ['subject'], unique=False)

    op.create_table('auto_response_block',
    sa.Column('atena_no', sa.String(length=20), nullable=False),
    sa.Column('item', sa.String(length=32), nullable=False),
    sa.Column('set_by', sa.String(length=32), nullable=False),
    sa.Column('confirmed_by', sa.String(length=32), nullable=False),
    sa.Column('set_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('atena_no', 'item', name=op.f('pk_auto_response_block'))
    )
    op.create_table('deleted_resident',
    sa.Column('juminhyo_code', sa.String(length=11), nullable=False),
    sa.Column('deleted_on', sa.Date(), nullable=False),
    sa.Column('deceased', sa.Boolean(), nullable=False),
    sa.Column('kojin_bango', sa.String(length=12), nullable=True),
    sa.Column('name_kanji', sa.String(length=64), nullable=False),
    sa.Column('seion_kana', sa.String(length=64), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('sex', sa.String(length=1), nullable=False),
    sa.Column('municipality_code', sa.String(length=6), nullable=False),
    sa.Column('address', sa.String(length=200), nullable=False),
    sa.Column('change_reason', sa.String(length=4), nullable=False),
    sa.Column('change_date', sa.Date(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('record', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('juminhyo_code', name=op.f('pk_deleted_resident'))
    )
    with op.batch_alter_table('deleted_resident', schema=None) as batch_op:
        batch_op.create_index('ix_deleted_resident_deleted_on', ['deleted_on'], unique=False)
        batch_op.create_index('ix_deleted_resident_kojin_bango', ['kojin_bango'], unique=False)
        batch_op.create_index('ix_deleted_resident_name_birth', ['name_kanji', 'birth_date'], unique=False)

    op.create_table('fugo_map',
    sa.Column('fugo', sa.String(length=64), nullable=False),
    sa.Column('atena_no', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('fugo', name=op.f('pk_fugo_map')),
    sa.UniqueConstraint('atena_no', name=op.f('uq_fugo_map_atena_no'))
    )
    op.create_table('fukuhon',
    sa.Column('atena_no', sa.String(length=20), nullable=False),
    sa.Column('koban', sa.String(length=10), nullable=False),
    sa.Column('record', sa.LargeBinary(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('atena_no', 'koban', name=op.f('pk_fukuhon'))
    )
    op.create_table('held_query',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('query_id', sa.String(length=64), nullable=False),
    sa.Column('requester', sa.String(length=64), nullable=False),
    sa.Column('atena_no', sa.String(length=20), nullable=False),
    sa.Column('koban', sa.String(length=10), nullable=False),
    sa.Column('items', sa.Text(), nullable=False),
    sa.Column('request', sa.LargeBinary(), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('held_at', sa.DateTime(), nullable=False),
    sa.Column('decided_by', sa.String(length=32), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_held_query')),
    sa.UniqueConstraint('query_id', name=op.f('uq_held_query_query_id'))
    )
    with op.batch_alter_table('held_query', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_held_query_atena_no'), ['atena_no'], unique=False)
        batch_op.create_index(batch_op.f('ix_held_query_state'), ['state'], unique=False)

    op.create_table('honnin_kakunin',
    sa.Column('juminhyo_code', sa.String(length=11), nullable=False),
    sa.Column('history_no', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('kojin_bango', sa.String(length=12), nullable=True),
    sa.Column('name_kanji', sa.String(length=64), nullable=False),
    sa.Column('seion_kana', sa.String(length=64), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('sex', sa.String(length=1), nullable=False),
    sa.Column('municipality_code', sa.String(length=6), nullable=False),
    sa.Column('address', sa.String(length=200), nullable=False),
    sa.Column('change_reason', sa.String(length=4), nullable=False),
    sa.Column('change_date', sa.Date(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('record', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('juminhyo_code', name=op.f('pk_honnin_kakunin')),
    sqlite_with_rowid=False,
    )
    with op.batch_alter_table('honnin_kakunin', schema=None) as batch_op:
        batch_op.create_index('ix_honnin_kakunin_kana_birth', ['seion_kana', 'birth_date'], unique=False)
        batch_op.create_index('ix_honnin_kakunin_kojin_bango', ['kojin_bango'], unique=False)
        batch_op.create_index('ix_honnin_kakunin_name_address', ['name_kanji', 'address'], unique=False)
        batch_op.create_index('ix_honnin_kakunin_name_birth', ['name_kanji', 'birth_date'], unique=False)

    op.create_table('honnin_kakunin_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('juminhyo_code', sa.String(length=11), nullable=False),
    sa.Column('history_no', sa.Integer(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('superseded_at', sa.DateTime(), nullable=False),
    sa.Column('kojin_bango', sa.String(length=12), nullable=True),
    sa.Column('name_kanji', sa.String(length=64), nullable=False),
    sa.Column('seion_kana', sa.String(length=64), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('sex', sa.String(length=1), nullable=False),
    sa.Column('municipality_code', sa.String(length=6), nullable=False),
    sa.Column('address', sa.String(length=200), nullable=False),
    sa.Column('change_reason', sa.String(length=4), nullable=False),
    sa.Column('change_date', sa.Date(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('record', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_honnin_kakunin_history'))
    )
    with op.batch_alter_table('honnin_kakunin_history', schema=None) as batch_op:
        batch_op.create_index('ix_honnin_kakunin_history_code_no', ['juminhyo_code', 'history_no'], unique=True)
        batch_op.create_index('ix_honnin_kakunin_history_superseded_at', ['superseded_at'], unique=False)

    op.create_table('inbox',
    sa.Column('receiver', sa.String(length=64), nullable=False),
    sa.Column('sender', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('msg_type', sa.Integer(), nullable=False),
    sa.Column('applied_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('receiver', 'sender', 'seq', name=op.f('pk_inbox'))
    )
    op.create_table('kojin_bango',
    sa.Column('kojin_bango', sa.String(length=12), nullable=False),
    sa.Column('juminhyo_code', sa.String(length=11), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('assigned_at', sa.DateTime(), nullable=False),
    sa.Column('deceased_on', sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint('kojin_bango', name=op.f('pk_kojin_bango'))
    )
    with op.batch_alter_table('kojin_bango', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kojin_bango_juminhyo_code'), ['juminhyo_code'], unique=False)

    op.create_table('operator',
    sa.Column('operator_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('operator_id', name=op.f('pk_operator'))
    )
    op.create_table('outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('link', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('msg_type', sa.Integer(), nullable=False),
    sa.Column('frame', sa.LargeBinary(), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_try_at', sa.DateTime(), nullable=False),
    sa.Column('claimed_by', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('link', 'seq', name='uq_outbox_link_seq')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_due', ['link', 'state', 'next_try_at'], unique=False)

    op.create_table('pending_confirmation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('atena_no', sa.String(length=20), nullable=False),
    sa.Column('item', sa.String(length=32), nullable=False),
    sa.Column('action', sa.String(length=10), nullable=False),
    sa.Column('requested_by', sa.String(length=32), nullable=False),
    sa.Column('requested_at', sa.DateTime(), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('decided_by', sa.String(length=32), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_confirmation'))
    )
    with op.batch_alter_table('pending_confirmation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pending_confirmation_atena_no'), ['atena_no'], unique=False)

    op.create_table('permission_list',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('requester', sa.String(length=64), nullable=False),
    sa.Column('koban', sa.String(length=10), nullable=False),
    sa.Column('items', sa.Text(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_permission_list'))
    )
    with op.batch_alter_table('permission_list', schema=None) as batch_op:
        batch_op.create_index('ix_permission_list_requester_koban', ['requester', 'koban'], unique=False)

    op.create_table('provision_record',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('occurred_at', sa.DateTime(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('recipient', sa.String(length=64), nullable=False),
    sa.Column('operator_id', sa.String(length=32), nullable=True),
    sa.Column('subject', sa.String(length=20), nullable=False),
    sa.Column('items', sa.Text(), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provision_record'))
    )
    with op.batch_alter_table('provision_record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provision_record_occurred_at'), ['occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_provision_record_subject'), ['subject'], unique=False)

    op.create_table('seq_counter',
    sa.Column('link', sa.String(length=64), nullable=False),
    sa.Column('next_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('link', name=op.f('pk_seq_counter'))
    )
    op.create_table('soufusaki',
    sa.Column('soufusaki_no', sa.String(length=20), nullable=False),
    sa.Column('juminhyo_code', sa.String(length=11), nullable=False),
    sa.Column('kojin_bango', sa.String(length=12), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.Column('record', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('soufusaki_no', name=op.f('pk_soufusaki'))
    )
    with op.batch_alter_table('soufusaki', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_soufusaki_juminhyo_code'), ['juminhyo_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_soufusaki_kojin_bango'), ['kojin_bango'], unique=False)
        batch_op.create_index(batch_op.f('ix_soufusaki_sent_at'), ['sent_at'], unique=False)



def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('soufusaki', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_soufusaki_sent_at'))
        batch_op.drop_index(batch_op.f('ix_soufusaki_kojin_bango'))
        batch_op.drop_index(batch_op.f('ix_soufusaki_juminhyo_code'))

    op.drop_table('soufusaki')
    op.drop_table('seq_counter')
    with op.batch_alter_table('provision_record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_provision_record_subject'))
        batch_op.drop_index(batch_op.f('ix_provision_record_occurred_at'))

    op.drop_table('provision_record')
    with op.batch_alter_table('permission_list', schema=None) as batch_op:
        batch_op.drop_index('ix_permission_list_requester_koban')

    op.drop_table('permission_list')
    with op.batch_alter_table('pending_confirmation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pending_confirmation_atena_no'))

    op.drop_table('pending_confirmation')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_due')

    op.drop_table('outbox')
    op.drop_table('operator')
    with op.batch_alter_table('kojin_bango', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kojin_bango_juminhyo_code'))

    op.drop_table('kojin_bango')
    op.drop_table('inbox')
    with op.batch_alter_table('honnin_kakunin_history', schema=None) as batch_op:
        batch_op.drop_index('ix_honnin_kakunin_history_superseded_at')
        batch_op.drop_index('ix_honnin_kakunin_history_code_no')

    op.drop_table('honnin_kakunin_history')
    with op.batch_alter_table('honnin_kakunin', schema=None) as batch_op:
        batch_op.drop_index('ix_honnin_kakunin_name_birth')
        batch_op.drop_index('ix_honnin_kakunin_name_address')
        batch_op.drop_index('ix_honnin_kakunin_kojin_bango')
        batch_op.drop_index('ix_honnin_kakunin_kana_birth')

    op.drop_table('honnin_kakunin')
    with op.batch_alter_table('held_query', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_held_query_state'))
        batch_op.drop_index(batch_op.f('ix_held_query_atena_no'))

    op.drop_table('held_query')
    op.drop_table('fukuhon')
    op.drop_table('fugo_map')
    with op.batch_alter_table('deleted_resident', schema=None) as batch_op:
        batch_op.drop_index('ix_deleted_resident_name_birth')
        batch_op.drop_index('ix_deleted_resident_kojin_bango')
        batch_op.drop_index('ix_deleted_resident_deleted_on')

    op.drop_table('deleted_resident')
    op.drop_table('auto_response_block')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_subject'))
        batch_op.drop_index(batch_op.f('ix_audit_log_operator_id'))
        batch_op.drop_index(batch_op.f('ix_audit_log_occurred_at'))

    op.drop_table('audit_log')
    op.drop_table('audit_chain_head')
