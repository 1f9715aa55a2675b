"""Who the customer talks to about an offer: its owner, else the company."""

from dataclasses import dataclass

from sqlmodel import Session

from app.auth.staff import StaffUser
from app.config import Settings
from app.offers.models import Offer


@dataclass(frozen=True)
class Contact:
    name: str
    email: str
    phone: str


def company_contact(settings: Settings) -> Contact:
    return Contact(settings.company_name, settings.company_email, settings.company_phone)


def offer_contact(session: Session, offer: Offer, settings: Settings) -> Contact:
    """The offer owner's name, e-mail and phone; the company's when it has no active owner."""
    owner = session.get(StaffUser, offer.owner_id) if offer.owner_id is not None else None
    if owner is None or not owner.is_active:  # who left answers no mail: the company does
        return company_contact(settings)
    name = owner.full_name or owner.email
    return Contact(name, owner.email, owner.phone or settings.company_phone)
