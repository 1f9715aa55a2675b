"""Orders and their stages, and the public tracking view of an offer or order."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from app import audit, i18n
from app.config import Settings
from app.db import SessionFactory, read_only, utcnow
from app.errors import Conflict, DatabaseUnavailable, NotFound, Unprocessable
from app.events import publish
from app.offers import service as offers_service
from app.offers.ids import hyphenate_tracking_id
from app.offers.models import Offer, OfferStatus
from app.offers.pricing import Totals, compute_totals
from app.tracking import progress, repeats
from app.tracking.codes import TrackingCode, parse_tracking_code
from app.tracking.events import OrderActivated, StageUpdated
from app.tracking.models import CodeForm, OrderStage, StageUpdate
from app.tracking.pagecache import CachedPage
from app.tracking.scanlog import ScanLog
from app.tracking.scans import Visit, scan_row, visitor_keys
from app.tracking.schemas import StageUpdateCreate
from app.versions import Expected, next_stamp, require_version

ACTIVATABLE = frozenset({OfferStatus.ISSUED, OfferStatus.ACCEPTED})
# Written in the offer's language: the customer reads it on the page, in the feed and in mails.
FIRST_STAGE_NOTE = i18n.N_("We have received your order.")
# A client's clock may run this far ahead of ours; beyond it a future time is a mistake.
CLOCK_SKEW = timedelta(minutes=5)


class CodeNotFound(NotFound):
    """One message for unknown, draft and not-yet-activated codes: existence never leaks."""

    title = "Code not found"
    web_template = "tracking/lookup_error.html"

    def __init__(self) -> None:
        super().__init__(
            "We could not find an order or offer with this code. Please check the code on "
            "your document; orders can be tracked once they are confirmed."
        )


class StatusUnavailable(DatabaseUnavailable):
    """The page of a valid code while the database cannot be reached."""

    title = "Status temporarily unavailable"
    retry_after_seconds = 30

    def __init__(self, code: TrackingCode) -> None:
        shown = hyphenate_tracking_id(code.value) if code.form == CodeForm.SHORT else code.value
        super().__init__(
            f"The status of {shown} is temporarily unavailable. Your code is fine; please "
            "try again in a minute."
        )


class UnknownStage(Unprocessable):
    def __init__(self, stage: str, stages: Sequence[OrderStage]) -> None:
        names = ", ".join(f"{s.label!r} ({s.key})" for s in stages)
        super().__init__(f"Unknown stage {stage!r}; use one of {names}.", loc=("body", "stage"))


class UpdateInTheFuture(Unprocessable):
    def __init__(self, happened_at: datetime) -> None:
        super().__init__(
            f"happened_at {happened_at.isoformat()} lies in the future: a stage update records "
            "what has happened (leave it out for now).",
            loc=("body", "happened_at"),
        )


class DeliveryBeforeUpdate(Unprocessable):
    def __init__(self, expected: date, day: date) -> None:
        self.expected, self.day = expected, day
        super().__init__(self.explained(date.isoformat), loc=("body", "expected_delivery_date"))

    def explained(self, write: Callable[[date], str]) -> str:
        """The refusal with its dates written by ``write`` (the API: ISO; a page: its own)."""
        return (
            f"The expected delivery date {write(self.expected)} lies before the day of this "
            f"update, {write(self.day)}: check it for a typo."
        )


@dataclass(frozen=True)
class StageStep:
    stage: OrderStage
    state: str  # "done", "current" or "upcoming"


@dataclass(frozen=True)
class Timeline:
    steps: list[StageStep]
    updates: list[tuple[StageUpdate, OrderStage]]  # newest first
    current: OrderStage | None
    expected_delivery: date | None
    carrier: StageUpdate | None


@dataclass(frozen=True)
class TrackingPage:
    offer: Offer
    code: TrackingCode
    status: OfferStatus
    timeline: Timeline | None
    totals: Totals | None = None
    superseded_by: str | None = None
    days_left: int | None = None


def list_stages(session: Session) -> Sequence[OrderStage]:
    return session.exec(select(OrderStage).order_by(col(OrderStage.position))).all()


def activate_offer(
    session: Session,
    offer_id: str,
    *,
    actor: str,
    settings: Settings,
    expected: Expected | None = None,
) -> Offer:
    """Make an issued or accepted offer an order, unless it changed since ``expected`` (the
    version its activator read); calling it again changes nothing."""
    offer = offers_service.get_offer(session, offer_id, for_update=True)
    # Before the repeat check: a second press from a page opened before someone else's
    # activation is told who did it, not shown their order as if it were its own doing.
    require_version(session, expected, offer.updated_at, noun="offer", entity=("offer", offer.id))
    if offer.status == OfferStatus.ORDERED:
        return offer
    offers_service.require_status(offer, ACTIVATABLE, "activate", settings)
    now = next_stamp(offer.updated_at)
    offer.status = OfferStatus.ORDERED
    offer.ordered_at = offer.updated_at = now
    offer.activated_by = actor
    session.add(offer)
    stages = list_stages(session)
    if not stages:
        raise Conflict("No order stages are configured; add at least one before activating.")
    first = stages[0]
    session.add(
        StageUpdate(
            offer_id=offer.id,
            stage_key=first.key,
            happened_at=now,
            public_note=i18n.translate(offer.language, FIRST_STAGE_NOTE),
            created_by=actor,
        )
    )
    progress.refresh(session, [offer.id])
    audit.record(
        session,
        actor=actor,
        action="offer.activate",
        entity_type="offer",
        entity_id=offer.id,
        offer_id=offer.id,
        summary=f"Activated as order (stage {first.label!r})",
    )
    publish(
        session,
        OrderActivated(
            offer_id=offer.id,
            actor=actor,
            stage_key=first.key,
            stage_label=first.label,
            happened_at=now,
        ),
    )
    session.commit()
    return offer


def find_order(session: Session, raw_code: str) -> Offer:
    """The order behind a ULID or tracking ID in any spelling."""
    offer = find_by_code(session, parse_tracking_code(raw_code))
    if offer.status != OfferStatus.ORDERED:
        raise CodeNotFound()
    return offer


def find_by_code(session: Session, code: TrackingCode) -> Offer:
    """A full ULID finds any non-draft offer; a tracking ID finds only an activated order."""
    # Read-only unless a write is under way: a lookup that opened a write transaction would
    # hold SQLite's writer lock through whatever the request does next (a PDF render).
    with read_only(session):
        if code.form == CodeForm.FULL:
            offer = session.get(Offer, code.value)
        else:
            query = select(Offer).where(
                Offer.tracking_id == code.value, col(Offer.ordered_at).is_not(None)
            )
            offer = session.exec(query).first()
    if offer is None or offer.status == OfferStatus.DRAFT:
        raise CodeNotFound()
    return offer


def resolve_stage(session: Session, name: str) -> OrderStage:
    """A stage named by its key or its label, in any case."""
    wanted = name.strip().lower()
    stages = list_stages(session)
    for stage in stages:
        if wanted in (stage.key.lower(), stage.label.lower()):
            return stage
    raise UnknownStage(name, stages)


class StageUpdateAdded(NamedTuple):
    update: StageUpdate
    offer: Offer
    stage: OrderStage
    # The same update sent twice: the one saved the first time, nothing added or mailed.
    repeated: bool


def add_stage_update(
    session: Session, raw_code: str, data: StageUpdateCreate, *, actor: str, settings: Settings
) -> StageUpdateAdded:
    """Append a stage update to an order's history, unless it repeats the latest one."""
    _require_plausible_dates(data, settings)
    offer = find_order(session, raw_code)
    stage = resolve_stage(session, data.stage)
    ((update, repeated),) = _append_updates(session, [offer], stage, data, actor)
    session.commit()
    return StageUpdateAdded(update, offer, stage, repeated)


