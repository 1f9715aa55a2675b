"""Staff alerts: the offer's owner hears when the paper comes alive, and of the customer's answer.

Each alert is recorded once in ``staff_alert`` under a key (the first scan of a day, an
acceptance, an offer about to expire), in the transaction of what caused it, so a second scan
the same day or an event delivered twice alerts nobody again. Who hears it: the offer's owner
(``offer.owner_id``), or the company's sales address when the offer has none; how: their
preference for that kind, immediately (a mail now), in the daily digest, or not at all. Every
alert, whatever the preference, also becomes a webhook event (``offer.scanned``, ...) through
the ``OfferAlertRaised`` domain event, which the composition root hands to the webhook outbox.
Bots and link previewers never raise one.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, text, update
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from app.auth.staff import StaffUser
from app.config import Settings, get_settings
from app.db import UTCDateTime, insert_on_conflict, local_day_sql, utcnow
from app.events import publish
from app.notifications.events import OfferAlertRaised
from app.notifications.mail import queue_rendered
from app.notifications.models import AlertPreference, StaffAlert
from app.notifications.templates import render_mail
from app.offers.events import OfferAccepted, OfferDeclined
from app.offers.models import Offer, OfferStatus
from app.tracking.events import ScansCommitted
from app.tracking.models import CodeForm


class AlertKind(StrEnum):
    SCANNED = "scanned"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    QUESTION = "question"


class AlertMode(StrEnum):
    IMMEDIATELY = "immediately"
    DIGEST = "digest"
    OFF = "off"


# Webhook types are offer.<kind>; an acceptance already is one (the conversion's offer.accepted).
WEBHOOK_KINDS = frozenset(AlertKind) - {AlertKind.ACCEPTED}
# Offers that expired before this many days ago raise no "expired" alert (a first start of the
# worker on an old database must not mail about every offer that ever lapsed).
EXPIRED_LOOKBACK_DAYS = 7


@dataclass(frozen=True)
class Recipient:
    email: str
    user_id: int | None
    name: str


def recipient_for(session: Session, offer: Offer, settings: Settings) -> Recipient:
    """The offer's owner while they are an active user; the sales address otherwise."""
    if offer.owner_id is not None:
        owner = session.get(StaffUser, offer.owner_id)
        if owner is not None and owner.is_active:
            return Recipient(owner.email, offer.owner_id, owner.full_name)
    return Recipient(settings.sales_email or settings.company_email, None, "")


def preferences(session: Session, user_id: int) -> dict[AlertKind, AlertMode]:
    """Every kind with the user's choice (immediately unless they chose otherwise)."""
    rows = session.exec(
        select(AlertPreference).where(col(AlertPreference.staff_user_id) == user_id)
    ).all()
    chosen = {row.kind: row.mode for row in rows}
    return {kind: AlertMode(chosen.get(kind, AlertMode.IMMEDIATELY)) for kind in AlertKind}


def set_preferences(session: Session, user_id: int, modes: dict[AlertKind, AlertMode]) -> None:
    """Store a user's choices (all kinds at once, from the preferences page)."""
    existing = {
        row.kind: row
        for row in session.exec(
            select(AlertPreference).where(col(AlertPreference.staff_user_id) == user_id)
        )
    }
    for kind, mode in modes.items():
        row = existing.get(kind) or AlertPreference(staff_user_id=user_id, kind=kind, mode=mode)
        row.mode = mode
        session.add(row)
    session.commit()


def redirect_waiting(session: Session, offers: SelectOfScalar[str], source: str, to: str) -> int:
    """Alerts about the offers ``offers`` selects (their ids) still waiting for ``source``'s
    digest go to ``to`` (their new owner): a departed owner's digest would tell nobody. An
    alert raised for someone else who owned the offer before stays theirs. A subquery, not
    an id per offer: a leaver's offers can outnumber the variables SQLite binds in one
    statement. The caller commits."""
    moved = session.execute(
        update(StaffAlert)
        .where(
            col(StaffAlert.offer_id).in_(offers),
            col(StaffAlert.recipient) == source,
            col(StaffAlert.mode) == AlertMode.DIGEST,
            col(StaffAlert.digest_sent_at).is_(None),
        )
        .values(recipient=to)
    )
    return int(moved.rowcount)  # type: ignore[attr-defined]


