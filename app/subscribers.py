"""The composition root of domain events: who reacts to what, written once.

This module sits above every domain package (it may import them all; none imports it). Every
entry point calls ``wire()`` before it serves or runs anything: ``create_app``, the CLI and the
workers. Wiring is code, identical for every app in a process, so a second call is a no-op.
"""

import threading

from sqlmodel import Session

# Every table, in every process that wires: the offer's foreign keys name the campaign and
# staff user tables, which its own package does not import; a flush needs them in the metadata.
import app.models  # noqa: F401
from app.analytics import handlers
from app.events import EventBus, bus
from app.offers.events import OfferAccepted, OfferAssigned
from app.tracking.events import OrderActivated, StageUpdated

_lock = threading.Lock()


def wire(target: EventBus = bus) -> EventBus:
    """Subscribe every package's handlers to ``target`` once."""
    with _lock:
        if not target.wired:
            _subscribe(target)
            target.wired = True
    return target


def _subscribe(target: EventBus) -> None:
    """Each package's reactions. Analytics (conversions, webhooks) and notifications add theirs."""
    _subscribe_analytics(target)
    _subscribe_notifications(target)


def _subscribe_analytics(target: EventBus) -> None:
    target.subscribe(OfferAssigned, handlers.check_offer_assignment)
    target.subscribe(OfferAccepted, handlers.record_acceptance)
    target.subscribe(OrderActivated, handlers.record_order)
    target.subscribe(StageUpdated, handlers.announce_stage)


def _subscribe_notifications(target: EventBus) -> None:
    from app.analytics import outbox
    from app.notifications import alerts, subscriptions
    from app.notifications.events import OfferAlertRaised
    from app.offers.events import OfferDeclined
    from app.tracking.events import ScansCommitted

    target.subscribe(StageUpdated, subscriptions.on_stage_updated)
    target.subscribe(ScansCommitted, alerts.on_scans_committed)
    target.subscribe(OfferAccepted, alerts.on_offer_accepted)
    target.subscribe(OfferDeclined, alerts.on_offer_declined)

    def alert_webhook(session: Session, event: OfferAlertRaised) -> None:
        # Staff alerts are webhook events too: offer.scanned, offer.question, ...
        outbox.emit(session, f"offer.{event.kind}", event.data)

    target.subscribe(OfferAlertRaised, alert_webhook)
