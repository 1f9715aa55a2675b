"""Notification tables: the mail outbox, subscriptions, alerts and customer questions. The
schema itself comes from Alembic migrations."""

from datetime import datetime

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, LargeBinary, String, text
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")


class MailOutbox(SQLModel, table=True):
    """One mail, written in the transaction of the change it reports, sent later by the worker.

    The message is stored as the exact bytes to send (headers, Message-ID and Date included), so
    every attempt sends the same mail and a receiver can tell a retry by its Message-ID."""

    __tablename__ = "mail_outbox"
    __table_args__ = (
        # The worker's claim and backlog read the mails waiting to be sent, every second:
        # failed_at in the key keeps the mails refused for good (kept for the operators, never
        # deleted) out of their range, and the partial index on id gives PostgreSQL the
        # claim's order over those rows alone (with only the index above, its statistics led
        # it to walk the primary key from the oldest mail, through every sent one).
        Index(
            "ix_mail_outbox_sent_at_failed_at_next_attempt_at",
            "sent_at",
            "failed_at",
            "next_attempt_at",
        ),
        Index(
            "ix_mail_outbox_waiting",
            "id",
            postgresql_where=text("sent_at IS NULL AND failed_at IS NULL"),
            sqlite_where=text("sent_at IS NULL AND failed_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    # What makes two queued mails the same mail: queueing a key again adds nothing.
    dedupe_key: str = Field(sa_type=String(200), unique=True)
    message_id: str = Field(sa_type=String(255))
    category: str = Field(default="", sa_type=String(40))
    recipient: str = Field(sa_type=String(320))
    subject: str = Field(sa_type=String(300))
    message: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    last_error: str = Field(default="", sa_type=String(500))
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # A permanent refusal (5xx): the mail is not tried again, and is kept for the operators.
    failed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class OrderSubscription(SQLModel, table=True):
    """A customer's request for e-mail updates about one order: the address, the order, the
    state (pending until confirmed), its times and the language of its mails; nothing else.
    Unsubscribing deletes it."""

    __tablename__ = "order_subscription"
    __table_args__ = (
        Index("ix_order_subscription_offer_id_email", "offer_id", "email", unique=True),
        # The hourly purge of pending subscriptions nobody confirmed reads those alone, not
        # every confirmed subscription there ever was.
        Index("ix_order_subscription_confirmed_at_created_at", "confirmed_at", "created_at"),
        # The confirmation and unsubscribe links name a subscription by its id, forever: an id
        # is never given again (SQLite would reuse the highest one once its row is deleted,
        # and an old link would then confirm or end someone else's subscription).
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    offer_id: str = Field(
        sa_column=Column(String(26), ForeignKey("offer.id", ondelete="CASCADE"), nullable=False)
    )
    email: str = Field(sa_type=String(320))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The language of the page it was asked for on, which its mails are written in; None (rows
    # from before it was kept) is the offer's.
    language: str | None = Field(default=None, sa_type=String(5))


class UpdateFanout(SQLModel, table=True):
    """A stage update to mail to an order's subscribers, written in the update's transaction.

    One row however many subscribers: the mail worker turns it into their mails, so a stage
    update through the API costs one insert whatever the audience."""

    __tablename__ = "update_fanout"
    # The worker's claim (every second) takes the oldest pending row by id: without this,
    # PostgreSQL with no statistics yet walked the primary key through every row done.
    __table_args__ = (
        Index(
            "ix_update_fanout_pending",
            "id",
            postgresql_where=text("done_at IS NULL"),
            sqlite_where=text("done_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    offer_id: str = Field(
        sa_column=Column(String(26), ForeignKey("offer.id", ondelete="CASCADE"), nullable=False)
    )
    stage_update_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("stage_update.id", ondelete="CASCADE"), nullable=False, unique=True
        )
    )
    reason: str = Field(sa_type=String(20))  # "note", "stage", "delivery_date" or "delivered"
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class AlertPreference(SQLModel, table=True):
    """How a staff user wants to hear of one kind of alert; no row means "immediately"."""

    __tablename__ = "alert_preference"
    __table_args__ = (
        Index("ix_alert_preference_staff_user_id_kind", "staff_user_id", "kind", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    staff_user_id: int = Field(
        sa_column=Column(Integer, ForeignKey("staff_user.id", ondelete="CASCADE"), nullable=False)
    )
    kind: str = Field(sa_type=String(20))
    mode: str = Field(sa_type=String(12))  # "immediately", "digest" or "off"


class StaffAlert(SQLModel, table=True):
    """One alert about an offer, once: its key ("scanned:<offer>:<day>") makes a second scan
    the same day, or a redelivered event, add nothing. Digest alerts wait here for the digest."""

    __tablename__ = "staff_alert"
    # The digest job (every 10 minutes) reads the digest alerts not sent yet, not every alert
    # there ever was (one per offer and day it was scanned). The dashboard's follow-ups (every
    # view) read the last 14 days' alerts on the user's offers: PostgreSQL walks created_at
    # back, SQLite goes from the user's offers to each one's recent alerts.
    __table_args__ = (
        Index(
            "ix_staff_alert_mode_digest_sent_at_created_at", "mode", "digest_sent_at", "created_at"
        ),
        Index("ix_staff_alert_offer_id_created_at", "offer_id", "created_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    dedupe_key: str = Field(sa_type=String(200), unique=True)
    offer_id: str = Field(
        sa_column=Column(String(26), ForeignKey("offer.id", ondelete="CASCADE"), nullable=False)
    )
    kind: str = Field(sa_type=String(20))
    recipient: str = Field(sa_type=String(320))
    mode: str = Field(sa_type=String(12))
    summary: str = Field(sa_type=String(500))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    digest_sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CustomerQuestion(SQLModel, table=True):
    """A customer's question about an offer (or request for a new quotation): the only place
    that keeps its text and the asker's address. The offer's history refers to it by id, so
    deleting the row (staff site, "Questions" of the offer) removes the personal data."""

    __tablename__ = "customer_question"

    id: str = Field(sa_type=String(26), primary_key=True)  # a ULID, also in the history entry
    offer_id: str = Field(
        sa_column=Column(
            String(26), ForeignKey("offer.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    topic: str = Field(sa_type=String(20))  # "question" or "new_quotation"
    email: str = Field(sa_type=String(320))
    message: str = Field(sa_type=String(2000))
    asked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
