"""staff_session.confirmed_at: when the session last proved its user's password or code

Revision ID: 5d0000000001
Revises: l05e1207a002
Create Date: 2026-12-07 23:00:00

Sensitive staff actions ("sudo mode", app/admin/sudo.py) need the password (or a current
two-factor code) given within OFFERTRACK_SUDO_MINUTES. Sessions open at the time of this step
have no known confirmation (NULL): their next sensitive action asks first, as it should.

A plain ADD COLUMN on both databases, as for ``failing_since`` (fa11ed000001).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d0000000001"
down_revision: str | None = "l05e1207a002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "staff_session", sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("staff_session", "confirmed_at")
