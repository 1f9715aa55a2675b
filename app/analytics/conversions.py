"""Conversions and the scans they are attributed to.

An offer's conversions (accepted, ordered) are recorded by the offer and order use cases in
their own transaction; external ones (a shop's point of sale) come through the API, idempotent
on their external key. Touches are resolved once, when the conversion is recorded: first touch
is the earliest non-bot scan before it, last touch the latest.
"""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.analytics import outbox
from app.analytics.models import Conversion, Placement
from app.analytics.schemas import ConversionCreate
from app.db import read_only, utcnow
from app.errors import Conflict, NotFound, Unprocessable
from app.offers.models import Offer, OfferStatus
from app.offers.pricing import compute_totals
from app.tracking.codes import InvalidCode, parse_tracking_code
from app.tracking.models import CodeForm, ScanEvent

OFFER_ACCEPTED = "offer_accepted"
ORDER = "order"
OFFER_CHANNEL = "offer"
DIMENSIONS = ("campaign_id", "placement_id", "creative_id")


class ConversionKeyReused(Conflict):
    def __init__(self, key: str) -> None:
        super().__init__(
            f"A different conversion was recorded with external_key {key!r} already; "
            "send the same body to repeat it, or use a new key."
        )


class ConversionNotFound(NotFound):
    def __init__(self, conversion_id: int) -> None:
        super().__init__(f"No conversion with id {conversion_id}.")


def _touch_fields(prefix: str, scan: ScanEvent | None, fallback: Any = None) -> dict[str, Any]:
    source = scan if scan is not None else fallback
    fields = {f"{prefix}_{name}": getattr(source, name, None) for name in DIMENSIONS}
    fields[f"{prefix}_scan_id"] = scan.id if scan is not None else None
    return fields


def _touches(
    first: ScanEvent | None, last: ScanEvent | None, occurred_at: datetime, fallback: Any = None
) -> dict[str, Any]:
    fields = _touch_fields("first", first, fallback) | _touch_fields("last", last, fallback)
    if first is not None:
        fields["seconds_to_convert"] = max(
            int((occurred_at - first.occurred_at).total_seconds()), 0
        )
    return fields


def _offer_scans(session: Session, offer_id: str, until: datetime) -> tuple[ScanEvent | None, ...]:
    query = select(ScanEvent).where(
        col(ScanEvent.offer_id) == offer_id,
        col(ScanEvent.occurred_at) <= until,
        col(ScanEvent.is_bot).is_(False),
    )
    first = session.execute(
        query.order_by(col(ScanEvent.occurred_at), col(ScanEvent.id)).limit(1)
    ).scalar()
    last = session.execute(
        query.order_by(col(ScanEvent.occurred_at).desc(), col(ScanEvent.id).desc()).limit(1)
    ).scalar()
    return first, last


def offer_touches(session: Session, offer: Offer, occurred_at: datetime) -> dict[str, Any]:
    """The offer's own scans; without any, the campaign the offer was assigned to."""
    first, last = _offer_scans(session, offer.id, occurred_at)
    return _touches(first, last, occurred_at, fallback=offer)


def record_offer_conversion(session: Session, offer: Offer, conversion_type: str) -> None:
    """Record an offer's conversion (value: its gross total) in the caller's transaction.

    Called once per offer and type by the use case that changes the offer; the unique key
    makes a repeat a no-op.
    """
    key = f"offer:{offer.id}:{conversion_type}"
    if session.execute(
        select(col(Conversion.id)).where(col(Conversion.external_key) == key)
    ).first():
        return
    occurred_at = utcnow()
    gross = compute_totals(offer.lines, offer.currency).gross
    conversion = Conversion(
        external_key=key,
        body_hash="",
        type=conversion_type,
        offer_id=offer.id,
        value=gross,
        currency=offer.currency,
        channel=OFFER_CHANNEL,
        occurred_at=occurred_at,
        **offer_touches(session, offer, occurred_at),
    )
    session.add(conversion)
    session.flush()
    outbox.emit(session, "conversion.created", outbox.conversion_data(conversion))
    if conversion_type == OFFER_ACCEPTED:
        outbox.emit(session, "offer.accepted", outbox.offer_data(offer, str(gross)))