def add_stage_updates(
    session: Session,
    raw_codes: Sequence[str],
    data: StageUpdateCreate,
    *,
    actor: str,
    settings: Settings,
) -> list[Offer]:
    """Append the same stage update to several orders, all or none."""
    _require_plausible_dates(data, settings)
    stage = resolve_stage(session, data.stage)
    # One update per order, however many spellings of its code were sent.
    found = (find_order(session, code) for code in dict.fromkeys(raw_codes))
    offers = list({offer.id: offer for offer in found}.values())
    _append_updates(session, offers, stage, data, actor)
    session.commit()
    return offers


def _require_plausible_dates(data: StageUpdateCreate, settings: Settings) -> None:
    """Refuse an update dated in the future (customers would read it as done), and an
    expected delivery before the day the update happened (today, unless it is dated): on a new
    update that is a typo. A dated one may record a day long past by now."""
    now = utcnow()
    if data.happened_at is not None and data.happened_at > now + CLOCK_SKEW:
        raise UpdateInTheFuture(data.happened_at)
    refusal = delivery_before_update(data.expected_delivery_date, data.happened_at, settings)
    if refusal is not None:
        raise refusal


def delivery_before_update(
    expected: date | None, happened_at: datetime | None, settings: Settings
) -> DeliveryBeforeUpdate | None:
    """The refusal of an expected delivery before the day of the update (today, unless it is
    dated); a form shows it with the form's other mistakes."""
    if expected is None:
        return None
    day = (happened_at or utcnow()).astimezone(settings.zone).date()
    return DeliveryBeforeUpdate(expected, day) if expected < day else None


def _append_updates(
    session: Session, offers: list[Offer], stage: OrderStage, data: StageUpdateCreate, actor: str
) -> list[tuple[StageUpdate, bool]]:
    """Append the update to each order it does not repeat (app.tracking.repeats), work out
    their progress again, then tell of each: its event compares the order's expected delivery
    before and after, as the page shows it (an update dated in the past may name a date that a
    later update already replaced). Per order: its update, and whether it was a repeat."""
    progress.lock(session, [offer.id for offer in offers])
    now = utcnow()
    known = {
        offer.id: repeats.repeated_update(session, offer.id, stage, data, actor=actor, now=now)
        for offer in offers
    }
    fresh = [offer for offer in offers if known[offer.id] is None]
    earlier = {offer.id: (offer.expected_delivery_date, offer.stage_position) for offer in fresh}
    added = {offer.id: _append_update(session, offer, stage, data, actor) for offer in fresh}
    progress.refresh(session, list(earlier))
    for offer in fresh:
        publish(session, _stage_updated(session, added[offer.id], stage, earlier[offer.id], offer))
    return [(known[offer.id] or added[offer.id], known[offer.id] is not None) for offer in offers]


