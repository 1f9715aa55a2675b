"""webhook_endpoint.updated_at: an endpoint's version, so an API PATCH from an old read is refused

Revision ID: 3eb400000001
Revises: 57a6e5000001
Create Date: 2026-12-07 13:00:00

Two clients changing one webhook endpoint (its URL, its event types) each saved what they had
read: the second silently undid the first. An endpoint now has a version like campaigns and
placements (app/versions.py), its ``updated_at``, sent as the ETag and taken back in If-Match;
existing endpoints take the time of this step.

A plain ADD COLUMN on both databases (SQLite 3.35+), as for order_stage: a batch copy of
webhook_endpoint would drop the old table while its outbox rows and deliveries point at it.
SQLite adds a NOT NULL column only with a constant default, which the UPDATE below replaces at
once; the model always sets the column.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "3eb400000001"
down_revision: str | None = "57a6e5000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EPOCH = "1970-01-01 00:00:00+00:00"


def upgrade() -> None:
    op.add_column(
        "webhook_endpoint",
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=EPOCH),
    )
    now = sa.bindparam("now", datetime.now(UTC), type_=sa.DateTime(timezone=True))
    op.execute(sa.text("UPDATE webhook_endpoint SET updated_at = :now").bindparams(now))


def downgrade() -> None:
    op.drop_column("webhook_endpoint", "updated_at")
