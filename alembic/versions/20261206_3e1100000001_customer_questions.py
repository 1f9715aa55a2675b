"""customer questions out of the audit log

Revision ID: 3e1100000001
Revises: c0570e000001
Create Date: 2026-12-06 21:00:00

Customer questions were copied, text and address, into the audit log, which keeps every row
forever. They move to their own table, which can be deleted from; the history entry keeps
only the reference (``question_id``).
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from ulid import ULID

revision: str = "3e1100000001"
down_revision: str | None = "c0570e000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUESTION_ACTIONS = ("offer.question", "offer.new_quotation")
audit_log = sa.table(
    "audit_log",
    sa.column("id", sa.Integer()),
    sa.column("occurred_at", sa.DateTime(timezone=True)),
    sa.column("action", sa.String()),
    sa.column("offer_id", sa.String()),
    sa.column("summary", sa.String()),
    sa.column("changes", sa.JSON()),
)


def upgrade() -> None:
    question = op.create_table(
        "customer_question",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("offer_id", sa.String(length=26), nullable=False),
        sa.Column("topic", sa.String(length=20), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("message", sa.String(length=2000), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["offer.id"],
            name=op.f("fk_customer_question_offer_id_offer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_question")),
    )
    op.create_index(
        op.f("ix_customer_question_offer_id"), "customer_question", ["offer_id"], unique=False
    )
    _move_questions_out_of_the_audit_log(question)


def _move_questions_out_of_the_audit_log(question: sa.Table) -> None:
    connection = op.get_bind()
    offers = {row[0] for row in connection.execute(sa.text("SELECT id FROM offer"))}
    rows = connection.execute(
        sa.select(audit_log).where(audit_log.c.action.in_(QUESTION_ACTIONS))
    ).all()
    for row in rows:
        changes = row.changes or {}
        if "message" not in changes and "email" not in changes:
            continue
        question_id = str(ULID.from_datetime(_aware(row.occurred_at)))
        topic = row.action.partition(".")[2]
        if row.offer_id in offers:
            connection.execute(
                question.insert().values(
                    id=question_id,
                    offer_id=row.offer_id,
                    topic=topic,
                    email=str(changes.get("email", ""))[:320],
                    message=str(changes.get("message", ""))[:2000],
                    asked_at=_aware(row.occurred_at),
                )
            )
        connection.execute(
            audit_log.update()
            .where(audit_log.c.id == row.id)
            .values(
                summary=f"{_label(topic)} from the customer (question {question_id})",
                changes={"question_id": question_id, "topic": topic},
            )
        )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _label(topic: str) -> str:
    return "Request for a new quotation" if topic == "new_quotation" else "Question"


def downgrade() -> None:
    # The history entries keep their reference only: the texts are not copied back into a
    # log that cannot forget them.
    op.drop_index(op.f("ix_customer_question_offer_id"), table_name="customer_question")
    op.drop_table("customer_question")
