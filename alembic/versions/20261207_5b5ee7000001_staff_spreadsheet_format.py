"""staff_user.spreadsheet_format: the layout of a staff user's CSV downloads

Revision ID: 5b5ee7000001
Revises: 5ec4a1100002
Create Date: 2026-12-07 16:30:00

Excel set up for a language with a decimal comma opens a comma-separated file as one column of
text; each staff user now chooses their layout on their account page (app.csvsafe). Everyone
starts with the layout every CSV had until now.

A plain ADD COLUMN with a server default on both databases: a batch copy of staff_user would
drop the table its sessions, API keys and recovery codes point at.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b5ee7000001"
down_revision: str | None = "5ec4a1100002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "staff_user",
        sa.Column("spreadsheet_format", sa.String(16), nullable=False, server_default="comma"),
    )


def downgrade() -> None:
    op.drop_column("staff_user", "spreadsheet_format")