def _append_update(
    session: Session, offer: Offer, stage: OrderStage, data: StageUpdateCreate, actor: str
) -> StageUpdate:
    update = StageUpdate(
        offer_id=offer.id,
        stage_key=stage.key,
        created_by=actor,
        **data.model_dump(exclude={"stage", "happened_at"}),
    )
    if data.happened_at is not None:
        update.happened_at = data.happened_at
    session.add(update)
    session.flush()
    _audit_stage_update(session, update, offer, stage, actor)
    return update


def _stage_updated(
    session: Session,
    update: StageUpdate,
    stage: OrderStage,
    earlier: tuple[date | None, int | None],
    offer: Offer,
) -> StageUpdated:
    assert update.id is not None
    last_position = max(s.position for s in list_stages(session))
    earlier_date, earlier_position = earlier
    return StageUpdated(
        offer_id=update.offer_id,
        stage_update_id=update.id,
        stage_key=stage.key,
        stage_label=stage.label,
        happened_at=update.happened_at,
        public_note=update.public_note,
        expected_delivery_date=offer.expected_delivery_date,
        expected_delivery_changed=offer.expected_delivery_date not in (None, earlier_date),
        reached_final=stage.position == last_position != earlier_position,
        moved_on=offer.stage_position != earlier_position,
    )


def _audit_stage_update(
    session: Session, update: StageUpdate, offer: Offer, stage: OrderStage, actor: str
) -> None:
    assert update.id is not None
    audit.record(
        session,
        actor=actor,
        action="order.stage_update",
        entity_type="stage_update",
        entity_id=update.id,
        offer_id=offer.id,
        summary=f"Stage update: {stage.label}",
        changes=update.model_dump(
            include={
                "stage_key",
                "happened_at",
                "public_note",
                "internal_note",
                "expected_delivery_date",
                "carrier",
                "tracking_number",
                "tracking_link",
            }
        ),
    )


def build_timeline(session: Session, offer: Offer) -> Timeline:
    """The order's updates to list, and its current stage and expected delivery as
    app.tracking.progress keeps them on its row (the rule the staff site reads too)."""
    stages = list_stages(session)
    by_key = {stage.key: stage for stage in stages}
    rows = session.exec(
        select(StageUpdate)
        .where(StageUpdate.offer_id == offer.id)
        .order_by(col(StageUpdate.happened_at).desc(), col(StageUpdate.id).desc())
    ).all()
    updates = [(row, by_key[row.stage_key]) for row in rows]
    current = next((s for s in stages if s.position == offer.stage_position), None)
    steps = [StageStep(stage, _step_state(stage, current)) for stage in stages]
    carrier = next((u for u, _ in updates if u.carrier or u.tracking_number), None)
    return Timeline(steps, updates, current, offer.expected_delivery_date, carrier)


def _step_state(stage: OrderStage, current: OrderStage | None) -> str:
    if current is None or stage.position > current.position:
        return "upcoming"
    return "current" if stage.key == current.key else "done"


def tracking_page(session: Session, code: TrackingCode, *, settings: Settings) -> TrackingPage:
    """What the page shows for ``code``; a tracking ID shows order progress and nothing else."""
    with read_only(session):
        return _tracking_page(session, code, settings)


def _tracking_page(session: Session, code: TrackingCode, settings: Settings) -> TrackingPage:
    offer = find_by_code(session, code)
    timeline = build_timeline(session, offer) if offer.status == OfferStatus.ORDERED else None
    today = offers_service.today(settings)
    status = offer.effective_status(today)
    if code.form == CodeForm.SHORT:
        return TrackingPage(offer=offer, code=code, status=status, timeline=timeline)
    return TrackingPage(
        offer=offer,
        code=code,
        status=status,
        timeline=timeline,
        totals=compute_totals(offer.lines, offer.currency),
        # A revision still in draft gets the same 404 as an unknown code: link only to one
        # the customer can open.
        superseded_by=(
            offers_service.current_revision(session, offer.id)
            if offer.status == OfferStatus.SUPERSEDED
            else None
        ),
        days_left=(offer.valid_until - today).days if status == OfferStatus.ISSUED else None,
    )


async def log_scan(
    sessions: SessionFactory, page: CachedPage, visit: Visit, *, scan_log: ScanLog
) -> None:
    """Record one customer view; committed before the page is sent, so none is ever lost."""
    key = visitor_keys.cached_today()
    if key is None:  # once a day per process
        key = await run_in_threadpool(_todays_visitor_key, sessions)
    await scan_log.record(scan_row(page.offer_id, page.form, visit, key) | page.campaign)


def _todays_visitor_key(sessions: SessionFactory) -> bytes:
    with sessions() as session:
        return visitor_keys.today(session)
