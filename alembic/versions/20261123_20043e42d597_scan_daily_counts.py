"""scan daily counts: scan events past the retention period, rolled up per UTC day

campaign_id, placement_id and creative_id are plain integers without a foreign key on purpose:
campaign analytics fills them once scan events carry them (and may add the keys then).

Revision ID: 20043e42d597
Revises: 7e51e5d56942
Create Date: 2026-11-23 16:05:43.922631
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate may render sqlmodel's AutoString)
from alembic import op


revision: str = '20043e42d597'
down_revision: str | None = '7e51e5d56942'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('scan_daily',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('offer_id', sa.String(length=26), nullable=True),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('placement_id', sa.Integer(), nullable=True),
    sa.Column('creative_id', sa.Integer(), nullable=True),
    sa.Column('code_form', sa.String(length=8), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('device_class', sa.String(length=16), nullable=False),
    sa.Column('is_bot', sa.Boolean(), nullable=False),
    sa.Column('scans', sa.Integer(), nullable=False),
    sa.Column('unique_visitors', sa.Integer(), nullable=False),
    sa.Column('untracked_scans', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['offer_id'], ['offer.id'], name=op.f('fk_scan_daily_offer_id_offer'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scan_daily'))
    )
    with op.batch_alter_table('scan_daily', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scan_daily_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_scan_daily_day'), ['day'], unique=False)
        batch_op.create_index('ix_scan_daily_offer_id_day', ['offer_id', 'day'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('scan_daily', schema=None) as batch_op:
        batch_op.drop_index('ix_scan_daily_offer_id_day')
        batch_op.drop_index(batch_op.f('ix_scan_daily_day'))
        batch_op.drop_index(batch_op.f('ix_scan_daily_campaign_id'))

    op.drop_table('scan_daily')