def raise_alert(
    session: Session,
    offer: Offer,
    kind: AlertKind,
    key: str,
    context: dict[str, Any],
    *,
    settings: Settings,
    webhook: dict[str, Any],
    reply_to: str | None = None,
) -> bool:
    """Record the alert ``key`` once and mail or queue it for the digest; False if known."""
    if _known(session, key):
        return False  # the usual case for scans: nothing to render (the insert still decides)
    recipient = recipient_for(session, offer, settings)
    mode = (
        preferences(session, recipient.user_id)[kind]
        if recipient.user_id is not None
        else AlertMode.IMMEDIATELY
    )
    full = _context(offer, kind, context, recipient, settings)
    mail = render_mail("staff_alert", full, settings=settings)
    row = {
        "dedupe_key": key,
        "offer_id": offer.id,
        "kind": kind,
        "recipient": recipient.email,
        "mode": mode,
        "summary": mail.subject[:500],
        "created_at": utcnow(),
    }
    if not _insert_once(session, row):
        return False
    if mode == AlertMode.IMMEDIATELY:
        queue_rendered(
            session,
            mail,
            to=recipient.email,
            dedupe_key=f"alert:{key}",
            category=f"alert.{kind}",
            settings=settings,
            reply_to=reply_to,
            headers={"Auto-Submitted": "auto-generated"},
        )
    if kind in WEBHOOK_KINDS:
        publish(session, OfferAlertRaised(offer_id=offer.id, kind=kind, data=webhook))
    return True


def _context(
    offer: Offer, kind: AlertKind, context: dict[str, Any], who: Recipient, settings: Settings
) -> dict[str, Any]:
    return {
        "kind": kind,
        "tracking_id": offer.tracking_id,
        "company": offer.customer_company,
        "recipient_name": who.name,
        "staff_url": f"{settings.public_base_url}/admin/offer/details/{offer.id}",
        "preferences_url": f"{settings.public_base_url}/admin/alerts/",
        **context,
    }


def _known(session: Session, key: str) -> bool:
    query = select(col(StaffAlert.id)).where(col(StaffAlert.dedupe_key) == key)
    return session.exec(query).first() is not None


