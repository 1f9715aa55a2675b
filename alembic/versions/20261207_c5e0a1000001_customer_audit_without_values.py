"""customer changes in the audit log without their values, as new ones are written

Revision ID: c5e0a1000001
Revises: fa11ed000001
Create Date: 2026-12-07 14:30:00

A change to a customer record was logged with its new values (contact name, e-mail, phone,
address, notes) in the append-only audit log, where they outlived the record's deletion path.
New entries name only the fields changed (their summary did already); the entries written
before keep their values until this step drops them, or deleting such a customer would still
leave its contact's details in the history. What a change was named stays in its summary.

Nothing to restore going down: the values are gone, as they should be.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c5e0a1000001"
down_revision: str | None = "fa11ed000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

audit_log = sa.table(
    "audit_log",
    sa.column("action", sa.String()),
    sa.column("entity_type", sa.String()),
    sa.column("changes", sa.JSON()),
)


def upgrade() -> None:
    op.execute(
        audit_log.update()
        .where(audit_log.c.entity_type == "customer", audit_log.c.action == "customer.update")
        .values(changes=sa.null())
    )


def downgrade() -> None:
    pass
