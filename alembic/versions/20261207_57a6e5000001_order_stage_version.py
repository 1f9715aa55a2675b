"""order_stage.updated_at: a stage's version, so an admin's save from an older form is refused

Revision ID: 57a6e5000001
Revises: 57a9e0000001
Create Date: 2026-12-07 10:00:00

Two admins editing the stage list each saved the whole stage (label and position) they had
opened: the second save silently undid the first's rename or move. A stage now has a version
like every other record staff edit (app/versions.py), its ``updated_at``; existing stages take
the time of this step.

A plain ADD COLUMN on both databases (SQLite 3.35+): a batch copy of order_stage would drop
the old table while every stage update points at it. SQLite adds a NOT NULL column only with a
constant default, which the UPDATE below replaces at once; the model always sets the column.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "57a6e5000001"
down_revision: str | None = "57a9e0000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EPOCH = "1970-01-01 00:00:00+00:00"


def upgrade() -> None:
    op.add_column(
        "order_stage",
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=EPOCH),
    )
    now = sa.bindparam("now", datetime.now(UTC), type_=sa.DateTime(timezone=True))
    op.execute(sa.text("UPDATE order_stage SET updated_at = :now").bindparams(now))


def downgrade() -> None:
    op.drop_column("order_stage", "updated_at")
