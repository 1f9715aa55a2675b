"""Read-side queries of the staff site: search, current stages, the dashboard's numbers."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import ColumnElement, func, or_, true
from sqlalchemy.orm import Mapped
from sqlmodel import Session, col, select

from app.config import Settings
from app.offers import service as offers_service
from app.offers.models import Offer
from app.tracking.codes import InvalidCode, parse_tracking_code
from app.tracking.models import CodeForm, OrderStage, ScanEvent


def offer_search(term: str) -> ColumnElement[bool]:
    """Offers matching a search box entry: a tracking ID or ULID in any spelling (the public
    page's parser), or part of the company, the customer reference or the contact."""
    term = term.strip()
    if not term:
        return true()
    pattern = f"%{term.lower()}%"
    conditions: list[ColumnElement[bool]] = [
        func.lower(col(Offer.customer_company)).like(pattern),
        func.lower(col(Offer.customer_reference)).like(pattern),
        func.lower(col(Offer.customer_contact_name)).like(pattern),
    ]
    try:
        code = parse_tracking_code(term)
    except InvalidCode:
        pass
    else:
        if code.form == CodeForm.FULL:
            conditions.append(col(Offer.id) == code.value)
        else:
            conditions.append(col(Offer.tracking_id) == code.value)
    return or_(*conditions)


def at_stage(stage_key: str) -> ColumnElement[bool]:
    """Orders whose current stage is ``stage_key`` (as app.tracking.progress keeps it)."""
    stage_position = select(OrderStage.position).where(OrderStage.key == stage_key)
    return col(Offer.stage_position) == stage_position.scalar_subquery()


@dataclass(frozen=True)
class OrderProgress:
    stage: OrderStage
    expected_delivery: date | None


def progress_of(session: Session, offer_ids: Sequence[str]) -> dict[str, OrderProgress]:
    """Current stage and latest expected delivery of each order, as app.tracking.progress
    keeps them on the order's row."""
    if not offer_ids:
        return {}
    stages = {s.position: s for s in session.exec(select(OrderStage)).all()}
    rows = session.exec(
        select(col(Offer.id), col(Offer.stage_position), col(Offer.expected_delivery_date)).where(
            col(Offer.id).in_(offer_ids)
        )
    ).all()
    return {
        offer_id: OrderProgress(stages[position], expected)
        for offer_id, position, expected in rows
        if position in stages
    }


@dataclass(frozen=True)
class Dashboard:
    month_start: date
    issued: int
    accepted: int
    ordered: int
    per_stage: list[tuple[OrderStage, int]]
    overdue: list[tuple[Offer, OrderProgress]]
    scans_today: int


def dashboard(session: Session, settings: Settings) -> Dashboard:
    """This month's offers, orders per stage, late deliveries and today's human scans."""
    today = offers_service.today(settings)
    month_start = today.replace(day=1)
    # Each count reads a range of its column's index, named from both ends though nothing lies
    # past the end yet: from a lower bound alone PostgreSQL without statistics reckons on a
    # third of the table and reads all of it (the month's scan partition, at every view, until
    # the partition has statistics; offers had no index and were all read at every view).
    month = (
        datetime.combine(month_start, time(), settings.zone),
        datetime.combine(_next_month(month_start), time(), settings.zone),
    )
    day = (
        datetime.combine(today, time(), settings.zone),
        datetime.combine(today + timedelta(days=1), time(), settings.zone),
    )
    return Dashboard(
        month_start=month_start,
        issued=_count_within(session, Offer.issued_at, month),  # type: ignore[arg-type]
        accepted=_count_within(session, Offer.accepted_at, month),  # type: ignore[arg-type]
        ordered=_count_within(session, Offer.ordered_at, month),  # type: ignore[arg-type]
        per_stage=_orders_per_stage(session),
        overdue=_overdue(session, today),
        scans_today=_tracking_page_scans_within(session, day),
    )


def _next_month(first: date) -> date:
    return (first + timedelta(days=32)).replace(day=1)


def _tracking_page_scans_within(session: Session, within: tuple[datetime, datetime]) -> int:
    # Campaign-code redirects (/c/...) write scan events too; the figure is labelled as
    # tracking-page views, which are the full and short code forms.
    start, end = within
    return session.exec(
        select(func.count())
        .select_from(ScanEvent)
        .where(
            col(ScanEvent.occurred_at) >= start,
            col(ScanEvent.occurred_at) < end,
            col(ScanEvent.is_bot).is_(False),
            col(ScanEvent.code_form).in_([CodeForm.FULL, CodeForm.SHORT]),
        )
    ).one()


def _count_within(
    session: Session, column: Mapped[datetime | None], within: tuple[datetime, datetime]
) -> int:
    start, end = within
    query = select(func.count()).select_from(Offer).where(col(column) >= start, col(column) < end)
    return session.exec(query).one()


def _orders_per_stage(session: Session) -> list[tuple[OrderStage, int]]:
    # From the progress kept on each order (app/tracking/progress.py), not its whole history:
    # the orders short of the last stage are a range of their index, named from both ends (see
    # dashboard()); the delivered ones are counted in that index alone (still one entry per
    # delivered order; PostgreSQL's index-only scan skips the rows once vacuum has seen them,
    # some 6 ms on SQLite and 30 ms on PostgreSQL unvacuumed for 200,000). It stays a count of
    # all of them: each row is the size of the order list it links to, which counts the same
    # entries, and "delivered this month" would need when each order got there, kept nowhere. No
    # filter on the status: only activation gives an offer a stage position, and an order
    # stays one (a filter on it led SQLite to the status index, every order ever placed).
    stages = session.exec(select(OrderStage).order_by(col(OrderStage.position))).all()
    if not stages:
        return []
    first, last = stages[0].position, stages[-1].position
    position = col(Offer.stage_position)
    counts = dict(
        session.exec(
            select(position, func.count())
            .where(position >= first, position < last)
            .group_by(position)
        ).all()
    )
    counts[last] = session.exec(
        select(func.count()).select_from(Offer).where(position == last)
    ).one()
    return [(stage, counts.get(stage.position, 0)) for stage in stages]


def _overdue(session: Session, today: date) -> list[tuple[Offer, OrderProgress]]:
    """Orders not yet at the last stage whose latest expected delivery date has passed."""
    stages = {s.position: s for s in session.exec(select(OrderStage)).all()}
    if not stages:
        return []
    position, expected = col(Offer.stage_position), col(Offer.expected_delivery_date)
    late = session.exec(
        select(Offer)
        .where(
            position >= min(stages),
            position < max(stages),
            expected < today,
        )
        .order_by(expected, col(Offer.id))
    ).all()
    return [
        (offer, OrderProgress(stages[offer.stage_position], offer.expected_delivery_date))
        for offer in late
        if offer.stage_position in stages
    ]
