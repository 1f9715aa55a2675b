"""How analytics reacts to what offers and orders do: domain events (see app.events), wired in
app.subscribers. Each handler runs in the publisher's transaction and only adds rows to it."""

from sqlmodel import Session

from app.analytics import conversions, outbox
from app.analytics.assignment import check_assignment
from app.offers.events import OfferAccepted, OfferAssigned
from app.offers.models import Offer
from app.tracking.events import OrderActivated, StageUpdated


def _offer(session: Session, offer_id: str) -> Offer:
    offer = session.get(Offer, offer_id)  # the publisher's own, from the identity map
    assert offer is not None, offer_id
    return offer


def check_offer_assignment(session: Session, event: OfferAssigned) -> None:
    check_assignment(session, event.campaign_id, event.placement_id, event.creative_id)


def record_acceptance(session: Session, event: OfferAccepted) -> None:
    conversions.record_offer_conversion(
        session, _offer(session, event.offer_id), conversions.OFFER_ACCEPTED
    )


def record_order(session: Session, event: OrderActivated) -> None:
    offer = _offer(session, event.offer_id)
    conversions.record_offer_conversion(session, offer, conversions.ORDER)
    data = outbox.stage_data(offer, event.stage_key, event.stage_label, event.happened_at)
    outbox.emit(session, "order.stage_changed", data)


def announce_stage(session: Session, event: StageUpdated) -> None:
    offer = _offer(session, event.offer_id)
    data = outbox.stage_data(offer, event.stage_key, event.stage_label, event.happened_at)
    outbox.emit(session, "order.stage_changed", data)
