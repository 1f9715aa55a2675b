"""The customer table: the companies offers are written for, kept so staff pick them instead of
retyping. An offer keeps its own snapshot of the customer (app.offers.models), so editing a
record never changes an offer that was issued."""

from datetime import datetime

from sqlalchemy import String, Text
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow


class Customer(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    company: str = Field(sa_type=String(200), index=True)
    contact_name: str = Field(default="", sa_type=String(200))
    email: str = Field(default="", sa_type=String(320))
    phone: str = Field(default="", sa_type=String(50))
    # The street part of the postal address, one line per line as it goes on the envelope.
    address_lines: str = Field(default="", sa_type=Text)
    postcode: str = Field(default="", sa_type=String(20))
    city: str = Field(default="", sa_type=String(100))
    country: str = Field(default="", sa_type=String(100))
    vat_id: str = Field(default="", sa_type=String(50))
    language: str = Field(default="en", sa_type=String(8))
    notes: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
