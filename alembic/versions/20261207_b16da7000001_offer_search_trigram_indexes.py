"""offer search: trigram indexes for the staff search's "contains" match (PostgreSQL)

Revision ID: b16da7000001
Revises: 5d0000000001
Create Date: 2026-12-07 23:30:00

The staff offer list's search box and customer filter, and the API's ``customer`` filter,
match any part of the company, reference, contact or e-mail (``lower(x) LIKE '%term%'``): no
B-tree index serves a leading wildcard, so every search read all offers (60,000 after three
years: the list's count and its page each a full scan). A GIN trigram index on each lowered
column serves it. pg_trgm ships with Debian's PostgreSQL (no extra package) and is a trusted
extension, which the database's owner may create. SQLite: nothing (it has no such index; its
scan of one file stays cheap at these sizes).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b16da7000001"
down_revision: str | None = "5d0000000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Also named in alembic/env.py (include_name): models cannot declare a PostgreSQL-only
# expression index that SQLite's schema lacks without the drift check seeing one or the other.
COLUMNS = ("customer_company", "customer_reference", "customer_contact_name", "customer_email")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    connection = op.get_bind()
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # Its operator class by its schema's name: the extension may have been made before, in a
    # schema other than the first on this connection's search path.
    schema = connection.exec_driver_sql(
        "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'"
    ).scalar_one()
    for column in COLUMNS:
        op.execute(
            f"CREATE INDEX ix_offer_{column}_trgm ON offer"
            f" USING gin (lower({column}) {schema}.gin_trgm_ops)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.execute(f"DROP INDEX ix_offer_{column}_trgm")
    # The extension stays: another database object may use it by now, and it costs nothing.
