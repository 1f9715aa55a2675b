"""index for the staff list of stage updates: newest first, a page at a time

Revision ID: 5a6e11570001
Revises: 3eb400000001
Create Date: 2026-12-07 13:30:00

Each view of the staff list of stage updates read the whole table to show its newest 25 rows:
nothing indexed happened_at, so both databases sorted every row.

Plain CREATE INDEX in the migration's transaction (no table is copied on SQLite). On a large
PostgreSQL database it holds writes to stage_update while the index is built: seconds per
million rows.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5a6e11570001"
down_revision: str | None = "3eb400000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_stage_update_happened_at"), "stage_update", ["happened_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_stage_update_happened_at"), table_name="stage_update")
