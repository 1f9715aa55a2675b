"""staff_user.must_change_password: a password an admin gave is to be replaced by the user's own

Revision ID: 0a0d10000001
Revises: 9c0a1e000001
Create Date: 2026-12-07 20:00:00

An admin creating an account or resetting a password types the password and passes it on, so
they know it; the user is asked on every page to choose their own until they do. Users there
before keep signing in as they did (false).

A plain ADD COLUMN with a server default on both databases: a batch copy of staff_user would
drop the table its sessions, API keys and recovery codes point at.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0a0d10000001"
down_revision: str | None = "9c0a1e000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "staff_user",
        sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("staff_user", "must_change_password")
