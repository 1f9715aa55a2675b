"""order_subscription.language: order updates in the language the customer subscribed in

Revision ID: 9c0a1e000001
Revises: d3c1a0000001
Create Date: 2026-12-07 19:45:00

A customer who asked for updates on the English page of a Greek order got the confirmation in
English, then every update in Greek. The subscription now keeps the language of the page it
was asked for on (one of app.i18n's codes), and its mails are written in it. Rows from before
have none (NULL): their mails stay in the offer's language, as they were.

A plain ADD COLUMN on both databases: a batch copy of order_subscription on SQLite would
rebuild the table and, with it, the AUTOINCREMENT that keeps ids from being given again
(5ec4a1100002).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9c0a1e000001"
down_revision: str | None = "d3c1a0000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("order_subscription", sa.Column("language", sa.String(5), nullable=True))


def downgrade() -> None:
    op.drop_column("order_subscription", "language")
