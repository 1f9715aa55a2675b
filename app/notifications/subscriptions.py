"""Customers subscribe to their order: double opt-in, one-click unsubscribe, fan-out in the worker.

Privacy: a subscription is the address, the order, pending or confirmed, and when. Nothing
tells a visitor whether an address is already subscribed: every request answers alike, and
only a new or still pending address gets a (new) confirmation mail. Unsubscribing deletes the
row; pending subscriptions nobody confirmed are deleted after CONFIRM_DAYS.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Engine, delete, or_, select, update
from sqlmodel import Session, col

from app import i18n
from app.config import Settings
from app.db import nothing_to_claim, read_only, utcnow
from app.errors import NotFound
from app.notifications.mail import (
    insert_mails,
    normalize_address,
    prepare_rendered,
    queue_rendered,
)
from app.notifications.models import MailOutbox, OrderSubscription, UpdateFanout
from app.notifications.templates import render_mail
from app.offers.ids import tracking_id_of
from app.offers.models import Offer, OfferStatus
from app.tracking import service as tracking_service
from app.tracking.codes import TrackingCode
from app.tracking.events import StageUpdated
from app.tracking.models import StageUpdate
from app.tracking.scans import mail_link

CONFIRM_DAYS = 7
FANOUT_LEASE = timedelta(minutes=5)
FANOUT_CHUNK = 100
_CONFIRM = "order-subscription.confirm"
_UNSUBSCRIBE = "order-subscription.unsubscribe"


class LinkInvalid(NotFound):
    """A confirmation link that is wrong, expired or for a subscription that is gone."""

    title = "This link no longer works"
    # Its page says this in the visitor's language, as the mail that carried the link did.
    web_template = "notifications/link_invalid.html"
    valid_days = CONFIRM_DAYS
    explanation = (
        f"This confirmation link is not valid any more (links work for {CONFIRM_DAYS} days). "
        "Please ask for e-mail updates again on the order page."
    )

    def __init__(self) -> None:
        super().__init__(self.explanation)


class UnsubscribeLinkInvalid(LinkInvalid):
    """An unsubscribe link that is not ours as sent (cut short by a mail program, say): its
    reader wants the mails to stop, not to be asked to subscribe again."""

    web_template = "notifications/unsubscribe_link_invalid.html"

    explanation = (
        "This link to stop the e-mail updates is incomplete or changed. Please open it again "
        "from the latest update mail; if it still fails, write to us and we will stop them."
    )


@dataclass(frozen=True)
class Links:
    confirm: str
    unsubscribe: str


def _serializer(settings: Settings, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.resolved_secret_key(), salt=salt)


def confirm_token(subscription_id: int, settings: Settings) -> str:
    return _serializer(settings, _CONFIRM).dumps(subscription_id)


def unsubscribe_token(subscription_id: int, settings: Settings) -> str:
    return _serializer(settings, _UNSUBSCRIBE).dumps(subscription_id)


def unsubscribe_url(subscription_id: int, settings: Settings) -> str:
    token = unsubscribe_token(subscription_id, settings)
    return f"{_served_base_url(settings)}/updates/unsubscribe/{token}"


def _served_base_url(settings: Settings) -> str:
    """The public base URL with the scheme browsers reach it by: behind a TLS proxy an http
    base URL is served over https (a one-click POST to http would meet the proxy's redirect,
    which mail providers do not follow with a POST)."""
    base = settings.public_base_url
    if settings.uses_tls and base.startswith("http://"):
        return "https://" + base.removeprefix("http://")
    return base


def confirm_url(subscription_id: int, settings: Settings, language: str | None = None) -> str:
    """The confirmation link; with ``language`` (the mail's, when it is not the offer's) its
    page speaks the mail's language, as the switcher's ``?lang=`` makes it."""
    token = confirm_token(subscription_id, settings)
    query = f"?lang={language}" if language else ""
    return f"{settings.public_base_url}/updates/confirm/{token}{query}"


def _read(token: str, salt: str, settings: Settings, max_age: int | None) -> int:
    invalid = UnsubscribeLinkInvalid if salt == _UNSUBSCRIBE else LinkInvalid
    try:
        value = _serializer(settings, salt).loads(token, max_age=max_age)
    except (SignatureExpired, BadSignature) as exc:
        raise invalid() from exc
    if not isinstance(value, int):
        raise invalid()
    return value


def unsubscribe_headers(
    subscription_id: int, settings: Settings, language: str = ""
) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe (RFC 2369's List-Unsubscribe with an https URL).

    Over plain http (development without TLS) the link stays, but not the one-click header:
    RFC 8058 allows it only with an https URL. ``language``: the mail's, which the page a mail
    program opens from the header speaks too, as the mail's own link does."""
    query = f"?lang={language}" if language else ""
    url = unsubscribe_url(subscription_id, settings) + query
    headers = {"List-Unsubscribe": f"<{url}>", "Auto-Submitted": "auto-generated"}
    if url.startswith("https://"):
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def subscribable_order(session: Session, code: TrackingCode) -> Offer:
    """The order a tracking page shows, by tracking ID or full ULID; offers are not orders."""
    offer = tracking_service.find_by_code(session, code)
    if offer.status != OfferStatus.ORDERED:
        raise tracking_service.CodeNotFound()
    return offer


