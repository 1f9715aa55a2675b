"""Who the customer talks to about an offer: its owner, else the company."""

from dataclasses import dataclass

from sqlalchemy import column, select, table
from sqlmodel import Session

from app.config import Settings
from app.offers.models import Offer

# The staff site owns the staff_user table; offers sit below it and may not import its model,
# so they read the three public columns through a table clause of their own.
_STAFF_USER = table(
    "staff_user", column("id"), column("full_name"), column("email"), column("phone")
)


@dataclass(frozen=True)
class Contact:
    name: str
    email: str
    phone: str


def company_contact(settings: Settings) -> Contact:
    return Contact(settings.company_name, settings.company_email, settings.company_phone)


def offer_contact(session: Session, offer: Offer, settings: Settings) -> Contact:
    """The offer owner's name, e-mail and phone; the company's when it has no owner."""
    if offer.owner_id is None:
        return company_contact(settings)
    query = select(_STAFF_USER.c.full_name, _STAFF_USER.c.email, _STAFF_USER.c.phone).where(
        _STAFF_USER.c.id == offer.owner_id
    )
    row = session.execute(query).first()
    if row is None:
        return company_contact(settings)
    name, email, phone = (str(value or "") for value in row)
    return Contact(name or email, email, phone or settings.company_phone)
