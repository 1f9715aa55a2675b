"""orders, stages and scan events

Revision ID: 19d2cb7bded0
Revises: 6cf143c7a7df
Create Date: 2026-11-22 22:48:08.409952
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate may render sqlmodel's AutoString)
from alembic import op


revision: str = '19d2cb7bded0'
down_revision: str | None = '6cf143c7a7df'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('order_stage',
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_order_stage')),
    sa.UniqueConstraint('label', name=op.f('uq_order_stage_label')),
    sa.UniqueConstraint('position', name=op.f('uq_order_stage_position'))
    )
    # The default stage list; staff can rename, reorder and extend it later.
    op.bulk_insert(
        sa.table("order_stage", sa.column("key"), sa.column("label"), sa.column("position")),
        [
            {"key": "confirmed", "label": "Order confirmed", "position": 1},
            {"key": "in_production", "label": "In production", "position": 2},
            {"key": "quality_check", "label": "Quality check", "position": 3},
            {"key": "ready_for_dispatch", "label": "Ready for dispatch", "position": 4},
            {"key": "shipped", "label": "Shipped", "position": 5},
            {"key": "delivered", "label": "Delivered", "position": 6},
        ],
    )
    op.create_table('visitor_key',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('secret', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_visitor_key'))
    )
    op.create_table('scan_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('offer_id', sa.String(length=26), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('code_form', sa.String(length=8), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('device_class', sa.String(length=16), nullable=False),
    sa.Column('os_family', sa.String(length=50), nullable=False),
    sa.Column('browser_family', sa.String(length=50), nullable=False),
    sa.Column('referrer_host', sa.String(length=255), nullable=False),
    sa.Column('is_bot', sa.Boolean(), nullable=False),
    sa.Column('visitor_hash', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['offer_id'], ['offer.id'], name=op.f('fk_scan_event_offer_id_offer'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scan_event'))
    )
    with op.batch_alter_table('scan_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scan_event_occurred_at'), ['occurred_at'], unique=False)
        batch_op.create_index('ix_scan_event_offer_id_occurred_at', ['offer_id', 'occurred_at'], unique=False)

    op.create_table('stage_update',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('offer_id', sa.String(length=26), nullable=False),
    sa.Column('stage_key', sa.String(length=40), nullable=False),
    sa.Column('happened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('public_note', sa.Text(), nullable=False),
    sa.Column('internal_note', sa.Text(), nullable=False),
    sa.Column('expected_delivery_date', sa.Date(), nullable=True),
    sa.Column('carrier', sa.String(length=100), nullable=False),
    sa.Column('tracking_number', sa.String(length=100), nullable=False),
    sa.Column('tracking_link', sa.String(length=500), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['offer_id'], ['offer.id'], name=op.f('fk_stage_update_offer_id_offer'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['stage_key'], ['order_stage.key'], name=op.f('fk_stage_update_stage_key_order_stage')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stage_update'))
    )
    with op.batch_alter_table('stage_update', schema=None) as batch_op:
        batch_op.create_index('ix_stage_update_offer_id_happened_at', ['offer_id', 'happened_at'], unique=False)

    with op.batch_alter_table('offer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('accepted_by_name', sa.String(length=200), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('accepted_po_number', sa.String(length=100), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('declined_reason', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('activated_by', sa.String(length=200), nullable=False, server_default=''))



def downgrade() -> None:
    with op.batch_alter_table("offer", schema=None) as batch_op:
        batch_op.drop_column('activated_by')
        batch_op.drop_column('declined_reason')
        batch_op.drop_column('accepted_po_number')
        batch_op.drop_column('accepted_by_name')

    with op.batch_alter_table('stage_update', schema=None) as batch_op:
        batch_op.drop_index('ix_stage_update_offer_id_happened_at')

    op.drop_table('stage_update')
    with op.batch_alter_table('scan_event', schema=None) as batch_op:
        batch_op.drop_index('ix_scan_event_offer_id_occurred_at')
        batch_op.drop_index(batch_op.f('ix_scan_event_occurred_at'))

    op.drop_table('scan_event')
    op.drop_table('visitor_key')
    op.drop_table('order_stage')