def subscribe(
    session: Session,
    code: TrackingCode,
    email: str,
    *,
    settings: Settings,
    language: str | None = None,
) -> None:
    """Ask for updates: a new or pending address gets a confirmation mail, in ``language``
    (the page's; by default the offer's), a confirmed one nothing (the caller answers alike
    either way)."""
    address = normalize_address(email, loc=("email",))
    offer = subscribable_order(session, code)
    existing = session.execute(
        select(OrderSubscription).where(
            col(OrderSubscription.offer_id) == offer.id, col(OrderSubscription.email) == address
        )
    ).scalar_one_or_none()
    if existing is not None and existing.confirmed_at is not None:
        session.rollback()
        return
    subscription = existing or OrderSubscription(offer_id=offer.id, email=address)
    subscription.created_at = utcnow()  # a new request restarts the time to confirm
    subscription.language = language or offer.language  # its updates speak it too
    session.add(subscription)
    session.flush()
    assert subscription.id is not None
    _queue_confirmation(session, offer, subscription, settings, subscription.language)
    session.commit()


def _queue_confirmation(
    session: Session,
    offer: Offer,
    subscription: OrderSubscription,
    settings: Settings,
    language: str,
) -> None:
    assert subscription.id is not None
    context = {
        "tracking_id": offer.tracking_id,
        "about_order": True,
        # Asked for on a page in another language than the offer's: the mail is written in
        # it, and the page its link opens must not switch back to the offer's.
        "confirm_url": confirm_url(
            subscription.id, settings, language if language != offer.language else None
        ),
    }
    queue_rendered(
        session,
        render_mail("subscription_confirm", context, settings=settings, lang=language),
        to=subscription.email,
        # One confirmation mail per request: asking again sends a fresh link.
        dedupe_key=_confirm_key(subscription.id, subscription.created_at.isoformat()),
        category="subscription.confirm",
        settings=settings,
        headers=unsubscribe_headers(subscription.id, settings, language),
    )


def pending_subscription(session: Session, token: str, *, settings: Settings) -> OrderSubscription:
    """The subscription a confirmation link names, for the page with the button."""
    subscription_id = _read(token, _CONFIRM, settings, CONFIRM_DAYS * 86400)
    subscription = session.get(OrderSubscription, subscription_id)
    if subscription is None:
        raise LinkInvalid()
    return subscription


def offer_language(session: Session, offer_id: str) -> str:
    """The language of the subscribed offer: its confirmation pages speak it."""
    offer = session.get(Offer, offer_id)
    return offer.language if offer is not None else i18n.DEFAULT_LANGUAGE


