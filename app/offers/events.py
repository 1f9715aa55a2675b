"""What happens to an offer, as domain events (see app.events) for higher packages to react to."""

from dataclasses import dataclass

from app.events import Event


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferCreated(Event):
    offer_id: str
    actor: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferAssigned(Event):
    """A new or changed offer names its campaign, placement and creative (any may be None),
    before the change is committed; ``offer_id`` is empty for an offer being created.

    Offers know no campaigns: the package that does subscribes and refuses ids that do not
    exist or do not belong together by raising ``Unprocessable`` (field path in ``loc``), which
    the publisher lets through, so nothing is committed.
    """

    offer_id: str
    campaign_id: int | None
    placement_id: int | None
    creative_id: int | None


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
