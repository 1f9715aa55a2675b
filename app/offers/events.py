"""What happens to an offer, as domain events (see app.events) for higher packages to react to."""

from dataclasses import dataclass

from app.events import Event


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferCreated(Event):
    offer_id: str
    actor: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferIssued(Event):
    offer_id: str
    actor: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferRevised(Event):
    offer_id: str
    new_offer_id: str
    actor: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferAccepted(Event):
    offer_id: str
    signer_name: str
    po_number: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferDeclined(Event):
    offer_id: str
    reason: str