def confirm(session: Session, token: str, *, settings: Settings) -> OrderSubscription:
    """The subscriber pressed "Confirm": updates from now on (confirming twice changes nothing)."""
    subscription = pending_subscription(session, token, settings=settings)
    if subscription.confirmed_at is None:
        subscription.confirmed_at = utcnow()
        session.add(subscription)
    session.commit()
    return subscription


def unsubscribe(session: Session, token: str, *, settings: Settings) -> None:
    """Delete the subscription (its address with it) and its mails not sent yet; a second
    click finds nothing to do."""
    subscription_id = _read(token, _UNSUBSCRIBE, settings, None)
    session.execute(delete(OrderSubscription).where(col(OrderSubscription.id) == subscription_id))
    # Mails queued while the mail server was away would otherwise still go out after the click.
    session.execute(
        delete(MailOutbox).where(
            col(MailOutbox.sent_at).is_(None),
            or_(
                col(MailOutbox.dedupe_key).like(_update_key("%", subscription_id)),
                col(MailOutbox.dedupe_key).like(_confirm_key(subscription_id, "%")),
            ),
        )
    )
    session.commit()


def _update_key(stage_update_id: object, subscription_id: int) -> str:
    return f"order-update:{stage_update_id}:{subscription_id}"


def _confirm_key(subscription_id: int, requested_at: str) -> str:
    return f"subscription-confirm:{subscription_id}:{requested_at}"


def check_unsubscribe_token(token: str, *, settings: Settings) -> None:
    _read(token, _UNSUBSCRIBE, settings, None)


def unsubscribing_from(session: Session, token: str, *, settings: Settings) -> str | None:
    """The tracking ID of the order an unsubscribe link is about, for its pages to name it;
    None once the subscription is gone (the link is still answered, as a second click)."""
    subscription_id = _read(token, _UNSUBSCRIBE, settings, None)
    with read_only(session):
        offer_id = session.execute(
            select(col(OrderSubscription.offer_id)).where(
                col(OrderSubscription.id) == subscription_id
            )
        ).scalar_one_or_none()
    return tracking_id_of(offer_id) if offer_id else None


def on_stage_updated(session: Session, event: StageUpdated) -> None:
    """A stage update subscribers hear of becomes one fan-out row (the worker does the rest)."""
    if event.reached_final:
        reason = "delivered"
    elif event.expected_delivery_changed:
        reason = "delivery_date"
    elif event.public_note.strip():
        reason = "note"
    elif event.moved_on:  # what the subscribe form promises: a mail when the order moves on
        reason = "stage"
    else:
        return
    session.add(
        UpdateFanout(offer_id=event.offer_id, stage_update_id=event.stage_update_id, reason=reason)
    )


def fan_out(engine: Engine, settings: Settings) -> int:
    """Worker job: turn one pending fan-out row into a mail per confirmed subscriber.

    Mails are built outside any transaction and inserted FANOUT_CHUNK at a time, each chunk a
    short transaction of its own: on SQLite a long one would hold the one writer lock for the
    whole fan-out and every page, scan and API call waiting to write would wait for it. A
    worker that dies midway leaves the lease to expire; the next one queues the rest (the
    mails already queued are recognised by their dedupe keys)."""
    claimed = _claim_fanout(engine)
    if claimed is None:
        return 0
    with Session(engine, expire_on_commit=False) as session, read_only(session):
        offer = session.get(Offer, claimed.offer_id)
        stage_update = session.get(StageUpdate, claimed.stage_update_id)
        audience = _confirmed_subscribers(session, claimed.offer_id)
        stage = (
            tracking_service.resolve_stage(session, stage_update.stage_key)
            if stage_update is not None
            else None
        )
    if offer is not None and stage_update is not None and stage is not None:
        context = _update_context(offer, stage_update, stage.label, claimed.reason, settings)
        for start in range(0, len(audience), FANOUT_CHUNK):
            rows = [
                _update_mail(context, stage_update, subscriber, settings)
                for subscriber in audience[start : start + FANOUT_CHUNK]
            ]
            with engine.begin() as connection:
                insert_mails(connection, rows)
    with engine.begin() as connection:
        connection.execute(
            update(UpdateFanout)
            .where(col(UpdateFanout.id) == claimed.id)
            .values(done_at=utcnow(), locked_until=None)
        )
    return 1


def _claim_fanout(engine: Engine) -> UpdateFanout | None:
    """Lease the oldest pending fan-out to this worker (PostgreSQL: SKIP LOCKED)."""
    now = utcnow()
    query = (
        select(UpdateFanout)
        .where(col(UpdateFanout.done_at).is_(None))
        .where(or_(col(UpdateFanout.locked_until).is_(None), col(UpdateFanout.locked_until) < now))
        .order_by(col(UpdateFanout.id))
        .limit(1)
    )
    if nothing_to_claim(engine, query):
        return None
    with Session(engine, expire_on_commit=False) as session:
        if session.connection().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        fanout = session.execute(query).scalar_one_or_none()
        if fanout is not None:
            fanout.locked_until = now + FANOUT_LEASE
            session.add(fanout)
        session.commit()
    return fanout


class Subscriber(NamedTuple):
    subscription_id: int
    email: str
    language: str | None


def _confirmed_subscribers(session: Session, offer_id: str) -> list[Subscriber]:
    rows: Sequence[Any] = session.execute(
        select(
            col(OrderSubscription.id),
            col(OrderSubscription.email),
            col(OrderSubscription.language),
        ).where(
            col(OrderSubscription.offer_id) == offer_id,
            col(OrderSubscription.confirmed_at).is_not(None),
        )
    ).all()
    return [Subscriber(*row) for row in rows]


def _update_context(
    offer: Offer, stage_update: StageUpdate, stage_label: str, reason: str, settings: Settings
) -> dict[str, Any]:
    return {
        "tracking_id": offer.tracking_id,
        "stage_label": stage_label,
        "public_note": stage_update.public_note,
        # What the page shows of a shipment: a buyer should not have to open it for the number.
        "carrier": stage_update.carrier,
        "tracking_number": stage_update.tracking_number,
        "tracking_link": stage_update.tracking_link,
        # The order's date as its page shows it now, not the update's own: one dated in the
        # past may name a date that a later update replaced.
        "expected_delivery": offer.expected_delivery_date,
        "reason": reason,
        "page_url": f"{settings.public_base_url}/{offer.tracking_id}",
        "lang": offer.language,
        "about_order": True,
    }


def _update_mail(
    context: dict[str, Any],
    stage_update: StageUpdate,
    subscriber: Subscriber,
    settings: Settings,
) -> dict[str, Any]:
    subscription_id, email, language = subscriber
    offer_language = context["lang"]
    lang = language if language and i18n.is_supported(language) else offer_language
    # The page its link opens speaks the mail's language too.
    page_url = mail_link(context["page_url"], **({"lang": lang} if lang != offer_language else {}))
    personal = {
        **context,
        "lang": lang,
        "page_url": page_url,
        # The page it opens speaks the mail's language, whatever the browser's.
        "unsubscribe_url": f"{unsubscribe_url(subscription_id, settings)}?lang={lang}",
    }
    return prepare_rendered(
        render_mail("order_update", personal, settings=settings, lang=lang),
        to=email,
        dedupe_key=_update_key(stage_update.id, subscription_id),
        category="order.update",
        settings=settings,
        headers=unsubscribe_headers(subscription_id, settings, lang),
    )


def purge_unconfirmed(engine: Engine) -> int:
    """Pending subscriptions nobody confirmed within CONFIRM_DAYS are deleted."""
    cutoff = utcnow() - timedelta(days=CONFIRM_DAYS)
    with engine.begin() as connection:
        result = connection.execute(
            delete(OrderSubscription).where(
                col(OrderSubscription.confirmed_at).is_(None),
                col(OrderSubscription.created_at) < cutoff,
            )
        )
    return int(result.rowcount or 0)
