"""customer records, the offer's customer snapshot with address and VAT ID, terms templates;
existing offers backfilled into customer records

Revision ID: c0570e000001
Revises: d5a0e6b3c8f1
Create Date: 2026-12-06 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0570e000001"
down_revision: str | None = "d5a0e6b3c8f1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SNAPSHOT_COLUMNS = (
    ("customer_address_lines", sa.Text()),
    ("customer_postcode", sa.String(length=20)),
    ("customer_city", sa.String(length=100)),
    ("customer_country", sa.String(length=100)),
    ("customer_vat_id", sa.String(length=50)),
)
# One customer record per distinct customer the offers name (company, contact, e-mail, phone):
# the snapshot on each offer stays as it was issued.
BACKFILL_CUSTOMERS = """
INSERT INTO customer (company, contact_name, email, phone, address_lines, postcode, city,
                      country, vat_id, language, notes, created_at, updated_at)
SELECT customer_company, customer_contact_name, customer_email, customer_phone, '', '', '',
       '', '', MIN(language), '', MIN(created_at), MAX(updated_at)
FROM offer
GROUP BY customer_company, customer_contact_name, customer_email, customer_phone
"""
LINK_OFFERS = """
UPDATE offer SET customer_id = (
    SELECT c.id FROM customer c
    WHERE c.company = offer.customer_company AND c.contact_name = offer.customer_contact_name
      AND c.email = offer.customer_email AND c.phone = offer.customer_phone
)
"""


def upgrade() -> None:
    op.create_table(
        "customer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company", sa.String(length=200), nullable=False),
        sa.Column("contact_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("phone", sa.String(length=50), nullable=False),
        sa.Column("address_lines", sa.Text(), nullable=False),
        sa.Column("postcode", sa.String(length=20), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("country", sa.String(length=100), nullable=False),
        sa.Column("vat_id", sa.String(length=50), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer")),
    )
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_company"), ["company"], unique=False)
    op.create_table(
        "terms_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terms_template")),
        sa.UniqueConstraint("name", name=op.f("uq_terms_template_name")),
    )
    with op.batch_alter_table("offer", schema=None) as batch_op:
        for name, type_ in SNAPSHOT_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=False, server_default=""))
        batch_op.add_column(sa.Column("customer_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_offer_customer_id"), ["customer_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_offer_customer_id_customer"),
            "customer",
            ["customer_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.execute(BACKFILL_CUSTOMERS)
    op.execute(LINK_OFFERS)


def downgrade() -> None:
    with op.batch_alter_table("offer", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_offer_customer_id_customer"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_offer_customer_id"))
        batch_op.drop_column("customer_id")
        for name, _ in reversed(SNAPSHOT_COLUMNS):
            batch_op.drop_column(name)
    op.drop_table("terms_template")
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_company"))
    op.drop_table("customer")
