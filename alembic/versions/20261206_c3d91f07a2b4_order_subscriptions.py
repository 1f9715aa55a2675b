"""order subscriptions and their update fan-out

Revision ID: c3d91f07a2b4
Revises: b7e2a4c10917
Create Date: 2026-12-06 18:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3d91f07a2b4"
down_revision: str | None = "b7e2a4c10917"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("offer_id", sa.String(length=26), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["offer.id"],
            name=op.f("fk_order_subscription_offer_id_offer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_subscription")),
    )
    op.create_index(
        "ix_order_subscription_offer_id_email",
        "order_subscription",
        ["offer_id", "email"],
        unique=True,
    )
    op.create_table(
        "update_fanout",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("offer_id", sa.String(length=26), nullable=False),
        sa.Column("stage_update_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["offer.id"],
            name=op.f("fk_update_fanout_offer_id_offer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["stage_update_id"],
            ["stage_update.id"],
            name=op.f("fk_update_fanout_stage_update_id_stage_update"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_update_fanout")),
        sa.UniqueConstraint("stage_update_id", name=op.f("uq_update_fanout_stage_update_id")),
    )
    op.create_index(op.f("ix_update_fanout_done_at"), "update_fanout", ["done_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_update_fanout_done_at"), table_name="update_fanout")
    op.drop_table("update_fanout")
    op.drop_index("ix_order_subscription_offer_id_email", table_name="order_subscription")
    op.drop_table("order_subscription")
