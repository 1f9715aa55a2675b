"""order_subscription ids are never given again (SQLite AUTOINCREMENT)

Revision ID: 5ec4a1100001
Revises: 5a6e11570001
Create Date: 2026-12-07 13:10:00

The confirmation and unsubscribe links carry a subscription's id, signed. SQLite gives a new
row the highest rowid plus one, so after the newest subscription was deleted (unsubscribed,
or purged unconfirmed) the next one took its id, and the links of the deleted one acted on
it: someone could subscribe, unsubscribe, type in another person's address and confirm it
with their own link. AUTOINCREMENT never hands an id out twice. PostgreSQL's sequence never
did, so the step changes nothing there.

On SQLite the table is copied (nothing points at it) with its rows and ids; the counter
starts after the highest id there is.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5ec4a1100001"
down_revision: str | None = "5a6e11570001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _recreate(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "order_subscription",
        recreate="always",
        table_kwargs={"sqlite_autoincrement": autoincrement},
    ):
        pass


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)
