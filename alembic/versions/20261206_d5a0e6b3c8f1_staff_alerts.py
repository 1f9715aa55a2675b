"""staff alerts and alert preferences

Revision ID: d5a0e6b3c8f1
Revises: c3d91f07a2b4
Create Date: 2026-12-06 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d5a0e6b3c8f1"
down_revision: str | None = "c3d91f07a2b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_preference",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("mode", sa.String(length=12), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_user_id"],
            ["staff_user.id"],
            name=op.f("fk_alert_preference_staff_user_id_staff_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_preference")),
    )
    op.create_index(
        "ix_alert_preference_staff_user_id_kind",
        "alert_preference",
        ["staff_user_id", "kind"],
        unique=True,
    )
    op.create_table(
        "staff_alert",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("offer_id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("mode", sa.String(length=12), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("digest_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["offer.id"],
            name=op.f("fk_staff_alert_offer_id_offer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_alert")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_staff_alert_dedupe_key")),
    )
    op.create_index(op.f("ix_staff_alert_offer_id"), "staff_alert", ["offer_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_staff_alert_offer_id"), table_name="staff_alert")
    op.drop_table("staff_alert")
    op.drop_index("ix_alert_preference_staff_user_id_kind", table_name="alert_preference")
    op.drop_table("alert_preference")
