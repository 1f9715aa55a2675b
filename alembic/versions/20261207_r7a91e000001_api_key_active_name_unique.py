"""api_key: one active key per name, held by the database

Revision ID: r7a91e000001
Revises: 0a0d10000001
Create Date: 2026-12-07 21:00:00

The service refuses a second active "erp", but two admins creating it at the same moment
both found the name free. Active keys that share a name already (made before the check)
keep working: all but the oldest get their id appended to the name, so that the log and
``offertrack revoke-api-key`` tell them apart from now on. Revoked keys keep theirs.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r7a91e000001"
down_revision: str | None = "0a0d10000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = sa.text("revoked_at IS NULL")
MAX_NAME = 100


def upgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT id, name FROM api_key WHERE revoked_at IS NULL ORDER BY id")
    ).all()
    taken = {name for _, name in rows}
    seen: set[str] = set()
    for key_id, name in rows:
        if name not in seen:
            seen.add(name)
            continue
        suffix = f" ({key_id})"
        renamed = name[: MAX_NAME - len(suffix)] + suffix
        while renamed in taken:  # "erp (7)" may be a key's own name already
            renamed = renamed[: MAX_NAME - 1] + "'"
        taken.add(renamed)
        connection.execute(
            sa.text("UPDATE api_key SET name = :name WHERE id = :id"),
            {"name": renamed, "id": key_id},
        )
    op.create_index(
        "uq_api_key_active_name",
        "api_key",
        ["name"],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )


def downgrade() -> None:
    op.drop_index("uq_api_key_active_name", table_name="api_key")
