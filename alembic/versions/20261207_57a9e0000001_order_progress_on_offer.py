"""offer.stage_position and offer.expected_delivery_date: an order's progress on its row

Revision ID: 57a9e0000001
Revises: b0a4de500001
Create Date: 2026-12-07 06:10:00

The staff dashboard worked out every order's current stage and latest expected delivery from
its whole stage history at every view (every stage update ever, growing with every delivered
order). The order keeps both now, written with each change of its history
(app/tracking/progress.py); this step backfills them from the history by the same rule: the
position of the furthest stage, and the date of the latest update (by happened_at, then id)
that named one.

Plain ADD/DROP COLUMN on both databases (SQLite 3.35+): a batch copy of offer would drop the
old table with foreign keys on, and its cascades would delete every order's lines, stage
updates and scans.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "57a9e0000001"
down_revision: str | None = "b0a4de500001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_offer_stage_position_expected_delivery_date"
BACKFILL = """
UPDATE offer SET
  stage_position = (
    SELECT max(order_stage.position) FROM stage_update
    JOIN order_stage ON order_stage.key = stage_update.stage_key
    WHERE stage_update.offer_id = offer.id
  ),
  expected_delivery_date = (
    SELECT stage_update.expected_delivery_date FROM stage_update
    WHERE stage_update.offer_id = offer.id AND stage_update.expected_delivery_date IS NOT NULL
    ORDER BY stage_update.happened_at DESC, stage_update.id DESC
    LIMIT 1
  )
WHERE offer.id IN (SELECT offer_id FROM stage_update)
"""


def upgrade() -> None:
    op.add_column("offer", sa.Column("stage_position", sa.Integer(), nullable=True))
    op.add_column("offer", sa.Column("expected_delivery_date", sa.Date(), nullable=True))
    op.execute(BACKFILL)
    op.create_index(INDEX, "offer", ["stage_position", "expected_delivery_date"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="offer")
    op.drop_column("offer", "expected_delivery_date")
    op.drop_column("offer", "stage_position")
