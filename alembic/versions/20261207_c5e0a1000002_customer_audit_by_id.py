"""customer records named by id in the audit log, as new entries are written

Revision ID: c5e0a1000002
Revises: 5e41ed000001
Create Date: 2026-12-07 16:45:00

"Created customer {company}" and "Deleted customer {company}" kept the company's name in the
append-only audit log after the record was deleted; a sole trader's company is a person's
name. New entries name the record by id ("Created customer record 12"), and deleting a record
rewords its creation entry so. The entries written before are reworded here, every one of
them: the records still there may be deleted later, and then their entries must not name them.
The entry's who, what (action, entity id) and when are untouched.

Nothing to restore going down: the names are gone, as they should be.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c5e0a1000002"
down_revision: str | None = "5e41ed000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

audit_log = sa.table(
    "audit_log",
    sa.column("action", sa.String()),
    sa.column("entity_type", sa.String()),
    sa.column("entity_id", sa.String()),
    sa.column("summary", sa.String()),
)


def upgrade() -> None:
    for action, verb in (("customer.create", "Created"), ("customer.delete", "Deleted")):
        op.execute(
            audit_log.update()
            .where(audit_log.c.entity_type == "customer", audit_log.c.action == action)
            .values(summary=sa.literal(f"{verb} customer record ") + audit_log.c.entity_id)
        )


def downgrade() -> None:
    pass
