"""staff_alert indexes by created_at, for the dashboard's follow-ups (every view)

Revision ID: r1a0e1208001
Revises: b16da7000001
Create Date: 2026-12-08 00:00:00

"Your follow-ups" lists the last 14 days' alerts on the user's offers. Alerts are kept as long
as their offers (one per offer and day it was scanned), and without this index the card read
every one of them: a sequential scan of the table on PostgreSQL (some 300 ms for a million
alerts), every alert of every offer the user ever owned on SQLite, on each dashboard view.
PostgreSQL walks ix_staff_alert_created_at back from now; SQLite (no statistics) goes from the
user's offers to each one's recent alerts, by (offer_id, created_at), which replaces the index
on offer_id alone (its leading column serves the foreign key and the "opened" check as well).

Plain CREATE INDEX in the migration's transaction, as b0a4de500001: on a large PostgreSQL
database it holds writes to staff_alert for seconds per million rows while it is built.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "r1a0e1208001"
down_revision: str | None = "b16da7000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_staff_alert_created_at", "staff_alert", ["created_at"])
    op.create_index("ix_staff_alert_offer_id_created_at", "staff_alert", ["offer_id", "created_at"])
    op.drop_index("ix_staff_alert_offer_id", table_name="staff_alert")


def downgrade() -> None:
    op.create_index("ix_staff_alert_offer_id", "staff_alert", ["offer_id"])
    op.drop_index("ix_staff_alert_offer_id_created_at", table_name="staff_alert")
    op.drop_index("ix_staff_alert_created_at", table_name="staff_alert")
