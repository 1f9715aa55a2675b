"""staff_user.session_version goes

Revision ID: 5e5510fe0002
Revises: 2fa5e5510001
Create Date: 2026-12-07 03:20:00

The column counted the signed-cookie sessions of before 5ec0a1e50001; since then every session
is a staff_session row, ended on a password, role or active-flag change, and the column was
only written. A plain DROP COLUMN on both databases (SQLite 3.35+): a batch copy of staff_user
would drop the old table with foreign keys on, and its cascades would delete every user's
sessions, second factors and alert preferences and clear the offers' owners.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e5510fe0002"
down_revision: str | None = "2fa5e5510001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_column("staff_user", "session_version")


def downgrade() -> None:
    op.add_column(
        "staff_user",
        sa.Column("session_version", sa.Integer(), nullable=False, server_default="1"),
    )
