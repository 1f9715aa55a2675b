"""What happens to an order and its tracking page, as domain events (see app.events)."""

from dataclasses import dataclass
from datetime import date, datetime

from app.events import Event


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderActivated(Event):
    """An offer became an order; its history starts with the first stage, named here."""

    offer_id: str
    actor: str
    stage_key: str
    stage_label: str
    happened_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class StageUpdated(Event):
    """A stage update was appended. ``expected_delivery_date`` is the order's expected delivery
    after it, as the tracking page shows it; ``expected_delivery_changed`` says whether the
    update moved that date (one dated in the past may name a date a later one replaced)."""

    offer_id: str
    stage_update_id: int
    stage_key: str
    stage_label: str
    happened_at: datetime
    public_note: str
    expected_delivery_date: date | None
    expected_delivery_changed: bool
    is_final: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class FirstScan:
    """An offer's first scan by a person on one local day, within a round of the scan feed."""

    scan_id: int
    offer_id: str
    channel: str
    device_class: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OffersScanned(Event):
    """Published by the post-commit scan feed (never on the request path), once per round
    that holds scans of offers by people (bots, link previewers and campaign redirects left
    out): the first such scan of each offer and local day in the round, in id order.

    A round holds thousands of scans of a few offers; what the scans mean for an offer's
    people (an alert) follows from its first scan of the day, so the feed finds those in
    one query instead of handing every scan to Python inside its write transaction."""

    firsts: tuple[FirstScan, ...]
