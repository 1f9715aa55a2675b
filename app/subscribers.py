"""The composition root of domain events: who reacts to what, written once.

This module sits above every domain package (it may import them all; none imports it). Every
entry point calls ``wire()`` before it serves or runs anything: ``create_app``, the CLI and the
workers. Wiring is code, identical for every app in a process, so a second call is a no-op.
"""

import threading

from sqlmodel import Session

from app.events import EventBus, bus

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
    from app.analytics import outbox
    from app.notifications import alerts, subscriptions
    from app.notifications.events import OfferAlertRaised
    from app.offers.events import OfferAccepted, OfferDeclined
    from app.tracking.events import ScanRecorded, StageUpdated

    target.subscribe(StageUpdated, subscriptions.on_stage_updated)
    target.subscribe(ScanRecorded, alerts.on_scan_recorded)
    target.subscribe(OfferAccepted, alerts.on_offer_accepted)
    target.subscribe(OfferDeclined, alerts.on_offer_declined)

    def alert_webhook(session: Session, event: OfferAlertRaised) -> None:
        # Staff alerts are webhook events too: offer.scanned, offer.question, ...
        outbox.emit(session, f"offer.{event.kind}", event.data)

    target.subscribe(OfferAlertRaised, alert_webhook)
