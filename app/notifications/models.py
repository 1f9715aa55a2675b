"""Notification tables: the mail outbox. The schema itself comes from Alembic migrations."""

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")


class MailOutbox(SQLModel, table=True):
    """One mail, written in the transaction of the change it reports, sent later by the worker.

    The message is stored as the exact bytes to send (headers, Message-ID and Date included), so
    every attempt sends the same mail and a receiver can tell a retry by its Message-ID."""

    __tablename__ = "mail_outbox"
    __table_args__ = (
        Index("ix_mail_outbox_sent_at_next_attempt_at", "sent_at", "next_attempt_at"),
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
