"""The signed-in user's follow-ups, on the staff dashboard: what happened to their offers
lately, which expire soon without an answer, and which no one has opened yet.

The first and the last are read from the staff alerts (app.notifications.alerts), which
record each offer's first scan by a person a day (bots and campaign redirects left out), its
answers, questions and expiry, whatever the owner chose to be mailed: the same events the
owner's mails tell of, and the same rule for what counts as a person opening the offer. The
alerts follow the offer, so a colleague handed a leaver's offers sees their history.

An offer mailed with "Send to customer" (app.notifications.offer_mail, recorded in the
offer's history as ``offer.send``) counts as unopened from its latest sending; one never sent
through the app from its issue (it may have gone on paper or from someone's own mailbox).

Admins also see whose offers nobody follows up: those of disabled users, until handed over.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlmodel import Session, col

from app.admin.user_actions import OPEN_STATUSES
from app.audit import AuditLogEntry
from app.auth.staff import StaffUser
from app.config import Settings
from app.db import utcnow
from app.notifications.alerts import AlertKind
from app.notifications.models import StaffAlert
from app.notifications.offer_mail import SENT
from app.offers import service as offers_service
from app.offers.models import Offer, OfferStatus

ACTIVITY_DAYS = 14
LISTED = 10
# An offer sent this long ago that no one has opened is worth a call: before that, the
# customer may simply not have read their mail yet.
UNOPENED_AFTER_DAYS = 3


@dataclass(frozen=True)
class OfferRef:
    id: str
    tracking_id: str
    company: str
    valid_until: date

    @classmethod
    def of(cls, row: Any) -> "OfferRef":
        return cls(row.id, row.tracking_id, row.customer_company, row.valid_until)


@dataclass(frozen=True)
class Activity:
    offer: OfferRef
    kind: AlertKind
    summary: str
    at: datetime


@dataclass(frozen=True)
class Unopened:
    offer: OfferRef
    since: datetime  # its latest sending through the app, else its issue
    sent: bool  # mailed through the app; else only issued (on paper, from a mailbox of one's own)
    days_ago: int


@dataclass(frozen=True)
class DisabledOwner:
    user_id: int
    email: str
    open_offers: int


@dataclass(frozen=True)
class FollowUps:
    activity: list[Activity]
    expiring: list[OfferRef]
    unopened: list[Unopened]
    owns_open_offers: bool
    expiring_days: int
    activity_days: ClassVar[int] = ACTIVITY_DAYS
    unopened_after_days: ClassVar[int] = UNOPENED_AFTER_DAYS

    def __bool__(self) -> bool:
        return self.owns_open_offers or bool(self.activity)


def follow_ups(session: Session, staff_id: int, settings: Settings) -> FollowUps:
    today = offers_service.today(settings)
    mine = col(Offer.owner_id) == staff_id
    open_offers = (
        mine,
        col(Offer.status) == OfferStatus.ISSUED,  # and not past its last day: still open
        col(Offer.valid_until) >= today,
    )
    soon = today + timedelta(days=settings.alert_expiring_days)  # as the expiry alert says
    return FollowUps(
        activity=_activity(session, mine),
        expiring=_refs(
            session,
            (*open_offers, col(Offer.valid_until) <= soon),
            order=(col(Offer.valid_until), col(Offer.id)),
        ),
        unopened=_unopened(session, open_offers),
        owns_open_offers=bool(_refs(session, open_offers, order=(), limit=1)),
        expiring_days=settings.alert_expiring_days,
    )


_REF_COLUMNS = (
    col(Offer.id),
    col(Offer.tracking_id),
    col(Offer.customer_company),
    col(Offer.valid_until),
)


def _refs(
    session: Session,
    where: Sequence[ColumnElement[bool]],
    *,
    order: Sequence[Any],
    limit: int = LISTED,
) -> list[OfferRef]:
    # Columns, not Offer rows: an Offer loads its lines with it.
    query = select(*_REF_COLUMNS).where(*where).order_by(*order).limit(limit)
    return [OfferRef.of(row) for row in session.execute(query).all()]


def _activity(session: Session, mine: ColumnElement[bool]) -> list[Activity]:
    since = utcnow() - timedelta(days=ACTIVITY_DAYS)
    query = (
        select(
            *_REF_COLUMNS,
            col(StaffAlert.kind),
            col(StaffAlert.summary),
            col(StaffAlert.created_at),
        )
        .select_from(StaffAlert)
        .join(Offer, col(Offer.id) == col(StaffAlert.offer_id))
        .where(mine, col(StaffAlert.created_at) >= since)
        .order_by(col(StaffAlert.created_at).desc(), col(StaffAlert.id).desc())
        .limit(LISTED)
    )
    return [
        Activity(OfferRef.of(row), AlertKind(row.kind), row.summary, row.created_at)
        for row in session.execute(query).all()
    ]


def _unopened(session: Session, open_offers: Sequence[ColumnElement[bool]]) -> list[Unopened]:
    now = utcnow()
    before = now - timedelta(days=UNOPENED_AFTER_DAYS)
    opened = exists().where(
        col(StaffAlert.offer_id) == col(Offer.id), col(StaffAlert.kind) == AlertKind.SCANNED
    )
    # The offer's latest sending, from its own history entries (the index on offer_id and
    # occurred_at, walked back to the first sending): a handful of rows per offer.
    last_sent = (
        select(col(AuditLogEntry.occurred_at))
        .where(col(AuditLogEntry.offer_id) == col(Offer.id), col(AuditLogEntry.action) == SENT)
        .order_by(col(AuditLogEntry.occurred_at).desc())
        .limit(1)
        .correlate(Offer)
        .scalar_subquery()
    )
    candidates = (
        select(*_REF_COLUMNS, col(Offer.issued_at), last_sent.label("sent_at"))
        # Sent only once issued: an offer issued since is sent since, so this narrows first.
        .where(*open_offers, col(Offer.issued_at) <= before, ~opened)
        .subquery()
    )
    since = func.coalesce(candidates.c.sent_at, candidates.c.issued_at)
    query = select(candidates).where(since <= before).order_by(since, candidates.c.id).limit(LISTED)
    return [_unopened_entry(row, now) for row in session.execute(query).all()]


def _unopened_entry(row: Any, now: datetime) -> Unopened:
    since = row.sent_at or row.issued_at
    return Unopened(OfferRef.of(row), since, row.sent_at is not None, (now - since).days)


def disabled_owners(session: Session, settings: Settings) -> list[DisabledOwner]:
    """Disabled users who still own open offers, with how many: until an admin hands them
    over, those offers are on nobody's follow-ups."""
    today = offers_service.today(settings)
    still_open = or_(
        col(Offer.status).in_([s for s in OPEN_STATUSES if s != OfferStatus.ISSUED]),
        and_(col(Offer.status) == OfferStatus.ISSUED, col(Offer.valid_until) >= today),
    )
    query = (
        select(col(StaffUser.id), col(StaffUser.email), func.count(col(Offer.id)).label("open"))
        .join(Offer, col(Offer.owner_id) == col(StaffUser.id))
        .where(~col(StaffUser.is_active), still_open)
        .group_by(col(StaffUser.id), col(StaffUser.email))
        .order_by(col(StaffUser.email))
    )
    return [DisabledOwner(row.id, row.email, row.open) for row in session.execute(query).all()]
