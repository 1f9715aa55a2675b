"""api_key: one active key per name, capitals aside

Revision ID: l05e1207a001
Revises: r7a91e000001
Create Date: 2026-12-07 23:00:00

"CRM" and "crm" could both be active: two keys that a person reading the audit log, or
typing ``offertrack revoke-api-key crm``, takes for one. The unique index on active names
now compares lower(name). Active keys whose names differ only by case keep working: all but
the oldest get their id appended to the name, as r7a91e000001 did for exact twins.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "l05e1207a001"
down_revision: str | None = "r7a91e000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = sa.text("revoked_at IS NULL")
MAX_NAME = 100


def upgrade() -> None:
    _rename_twins_without_case()
    op.drop_index("uq_api_key_active_name", table_name="api_key")
    op.create_index(
        "uq_api_key_active_name",
        "api_key",
        [sa.text("lower(name)")],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )


def _rename_twins_without_case() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT id, name, lower(name) FROM api_key WHERE revoked_at IS NULL ORDER BY id")
    ).all()
    taken = {folded for _, _, folded in rows}
    seen: set[str] = set()
    for key_id, name, folded in rows:
        if folded not in seen:
            seen.add(folded)
            continue
        suffix = f" ({key_id})"
        renamed = name[: MAX_NAME - len(suffix)] + suffix
        while renamed.lower() in taken:  # "crm (7)" may be a key's own name already
            renamed = renamed[: MAX_NAME - 1] + "'"
        taken.add(renamed.lower())
        connection.execute(
            sa.text("UPDATE api_key SET name = :name WHERE id = :id"),
            {"name": renamed, "id": key_id},
        )


def downgrade() -> None:
    # The renamed keys keep their new names: unique as they are, they fit the older index.
    op.drop_index("uq_api_key_active_name", table_name="api_key")
    op.create_index(
        "uq_api_key_active_name",
        "api_key",
        ["name"],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )
