"""What notifications report to the packages beside it (see app.events)."""

from dataclasses import dataclass
from typing import Any

from app.events import Event


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferAlertRaised(Event):
    """A staff alert was raised (``kind``: scanned, declined, expiring, expired, question);
    ``data`` is the webhook event's payload, without names or contact details."""

    offer_id: str
    kind: str
    data: dict[str, Any]
