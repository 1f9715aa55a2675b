"""staff_user.decimal_mark: only 'point' or 'comma'

Revision ID: d3c1a0000001
Revises: c5e0a1000002
Create Date: 2026-12-07 19:45:00

Every staff page and CSV download now reads and writes numbers by this column
(app.formats.DecimalMark): a value outside the two would fail at every sign-in. The account
page only saves one of the two, but a hand-made row (a SQL console, a restore of a tampered
dump) could hold anything; now the database refuses it. A value already outside them becomes
the point, which every user had before choosing, so the constraint can be added.

SQLite cannot add a constraint to a table: batch mode copies staff_user (alembic/env.py runs
it with foreign keys off, so the sessions, API keys and recovery codes that point at it keep
their rows). PostgreSQL adds it in place.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "d3c1a0000001"
down_revision: str | None = "c5e0a1000002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ck_staff_user_decimal_mark"


def upgrade() -> None:
    op.execute(
        "UPDATE staff_user SET decimal_mark = 'point' WHERE decimal_mark NOT IN ('point', 'comma')"
    )
    with op.batch_alter_table("staff_user") as batch:
        batch.create_check_constraint(op.f(NAME), "decimal_mark IN ('point', 'comma')")


def downgrade() -> None:
    with op.batch_alter_table("staff_user") as batch:
        batch.drop_constraint(op.f(NAME), type_="check")
