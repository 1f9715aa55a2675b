"""Staff users and failed sign-ins: who may sign in to the staff site, and with which role.

Identity is core: offers name their owner (a staff user) and tracking pages show the owner's
name, so the model lives here, below every domain; the staff site's views stay in app.admin.
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, String, false
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow
from app.formats import DecimalMark


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


_MARKS = ", ".join(f"'{mark.value}'" for mark in DecimalMark)


class StaffUser(SQLModel, table=True):
    __tablename__ = "staff_user"
    # Named by the convention (ck_staff_user_decimal_mark), as the migration adds it.
    __table_args__ = (CheckConstraint(f"decimal_mark IN ({_MARKS})", name="decimal_mark"),)

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_type=String(320), unique=True)
    # How customers and colleagues see the user: the contact block of their offers, mails.
    full_name: str = Field(default="", sa_type=String(200))
    phone: str = Field(default="", sa_type=String(50))
    role: Role = Field(sa_type=String(16))
    password_hash: str = Field(sa_type=String(255))
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # How they type and read numbers and get CSV downloads (app.formats.DecimalMark); the
    # database takes only its values (CHECK ck_staff_user_decimal_mark).
    decimal_mark: DecimalMark = Field(
        default=DecimalMark.POINT,
        sa_type=String(16),
        sa_column_kwargs={"server_default": DecimalMark.POINT.value},
    )

    # The password was set by an admin (a new account, a reset): the admin knows it, so the
    # user is asked on every page to choose their own until they do.
    must_change_password: bool = Field(default=False, sa_column_kwargs={"server_default": false()})

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
