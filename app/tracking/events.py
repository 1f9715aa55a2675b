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
    update moved that date (one dated in the past may name a date a later one replaced).
    ``reached_final``: the update is at the last stage, and the order was not there before
    (the last stage sent again, by a bulk update say, delivers nothing new). ``moved_on``: the
    order's current stage is another after it (one dated before the latest changes nothing)."""

    offer_id: str
    stage_update_id: int
    stage_key: str
    stage_label: str
    happened_at: datetime
    public_note: str
    expected_delivery_date: date | None
    expected_delivery_changed: bool
    reached_final: bool
    moved_on: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ScansCommitted(Event):
    """Published by the post-commit scan feed (never on the request path), once per round, in
    the round's transaction: the scans with ids in (after, upto] are committed, and this is
    the one time they are handed on, whatever path stored them.

    A round holds thousands of scans of a few offers, inside a write transaction: a handler
    reads what it needs of them in one grouped query, its range bounded at both ends, rather
    than receive every scan in Python."""

    after: int
    upto: int
