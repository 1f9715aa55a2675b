"""Domain events (app.events): handlers react inside the publisher's transaction, so a change
and its reactions are written or undone together; nothing is published before wiring."""

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from app import events
from app.analytics.models import Conversion
from app.config import Settings
from app.events import EventBus, EventsNotWired
from app.offers import service as offers_service
from app.offers.events import OfferAccepted
from app.offers.models import Offer, OfferStatus
from app.subscribers import wire
from tests.factories import make_offer


class Refused(Exception):
    pass


def _refuse(session: Session, event: OfferAccepted) -> None:
    raise Refused(event.offer_id)


def _accept(session: Session, settings: Settings, offer: Offer) -> None:
    offers_service.accept_offer(session, offer.id, signer_name="M", po_number="", settings=settings)


def _conversions(session: Session, offer_id: str) -> list[str]:
    query = select(col(Conversion.type)).where(col(Conversion.offer_id) == offer_id)
    return list(session.scalars(query))


def test_a_publish_before_wiring_raises(session: Session) -> None:
    with pytest.raises(EventsNotWired):
        EventBus().publish(session, OfferAccepted(offer_id="x", signer_name="M", po_number=""))


def test_wiring_twice_subscribes_once() -> None:
    bus = wire(EventBus())
    subscribed = bus.handlers(OfferAccepted)
    assert subscribed and wire(bus).handlers(OfferAccepted) == subscribed


def test_a_reaction_is_committed_with_its_change(session: Session, settings: Settings) -> None:
    offer = make_offer(session, settings, issued=True)
    _accept(session, settings, offer)
    session.rollback()  # after the commit: nothing left to undo
    assert _conversions(session, offer.id) == ["offer_accepted"]


def test_a_reaction_is_undone_with_its_change(
    session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    offer = make_offer(session, settings, issued=True)
    bus = wire(EventBus())  # analytics records the conversion, then a later handler refuses
    bus.subscribe(OfferAccepted, _refuse)
    monkeypatch.setattr(events, "bus", bus)

    with pytest.raises(Refused):
        _accept(session, settings, offer)
    session.rollback()

    assert _conversions(session, offer.id) == []
    unchanged = session.get(Offer, offer.id, populate_existing=True)
    assert unchanged is not None and unchanged.status == OfferStatus.ISSUED
