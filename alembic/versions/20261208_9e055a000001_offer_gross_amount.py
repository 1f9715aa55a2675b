"""offer.gross_amount: the gross total stored on the offer, indexed, for the lists' amount filter

Revision ID: 9e055a000001
Revises: r1a0e1208001
Create Date: 2026-12-08 03:40:00

The staff lists' "Total from / up to" filter summed every offer's lines in a subquery on each
view (some 750 ms on PostgreSQL at 60,000 offers) and before rounding them to cents, so a
boundary could miss the total shown by a cent. The offers service now stores the total with
every change of lines or currency; this backfills existing offers with the pricing code itself
(app.offers.pricing: lines rounded to cents, VAT per rate), a thousand offers at a time, so
the stored total is the one the list shows.
"""

from collections.abc import Sequence
from decimal import Decimal
from types import SimpleNamespace

import sqlalchemy as sa
from alembic import op

from app.offers.pricing import compute_totals

revision: str = "9e055a000001"
down_revision: str | None = "r1a0e1208001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000
# Typed, so that the totals bind as the ORM binds them (SQLite takes no Decimal as it is).
OFFER = sa.table("offer", sa.column("id", sa.String), sa.column("gross_amount", sa.Numeric(20, 2)))


def upgrade() -> None:
    with op.batch_alter_table("offer") as batch:
        batch.add_column(
            sa.Column("gross_amount", sa.Numeric(20, 2), server_default="0", nullable=False)
        )
    _backfill(op.get_bind())
    op.create_index("ix_offer_gross_amount", "offer", ["gross_amount"])


def downgrade() -> None:
    op.drop_index("ix_offer_gross_amount", table_name="offer")
    with op.batch_alter_table("offer") as batch:
        batch.drop_column("gross_amount")


def _backfill(connection: sa.Connection) -> None:
    after = ""
    while offers := connection.execute(
        sa.text("SELECT id, currency FROM offer WHERE id > :after ORDER BY id LIMIT :n"),
        {"after": after, "n": BATCH},
    ).all():
        after = offers[-1][0]
        totals = [
            {"offer_id": offer_id, "gross": compute_totals(lines, currency).gross}
            for offer_id, currency, lines in _with_lines(connection, offers)
        ]
        connection.execute(
            sa.update(OFFER)
            .where(OFFER.c.id == sa.bindparam("offer_id"))
            .values(gross_amount=sa.bindparam("gross")),
            totals,
        )


def _with_lines(
    connection: sa.Connection, offers: Sequence[sa.Row[tuple[str, str]]]
) -> list[tuple[str, str, list[SimpleNamespace]]]:
    """Each offer of the batch with its lines, read by the batch's id range."""
    lines: dict[str, list[SimpleNamespace]] = {offer_id: [] for offer_id, _ in offers}
    rows = connection.execute(
        sa.text(
            "SELECT offer_id, quantity, unit_price, discount_percent, vat_rate FROM offer_line"
            " WHERE offer_id BETWEEN :first AND :last"
        ),
        {"first": offers[0][0], "last": offers[-1][0]},
    )
    for offer_id, quantity, unit_price, discount, vat_rate in rows:
        lines[offer_id].append(
            SimpleNamespace(
                quantity=Decimal(str(quantity)),
                unit_price=Decimal(str(unit_price)),
                discount_percent=Decimal(str(discount)),
                vat_rate=Decimal(str(vat_rate)),
            )
        )
    return [(offer_id, currency, lines[offer_id]) for offer_id, currency in offers]
