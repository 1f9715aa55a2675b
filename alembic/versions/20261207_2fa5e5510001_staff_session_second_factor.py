"""staff sessions remember whether a second factor was given

Revision ID: 2fa5e5510001
Revises: 9a27c0de0001
Create Date: 2026-12-07 03:00:00

With OFFERTRACK_REQUIRE_ADMIN_2FA on, an admin's session that began on the password alone ends
at its next request. Sessions live before this revision count as such (nothing recorded how
they began): where the setting is on, admins sign in once more. A plain ADD COLUMN with a
constant default, so SQLite does not copy the table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2fa5e5510001"
down_revision: str | None = "9a27c0de0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "staff_session",
        sa.Column("second_factor", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("staff_session", "second_factor")
