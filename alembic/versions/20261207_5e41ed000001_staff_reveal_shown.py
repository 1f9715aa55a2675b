"""secrets revealed once after a redirect are recorded as shown

Revision ID: 5e41ed000001
Revises: 5b5ee7000001
Create Date: 2026-12-07 16:30:00

A new webhook secret, API key or set of recovery codes waits sealed in the staff session's
cookie for the page the form redirects to. A replayed copy of the cookie from the redirect
showed it again for up to ten minutes; app.admin.reveal now records each seal it shows here
(a hash of the seal, never the secret), and a seal already recorded shows nothing.

Going down drops the records: secrets waiting then could be shown once more by a copy of the
cookie, as before this revision.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e41ed000001"
down_revision: str | None = "5b5ee7000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_reveal_shown",
        sa.Column("seal_hash", sa.String(length=64), nullable=False),
        sa.Column("shown_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seal_hash", name=op.f("pk_staff_reveal_shown")),
    )
    op.create_index(
        op.f("ix_staff_reveal_shown_shown_at"), "staff_reveal_shown", ["shown_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_staff_reveal_shown_shown_at"), table_name="staff_reveal_shown")
    op.drop_table("staff_reveal_shown")
