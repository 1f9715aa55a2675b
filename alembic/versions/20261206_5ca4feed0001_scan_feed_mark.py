"""scan feed mark: rollups and scan.created events derived after commit

Revision ID: 5ca4feed0001
Revises: 5ec0a1e50001
Create Date: 2026-12-06 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5ca4feed0001"
down_revision: str | None = "5ec0a1e50001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scan_feed_mark",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("last_scan_id", sa.BigInteger(), nullable=False),
        sa.Column("gap_since", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scan_feed_mark")),
    )
    # The scans stored so far were rolled up and sent by the writer's hooks, in their own
    # transactions: the feed starts after them.
    op.execute(
        "INSERT INTO scan_feed_mark (name, last_scan_id)"
        " SELECT 'analytics', COALESCE(max(id), 0) FROM scan_event"
    )


def downgrade() -> None:
    op.drop_table("scan_feed_mark")
