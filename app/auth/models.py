"""API keys for integrations. Only a hash of each token is kept."""

from datetime import datetime

from sqlalchemy import Index, String, text
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"
    # One active key per name, capitals aside ("CRM" is "crm" to whoever reads the log), held
    # by the database: two admins creating "erp" at the same moment both find the name free
    # before either commits.
    __table_args__ = (
        Index(
            "uq_api_key_active_name",
            text("lower(name)"),
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
            sqlite_where=text("revoked_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=String(100))
    prefix: str = Field(sa_type=String(16))
    token_hash: str = Field(sa_type=String(64), unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
