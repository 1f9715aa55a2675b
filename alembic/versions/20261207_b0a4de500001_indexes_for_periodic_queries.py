"""indexes for the queries that run every second, every few minutes or on every dashboard view

Revision ID: b0a4de500001
Revises: 5e5510fe0002
Create Date: 2026-12-07 06:00:00

Each of these queries read a table that grows without end (or its processed rows) to return a
few rows: the mail worker's claim and backlog (every second: every mail refused for good, and
on PostgreSQL with statistics every mail there was), the subscription fan-out's claim (every
second: PostgreSQL without statistics walked every fan-out done), the digest and validity jobs
(every 10 minutes: every alert, every issued offer that ever expired), the hourly purge of
unconfirmed subscriptions, the staff dashboard's counts of the month (every view: every offer)
and a webhook endpoint's latest attempts (every attempt of the endpoint).

Plain CREATE INDEX in the migration's transaction (no table is copied on SQLite). On a large
PostgreSQL database it holds writes to each table while its index is built: mail_outbox and
update_fanout are short, offer, staff_alert and webhook_delivery take seconds per million rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b0a4de500001"
down_revision: str | None = "5e5510fe0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAIL_WAITING = sa.text("sent_at IS NULL AND failed_at IS NULL")
FANOUT_PENDING = sa.text("done_at IS NULL")


def upgrade() -> None:
    op.drop_index("ix_mail_outbox_sent_at_next_attempt_at", table_name="mail_outbox")
    op.create_index(
        "ix_mail_outbox_sent_at_failed_at_next_attempt_at",
        "mail_outbox",
        ["sent_at", "failed_at", "next_attempt_at"],
    )
    op.create_index(
        "ix_mail_outbox_waiting",
        "mail_outbox",
        ["id"],
        postgresql_where=MAIL_WAITING,
        sqlite_where=MAIL_WAITING,
    )
    op.create_index(
        "ix_update_fanout_pending",
        "update_fanout",
        ["id"],
        postgresql_where=FANOUT_PENDING,
        sqlite_where=FANOUT_PENDING,
    )
    op.create_index(
        "ix_order_subscription_confirmed_at_created_at",
        "order_subscription",
        ["confirmed_at", "created_at"],
    )
    op.create_index(
        "ix_staff_alert_mode_digest_sent_at_created_at",
        "staff_alert",
        ["mode", "digest_sent_at", "created_at"],
    )
    op.create_index("ix_offer_status_valid_until", "offer", ["status", "valid_until"])
    op.create_index(op.f("ix_offer_issued_at"), "offer", ["issued_at"])
    op.create_index(op.f("ix_offer_accepted_at"), "offer", ["accepted_at"])
    op.create_index(op.f("ix_offer_ordered_at"), "offer", ["ordered_at"])
    op.create_index(
        "ix_webhook_delivery_endpoint_id_id", "webhook_delivery", ["endpoint_id", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_delivery_endpoint_id_id", table_name="webhook_delivery")
    op.drop_index(op.f("ix_offer_ordered_at"), table_name="offer")
    op.drop_index(op.f("ix_offer_accepted_at"), table_name="offer")
    op.drop_index(op.f("ix_offer_issued_at"), table_name="offer")
    op.drop_index("ix_offer_status_valid_until", table_name="offer")
    op.drop_index("ix_staff_alert_mode_digest_sent_at_created_at", table_name="staff_alert")
    op.drop_index(
        "ix_order_subscription_confirmed_at_created_at", table_name="order_subscription"
    )
    op.drop_index("ix_update_fanout_pending", table_name="update_fanout")
    op.drop_index("ix_mail_outbox_waiting", table_name="mail_outbox")
    op.drop_index("ix_mail_outbox_sent_at_failed_at_next_attempt_at", table_name="mail_outbox")
    op.create_index(
        "ix_mail_outbox_sent_at_next_attempt_at", "mail_outbox", ["sent_at", "next_attempt_at"]
    )