def _insert_once(session: Session, row: dict[str, Any]) -> bool:
    insert = insert_on_conflict(session.connection().dialect.name, StaffAlert)
    statement = insert.values(row).on_conflict_do_nothing(index_elements=["dedupe_key"])
    return bool(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def local_day(moment: datetime, settings: Settings) -> date:
    return moment.astimezone(settings.zone).date()


@dataclass(frozen=True, slots=True, kw_only=True)
class _FirstScan:
    """An offer's first scan by a person on one local day, within a round of the scan feed."""

    scan_id: int
    offer_id: str
    channel: str
    device_class: str
    occurred_at: datetime


def on_scans_committed(session: Session, event: ScansCommitted) -> None:
    """The first human scan of an issued offer, and the first of each later day: each offer's
    first scan of the day in the feed's round, unless an earlier round's alert left its key."""
    settings = get_settings()
    today = local_day(utcnow(), settings)
    firsts = _first_scans_by_people(session, event, settings)
    keyed = {_scan_key(scan, settings): scan for scan in firsts}
    # The usual case: every offer of the round was scanned earlier that day. One query for
    # them all: a busy round names many offers, and it holds SQLite's one writer.
    known = _known_keys(session, list(keyed))
    for key, scan in keyed.items():
        if key not in known:
            _alert_scan(session, scan, key, today, settings)


def _first_scans_by_people(
    session: Session, event: ScansCommitted, settings: Settings
) -> list[_FirstScan]:
    """The first scan of each offer and local day in the round, bots and campaign redirects
    left out: one grouped query, where handing every row to Python cost the round some 10 us
    a scan inside its write transaction."""
    connection = session.connection()
    day = local_day_sql(connection.dialect.name, "x.occurred_at")
    firsts = text(
        "SELECT s.id, s.offer_id, s.channel, s.device_class, s.occurred_at FROM scan_event s"
        " WHERE s.id > :after AND s.id <= :upto AND s.id IN (SELECT min(x.id) FROM scan_event x"
        " WHERE x.id > :after AND x.id <= :upto AND NOT x.is_bot AND x.offer_id IS NOT NULL"
        f" AND x.code_form <> :campaign GROUP BY x.offer_id, {day}) ORDER BY s.id"
    ).columns(occurred_at=UTCDateTime)
    params = {
        "after": event.after,
        "upto": event.upto,
        "zone": settings.zone.key,
        "campaign": CodeForm.CAMPAIGN,
    }
    return [
        _FirstScan(
            scan_id=row.id,
            offer_id=row.offer_id,
            channel=str(row.channel),
            device_class=row.device_class,
            occurred_at=row.occurred_at,
        )
        for row in connection.execute(firsts, params)
    ]


def _scan_key(scan: _FirstScan, settings: Settings) -> str:
    return f"scanned:{scan.offer_id}:{local_day(scan.occurred_at, settings).isoformat()}"


def _known_keys(session: Session, keys: list[str]) -> set[str]:
    query = select(col(StaffAlert.dedupe_key)).where(col(StaffAlert.dedupe_key).in_(keys))
    return set(session.exec(query).all()) if keys else set()


def _alert_scan(
    session: Session, scan: _FirstScan, key: str, today: date, settings: Settings
) -> None:
    offer = session.get(Offer, scan.offer_id)
    if offer is None or offer.effective_status(today) != OfferStatus.ISSUED:
        return
    raise_alert(
        session,
        offer,
        AlertKind.SCANNED,
        key,
        {"channel": scan.channel, "device_class": scan.device_class},
        settings=settings,
        webhook={
            "offer_id": offer.id,
            "tracking_id": offer.tracking_id,
            "scan_id": scan.scan_id,
            "channel": scan.channel,
            "device_class": scan.device_class,
            "occurred_at": scan.occurred_at.isoformat(),
        },
    )


def on_offer_accepted(session: Session, event: OfferAccepted) -> None:
    offer = session.get(Offer, event.offer_id)
    if offer is None:
        return
    context = {"signer_name": event.signer_name, "po_number": event.po_number}
    raise_alert(
        session,
        offer,
        AlertKind.ACCEPTED,
        f"accepted:{offer.id}",
        context,
        settings=get_settings(),
        webhook={},
    )


def on_offer_declined(session: Session, event: OfferDeclined) -> None:
    offer = session.get(Offer, event.offer_id)
    if offer is None:
        return
    raise_alert(
        session,
        offer,
        AlertKind.DECLINED,
        f"declined:{offer.id}",
        {"reason": event.reason},
        settings=get_settings(),
        webhook={"offer_id": offer.id, "tracking_id": offer.tracking_id, "reason": event.reason},
    )


def check_validity(engine: Engine, settings: Settings, today: date | None = None) -> int:
    """Worker job: issued offers without an answer that expire within N days, or just did."""
    today = today or local_day(utcnow(), settings)
    soon = today + timedelta(days=settings.alert_expiring_days)
    raised = 0
    with Session(engine, expire_on_commit=False) as session:
        offers = session.exec(
            select(Offer).where(
                col(Offer.status) == OfferStatus.ISSUED,
                col(Offer.valid_until) <= soon,
                col(Offer.valid_until) >= today - timedelta(days=EXPIRED_LOOKBACK_DAYS),
            )
        ).all()
        for offer in offers:
            raised += _validity_alert(session, offer, today, settings)
        session.commit()
    return raised


def _validity_alert(session: Session, offer: Offer, today: date, settings: Settings) -> int:
    expired = offer.valid_until < today
    kind = AlertKind.EXPIRED if expired else AlertKind.EXPIRING
    days_left = (offer.valid_until - today).days
    webhook = {
        "offer_id": offer.id,
        "tracking_id": offer.tracking_id,
        "valid_until": offer.valid_until.isoformat(),
        "days_left": max(days_left, 0),
    }
    context = {"valid_until": offer.valid_until, "days_left": days_left}
    key = f"{kind}:{offer.id}:{offer.valid_until.isoformat()}"
    return int(raise_alert(session, offer, kind, key, context, settings=settings, webhook=webhook))


def send_digests(engine: Engine, settings: Settings, now: datetime | None = None) -> int:
    """Worker job: one mail per recipient with the digest alerts of the days before today."""
    now = now or utcnow()
    start_of_today = datetime.combine(local_day(now, settings), time(), tzinfo=settings.zone)
    with Session(engine, expire_on_commit=False) as session:
        waiting = session.exec(
            select(StaffAlert)
            .where(
                col(StaffAlert.mode) == AlertMode.DIGEST,
                col(StaffAlert.digest_sent_at).is_(None),
                col(StaffAlert.created_at) < start_of_today,
            )
            .order_by(col(StaffAlert.recipient), col(StaffAlert.id))
        ).all()
        departed = _departed(session, {alert.recipient for alert in waiting})
        sales = settings.sales_email or settings.company_email
        by_recipient: dict[str, list[StaffAlert]] = {}
        for alert in waiting:
            recipient = sales if alert.recipient in departed else alert.recipient
            by_recipient.setdefault(recipient, []).append(alert)
        for recipient, alerts in by_recipient.items():
            _queue_digest(session, recipient, alerts, now, settings)
        session.commit()
    return len(by_recipient)


def _departed(session: Session, recipients: set[str]) -> set[str]:
    """Which of these addresses belong to staff users disabled since their alerts were raised:
    their digest goes to the sales address, as their new alerts do, not to a leaver's inbox."""
    if not recipients:
        return set()
    query = select(col(StaffUser.email)).where(
        col(StaffUser.email).in_(recipients), col(StaffUser.is_active).is_(False)
    )
    return set(session.exec(query).all())


def _queue_digest(
    session: Session, recipient: str, alerts: list[StaffAlert], now: datetime, settings: Settings
) -> None:
    day = local_day(now, settings)
    context = {
        "tracking_id": "",
        "alerts": alerts,
        "day": day,
        "public_base_url": settings.public_base_url,
        "preferences_url": f"{settings.public_base_url}/admin/alerts/",
    }
    queue_rendered(
        session,
        render_mail("staff_digest", context, settings=settings),
        to=recipient,
        dedupe_key=f"digest:{recipient}:{day.isoformat()}",
        category="alert.digest",
        settings=settings,
        headers={"Auto-Submitted": "auto-generated"},
    )
    session.execute(
        update(StaffAlert)
        .where(col(StaffAlert.id).in_([alert.id for alert in alerts]))
        .values(digest_sent_at=now)
    )
