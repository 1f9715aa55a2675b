"""campaign analytics: campaigns, placements (dynamic codes), creatives, conversions,
webhook endpoints, outbox and delivery log, the daily scan rollup; campaign columns on offers
and scan events

Revision ID: 0d7976733b68
Revises: 20043e42d597
Create Date: 2026-11-23 16:06:40.549467
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate may render sqlmodel's AutoString)
from alembic import op


revision: str = '0d7976733b68'
down_revision: str | None = '20043e42d597'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('campaign',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=True),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('utm_source', sa.String(length=100), nullable=False),
    sa.Column('utm_medium', sa.String(length=100), nullable=False),
    sa.Column('utm_campaign', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign')),
    sa.UniqueConstraint('name', name=op.f('uq_campaign_name'))
    )
    op.create_table('campaign_day_total',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('placement_id', sa.Integer(), nullable=False),
    sa.Column('creative_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('device_class', sa.String(length=16), nullable=False),
    sa.Column('scans', sa.Integer(), nullable=False),
    sa.Column('visitors', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_day_total'))
    )
    with op.batch_alter_table('campaign_day_total', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_day_total_day_dimensions', ['day', 'campaign_id', 'placement_id', 'creative_id', 'channel', 'device_class'], unique=True)

    op.create_table('visitor_seen',
    sa.Column('visitor_hash', sa.String(length=64), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('visitor_hash', name=op.f('pk_visitor_seen'))
    )
    with op.batch_alter_table('visitor_seen', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_visitor_seen_seen_at'), ['seen_at'], unique=False)

    op.create_table('webhook_endpoint',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('secret', sa.String(length=100), nullable=False),
    sa.Column('event_types', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('failure_count', sa.Integer(), nullable=False),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoint'))
    )
    op.create_table('creative',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('utm_content', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_creative_campaign_id_campaign'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_creative'))
    )
    with op.batch_alter_table('creative', schema=None) as batch_op:
        batch_op.create_index('ix_creative_campaign_id_name', ['campaign_id', 'name'], unique=True)

    op.create_table('webhook_outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=26), nullable=False),
    sa.Column('event_type', sa.String(length=40), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoint.id'], name=op.f('fk_webhook_outbox_endpoint_id_webhook_endpoint'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_outbox'))
    )
    with op.batch_alter_table('webhook_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_outbox_delivered_at_next_attempt_at', ['delivered_at', 'next_attempt_at'], unique=False)

    op.create_table('placement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('slug', sa.String(length=40), nullable=False),
    sa.Column('fallback_url', sa.String(length=2000), nullable=False),
    sa.Column('fallback_creative_id', sa.Integer(), nullable=True),
    sa.Column('split_mode', sa.String(length=16), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_placement_campaign_id_campaign'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['fallback_creative_id'], ['creative.id'], name=op.f('fk_placement_fallback_creative_id_creative'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_placement')),
    sa.UniqueConstraint('slug', name=op.f('uq_placement_slug'))
    )
    with op.batch_alter_table('placement', schema=None) as batch_op:
        batch_op.create_index('ix_placement_campaign_id_name', ['campaign_id', 'name'], unique=True)

    op.create_table('webhook_delivery',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('outbox_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=26), nullable=False),
    sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('succeeded', sa.Boolean(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoint.id'], name=op.f('fk_webhook_delivery_endpoint_id_webhook_endpoint'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['outbox_id'], ['webhook_outbox.id'], name=op.f('fk_webhook_delivery_outbox_id_webhook_outbox'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_delivery'))
    )
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_delivery_endpoint_id_attempted_at', ['endpoint_id', 'attempted_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_delivery_outbox_id'), ['outbox_id'], unique=False)

    op.create_table('conversion',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('external_key', sa.String(length=200), nullable=False),
    sa.Column('body_hash', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('offer_id', sa.String(length=26), nullable=True),
    sa.Column('value', sa.Numeric(precision=16, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('channel', sa.String(length=40), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('seconds_to_convert', sa.Integer(), nullable=True),
    sa.Column('first_scan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('last_scan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('first_campaign_id', sa.Integer(), nullable=True),
    sa.Column('first_placement_id', sa.Integer(), nullable=True),
    sa.Column('first_creative_id', sa.Integer(), nullable=True),
    sa.Column('last_campaign_id', sa.Integer(), nullable=True),
    sa.Column('last_placement_id', sa.Integer(), nullable=True),
    sa.Column('last_creative_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['offer_id'], ['offer.id'], name=op.f('fk_conversion_offer_id_offer'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversion')),
    sa.UniqueConstraint('external_key', name=op.f('uq_conversion_external_key'))
    )
    with op.batch_alter_table('conversion', schema=None) as batch_op:
        batch_op.create_index('ix_conversion_occurred_at', ['occurred_at'], unique=False)

    with op.batch_alter_table('offer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('campaign_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('placement_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('creative_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_offer_creative_id_creative'), 'creative', ['creative_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_offer_placement_id_placement'), 'placement', ['placement_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_offer_campaign_id_campaign'), 'campaign', ['campaign_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('scan_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('campaign_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('placement_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('creative_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_scan_event_placement_id_occurred_at', ['placement_id', 'occurred_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('scan_event', schema=None) as batch_op:
        batch_op.drop_index('ix_scan_event_placement_id_occurred_at')
        batch_op.drop_column('creative_id')
        batch_op.drop_column('placement_id')
        batch_op.drop_column('campaign_id')

    with op.batch_alter_table('offer', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_offer_campaign_id_campaign'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_offer_placement_id_placement'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_offer_creative_id_creative'), type_='foreignkey')
        batch_op.drop_column('creative_id')
        batch_op.drop_column('placement_id')
        batch_op.drop_column('campaign_id')

    with op.batch_alter_table('conversion', schema=None) as batch_op:
        batch_op.drop_index('ix_conversion_occurred_at')

    op.drop_table('conversion')
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_delivery_outbox_id'))
        batch_op.drop_index('ix_webhook_delivery_endpoint_id_attempted_at')

    op.drop_table('webhook_delivery')
    with op.batch_alter_table('placement', schema=None) as batch_op:
        batch_op.drop_index('ix_placement_campaign_id_name')

    op.drop_table('placement')
    with op.batch_alter_table('webhook_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_outbox_delivered_at_next_attempt_at')

    op.drop_table('webhook_outbox')
    with op.batch_alter_table('creative', schema=None) as batch_op:
        batch_op.drop_index('ix_creative_campaign_id_name')

    op.drop_table('creative')
    op.drop_table('webhook_endpoint')
    with op.batch_alter_table('visitor_seen', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_visitor_seen_seen_at'))

    op.drop_table('visitor_seen')
    with op.batch_alter_table('campaign_day_total', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_day_total_day_dimensions')

    op.drop_table('campaign_day_total')
    op.drop_table('campaign')