def body_hash(data: ConversionCreate) -> str:
    canonical = json.dumps(data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def record_external(session: Session, data: ConversionCreate) -> tuple[Conversion, bool]:
    """Record an external conversion; the same key and body again returns the first one.

    Returns the conversion and whether it was created now.
    """
    digest = body_hash(data)
    existing = _by_key(session, data.external_key)
    if existing is not None:
        return _same_or_conflict(existing, digest, data.external_key), False
    # In UTC like every stored time: the webhook and the first answer are built from this
    # object, not from the row read back, and must not carry the sender's offset.
    occurred_at = (data.occurred_at or utcnow()).astimezone(UTC)
    conversion = Conversion(
        external_key=data.external_key,
        body_hash=digest,
        type=data.type,
        value=data.value,
        currency=data.currency,
        channel=data.channel,
        occurred_at=occurred_at,
        **_external_touches(session, data, occurred_at),
    )
    try:
        with session.begin_nested():
            session.add(conversion)
            session.flush()
            outbox.emit(session, "conversion.created", outbox.conversion_data(conversion))
    except IntegrityError:  # the same key, sent twice at the same moment
        raced = _by_key(session, data.external_key)
        if raced is None:
            raise
        return _same_or_conflict(raced, digest, data.external_key), False
    session.commit()
    return conversion, True


def _by_key(session: Session, key: str) -> Conversion | None:
    query = select(Conversion).where(col(Conversion.external_key) == key)
    return session.execute(query).scalar_one_or_none()


def _same_or_conflict(existing: Conversion, digest: str, key: str) -> Conversion:
    if existing.body_hash != digest:
        raise ConversionKeyReused(key)
    return existing


def _external_touches(
    session: Session, data: ConversionCreate, occurred_at: datetime
) -> dict[str, Any]:
    if data.scan_id is not None:
        scan = session.get(ScanEvent, data.scan_id)
        if scan is None:
            raise Unprocessable(f"No scan with id {data.scan_id}.", loc=("body", "scan_id"))
        touch = None if scan.is_bot else scan
        fields = _touches(touch, touch, occurred_at)
        fields["offer_id"] = scan.offer_id
        return fields
    assert data.code is not None
    return _code_touches(session, data.code, occurred_at)


def _code_touches(session: Session, code: str, occurred_at: datetime) -> dict[str, Any]:
    """A campaign code's slug attributes to its placement; an offer code to the offer's scans."""
    placement = session.execute(
        select(Placement).where(col(Placement.slug) == code.strip().lower())
    ).scalar_one_or_none()
    if placement is not None:
        fallback = {"campaign_id": placement.campaign_id, "placement_id": placement.id}
        return _touches(None, None, occurred_at, fallback=_Dims(**fallback))
    offer = _offer_by_code(session, code)
    return offer_touches(session, offer, occurred_at) | {"offer_id": offer.id}


class _Dims:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def _offer_by_code(session: Session, code: str) -> Offer:
    unknown = Unprocessable(
        "Unknown code: give a campaign code's slug, an offer's ULID or an order's tracking ID.",
        loc=("body", "code"),
    )
    try:
        parsed = parse_tracking_code(code)
    except InvalidCode as exc:
        raise unknown from exc
    if parsed.form == CodeForm.FULL:
        offer = session.get(Offer, parsed.value)
    else:
        query = select(Offer).where(col(Offer.tracking_id) == parsed.value)
        offer = session.execute(query).scalar_one_or_none()
    if offer is None or offer.status == OfferStatus.DRAFT:
        raise unknown
    return offer


def get_conversion(session: Session, conversion_id: int) -> Conversion:
    with read_only(session):
        conversion = session.get(Conversion, conversion_id)
    if conversion is None:
        raise ConversionNotFound(conversion_id)
    return conversion
