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
    """A stage update was appended; ``expected_delivery_changed`` says whether it moved the date."""

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
class RecordedScan:
    """One committed scan, as ``ScansRecorded`` carries it."""

    scan_id: int
    offer_id: str | None
    campaign_id: int | None
    placement_id: int | None
    code_form: str
    channel: str
    device_class: str
    is_bot: bool
    occurred_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ScansRecorded(Event):
    """Committed scans, in id order, published by the post-commit scan feed (never on the
    request path), once per round: a handler reacts to a round of thousands of scans with a few
    queries, not a few per scan (its transaction holds SQLite's one writer meanwhile)."""

    scans: tuple[RecordedScan, ...]
