"""order_subscription ids start after every id a mail still links to (SQLite)

Revision ID: 5ec4a1100002
Revises: c5e0a1000001
Create Date: 2026-12-07 15:00:00

5ec4a1100001 made the ids AUTOINCREMENT, its counter starting after the highest id left in
the table. Subscriptions deleted before that step (unsubscribed, or purged unconfirmed) above
that id had their ids given once more: the first subscriptions after the upgrade took them,
and the links of the deleted ones, still in people's mail, confirmed or ended the new ones
(the double opt-in bypass the step closed, left open for those ids). The mails keep the ids
they link to in their dedupe keys (a sent mail is kept for 7 days, as long as a confirmation
link works); the counter now starts after the highest of those too.

Nothing on PostgreSQL (its sequence never gave an id twice); nothing to undo going down.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5ec4a1100002"
down_revision: str | None = "c5e0a1000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# app.notifications.subscriptions: subscription-confirm:{id}:{time}, order-update:{update}:{id}
_ID_PLACE = {"subscription-confirm": 1, "order-update": 2}


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        return
    keys = connection.execute(
        sa.text(
            "SELECT dedupe_key FROM mail_outbox WHERE dedupe_key LIKE 'subscription-confirm:%'"
            " OR dedupe_key LIKE 'order-update:%'"
        )
    ).scalars()
    mailed = max((_subscription_id(key) for key in keys), default=0)
    counter = connection.execute(
        sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'order_subscription'")
    ).scalar_one_or_none()
    if counter is None:
        connection.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('order_subscription', :n)"),
            {"n": mailed},
        )
    elif mailed > counter:
        connection.execute(
            sa.text("UPDATE sqlite_sequence SET seq = :n WHERE name = 'order_subscription'"),
            {"n": mailed},
        )


def _subscription_id(key: str) -> int:
    parts = key.split(":")
    place = _ID_PLACE.get(parts[0], 0)
    return int(parts[place]) if place and len(parts) > place and parts[place].isdigit() else 0


def downgrade() -> None:
    pass
