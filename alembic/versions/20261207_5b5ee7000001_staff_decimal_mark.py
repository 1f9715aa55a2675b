"""staff_user.decimal_mark: a staff user's decimal point or comma, typed and downloaded

Revision ID: 5b5ee7000001
Revises: 5ec4a1100002
Create Date: 2026-12-07 16:30:00

A phone set to German or Greek offers only a comma on its number pad, which the offer editor
refused; and Excel set up for a language with a decimal comma opens a comma-separated file as
one column of text. Each staff user now chooses their mark on their account page
(app.formats.DecimalMark). Everyone starts with the point, as every form and CSV had until now.

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
        sa.Column("decimal_mark", sa.String(16), nullable=False, server_default="point"),
    )


def downgrade() -> None:
    op.drop_column("staff_user", "decimal_mark")
