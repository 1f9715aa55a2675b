"""Staff users, failed sign-ins and the audit log."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow


class Role(StrEnum):
    """What a staff user may do; each role includes everything of the roles below it."""

    VIEWER = "viewer"
    SALES = "sales"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def includes(self, required: "Role") -> bool:
        return self.rank >= required.rank

    @property
    def label(self) -> str:
        return _LABELS[self]


_RANKS = {Role.VIEWER: 1, Role.SALES: 2, Role.ADMIN: 3}
_LABELS = {
    Role.VIEWER: "Viewer (read only)",
    Role.SALES: "Sales (offers, orders, stage updates)",
    Role.ADMIN: "Admin (everything, including users and API keys)",
}


class StaffUser(SQLModel, table=True):
    __tablename__ = "staff_user"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_type=String(320), unique=True)
    # How customers and colleagues see the user: the contact block of their offers, mails.
    full_name: str = Field(default="", sa_type=String(200))
    phone: str = Field(default="", sa_type=String(50))
    role: Role = Field(sa_type=String(16))
    password_hash: str = Field(sa_type=String(255))
    is_active: bool = True
    # Bumped on a password change or deactivation: every session signed for an older
    # version stops working at its next request.
    session_version: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    def __str__(self) -> str:
        return self.email


class LoginFailure(SQLModel, table=True):
    """A failed sign-in, kept for the throttle window only. The address is kept as a keyed
    hash: enough to count attempts from one address, useless to anyone reading the table."""

    __tablename__ = "login_failure"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_type=String(320), index=True)
    address_hash: str = Field(sa_type=String(64), index=True)
    failed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class AuditLogEntry(SQLModel, table=True):
    """One change, by whom and when. Rows are only ever added: no code path updates or
    deletes them, and ``offer_id`` has no foreign key so history outlives what it describes."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_offer_id_occurred_at", "offer_id", "occurred_at"),)

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    )
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor: str = Field(sa_type=String(200))
    action: str = Field(sa_type=String(50), index=True)
    entity_type: str = Field(sa_type=String(30))
    entity_id: str = Field(sa_type=String(64))
    offer_id: str | None = Field(default=None, sa_type=String(26))
    summary: str = Field(sa_type=String(500))
    changes: dict[str, Any] | None = Field(default=None, sa_type=JSON)

    @property
    def actor_kind(self) -> str:
        return self.actor.partition(":")[0]
