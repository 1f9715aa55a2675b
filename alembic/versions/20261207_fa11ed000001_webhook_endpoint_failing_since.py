"""webhook_endpoint.failing_since: an endpoint is switched off only after failing for a while

Revision ID: fa11ed000001
Revises: 5ec4a1100001
Create Date: 2026-12-07 14:00:00

An endpoint was switched off after 20 failed attempts in a row, counted across its events: on a
busy site a receiver down for a minute was off within minutes, until someone enabled it again.
It is now switched off only once its failures have also lasted
OFFERTRACK_WEBHOOK_DISABLE_AFTER_SECONDS (a day) since the first failure of the streak, whose
time this column keeps (NULL while the endpoint is not failing).

An enabled endpoint failing at the time of this step starts its streak now: its first failure
is not known, and a step that switched endpoints off at once would be the old hurry again.

A plain ADD COLUMN on both databases, as for ``updated_at`` (3eb400000001): a batch copy of
webhook_endpoint would drop the old table while its outbox rows and deliveries point at it.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "fa11ed000001"
down_revision: str | None = "5ec4a1100001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "webhook_endpoint", sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True)
    )
    now = sa.bindparam("now", datetime.now(UTC), type_=sa.DateTime(timezone=True))
    op.execute(
        sa.text(
            "UPDATE webhook_endpoint SET failing_since = :now WHERE failure_count > 0 AND enabled"
        ).bindparams(now)
    )


def downgrade() -> None:
    op.drop_column("webhook_endpoint", "failing_since")
