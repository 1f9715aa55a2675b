"""Offer use cases. Each public function that changes state commits its own transaction."""

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, and_, delete, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from app import audit
from app.auth.staff import StaffUser
from app.config import Settings
from app.customers import service as customers_service
from app.db import utcnow
from app.errors import Conflict, NotFound, Unprocessable
from app.events import publish
from app.offers import ids
from app.offers.events import (
    OfferAccepted,
    OfferAssigned,
    OfferCreated,
    OfferDeclined,
    OfferIssued,
    OfferRevised,
)
from app.offers.models import Offer, OfferLine, OfferPdf, OfferStatus
from app.offers.pricing import compute_totals
from app.offers.schemas import CustomerIn, LineIn, OfferCreate, OfferUpdate
from app.repeats import is_repeat
from app.versions import Expected, next_stamp, require_version

# The customer snapshot an offer carries: copied on revise and duplicate.
SNAPSHOT_FIELDS = (
    "customer_id",
    "customer_company",
    "customer_contact_name",
    "customer_email",
    "customer_phone",
    "customer_reference",
    "customer_address_lines",
    "customer_postcode",
    "customer_city",
    "customer_country",
    "customer_vat_id",
    "language",
)

# A clash on the tracking ID means another process took our millisecond; a handful of retries
# on later milliseconds always suffices unless the database itself is failing.
MAX_ID_ATTEMPTS = 20
# On PostgreSQL the losing insert waits for the winner's commit, so both processes resume at the
# same instant and would keep picking the same next millisecond. A random jump ahead, wider after
# every clash, breaks that lockstep; an ID a few milliseconds in the future harms nobody.
ID_RETRY_SPREAD_MS = 16
ID_RETRY_MAX_SPREAD_MS = 1024
# Accept and decline come from the customer's tracking page, opened with the full ULID.
CUSTOMER = "customer"
REVISABLE = frozenset({OfferStatus.ISSUED, OfferStatus.EXPIRED, OfferStatus.DECLINED})


class OfferNotFound(NotFound):
    def __init__(self, offer_id: str) -> None:
        super().__init__(f"No offer with id {offer_id!r}.")


class InvalidTransition(Conflict):
    pass


@dataclass(frozen=True)
class OfferFilter:
    status: OfferStatus | None = None
    customer: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


def today(settings: Settings) -> date:
    """Today's date in the company's time zone: validity ends at local midnight."""
    return utcnow().astimezone(settings.zone).date()


def create_offer(
    session: Session,
    data: OfferCreate,
    *,
    actor: str,
    settings: Settings,
    owner_id: int | None = None,
) -> Offer:
    """Create a draft offer with a fresh ULID whose tracking ID no other offer has."""
    current = today(settings)
    valid_until = data.valid_until or current + timedelta(days=settings.default_validity_days)
    if valid_until < current:
        raise Unprocessable("valid_until lies in the past.", loc=("body", "valid_until"))
    offer = Offer(
        id="",
        tracking_id="",
        currency=data.currency or settings.default_currency,
        language=data.language or settings.default_language,
        valid_until=valid_until,
        notes=data.notes,
        terms=data.terms,
        customer_company="",
        owner_id=owner_id,
    )
    _apply_customer(session, offer, data.customer, data.customer_id, data.customer_reference)
    if data.language:  # a language asked for wins over the customer record's, as on update
        offer.language = data.language
    offer.lines = _build_lines(data.lines)
    offer.campaign_id, offer.placement_id = data.campaign_id, data.placement_id
    offer.creative_id = data.creative_id
    _publish_assignment(session, offer)
    _insert_with_unique_tracking_id(session, offer)
    _audit(
        session,
        offer,
        actor,
        "create",
        f"Created draft offer for {offer.customer_company}",
        {
            "customer": data.customer.model_dump() if data.customer else None,
            "customer_id": offer.customer_id,
            "lines": len(offer.lines),
        },
    )
    publish(session, OfferCreated(offer_id=offer.id, actor=actor))
    session.commit()
    return offer


def _publish_assignment(session: Session, offer: Offer) -> None:
    """Let the package that owns campaigns refuse ids that do not exist or belong together."""
    publish(
        session,
        OfferAssigned(
            offer_id=offer.id,
            campaign_id=offer.campaign_id,
            placement_id=offer.placement_id,
            creative_id=offer.creative_id,
        ),
    )


def _audit(
    session: Session,
    offer: Offer,
    actor: str,
    action: str,
    summary: str,
    changes: dict[str, object] | None = None,
) -> None:
    audit.record(
        session,
        actor=actor,
        action=f"offer.{action}",
        entity_type="offer",
        entity_id=offer.id,
        offer_id=offer.id,
        summary=summary,
        changes=changes,
    )


def _insert_with_unique_tracking_id(session: Session, offer: Offer) -> None:
    _store_gross(offer)
    not_before = 0
    for attempt in range(MAX_ID_ATTEMPTS):
        offer.id = ids.new_offer_ulid(not_before)
        offer.tracking_id = ids.tracking_id_of(offer.id)
        try:
            with session.begin_nested():
                session.add(offer)
        except IntegrityError as exc:
            if "supersedes_id" in str(exc.orig):
                raise InvalidTransition(
                    f"Offer {offer.supersedes_id} was revised already."
                ) from exc
            spread = min(ID_RETRY_SPREAD_MS << attempt, ID_RETRY_MAX_SPREAD_MS)
            not_before = ids.ulid_millis(offer.id) + 1 + secrets.randbelow(spread)
            continue
        return
    raise Conflict("Could not allocate a unique tracking ID; try again.")


def _apply_customer(
    session: Session,
    offer: Offer,
    customer: CustomerIn | None,
    customer_id: int | None,
    reference: str | None,
) -> None:
    """Take the customer's snapshot: from the record ``customer_id`` or as typed."""
    if customer_id is not None:
        _apply_customer_record(session, offer, customer_id)
    elif customer is not None:
        offer.customer_id = None
        offer.customer_company = customer.company
        offer.customer_contact_name = customer.contact_name
        offer.customer_email = customer.email
        offer.customer_phone = customer.phone
        offer.customer_reference = customer.reference
        offer.customer_address_lines = customer.address_lines
        offer.customer_postcode = customer.postcode
        offer.customer_city = customer.city
        offer.customer_country = customer.country
        offer.customer_vat_id = customer.vat_id
    if reference is not None:
        offer.customer_reference = reference


def _apply_customer_record(session: Session, offer: Offer, customer_id: int) -> None:
    try:
        record = customers_service.get_customer(session, customer_id)
    except customers_service.CustomerNotFound as exc:
        raise Unprocessable(exc.detail, loc=("body", "customer_id")) from exc
    offer.customer_id = record.id
    offer.customer_company = record.company
    offer.customer_contact_name = record.contact_name
    offer.customer_email = record.email
    offer.customer_phone = record.phone
    offer.customer_address_lines = record.address_lines
    offer.customer_postcode = record.postcode
    offer.customer_city = record.city
    offer.customer_country = record.country
    offer.customer_vat_id = record.vat_id
    offer.language = record.language


def _build_lines(lines: Sequence[LineIn]) -> list[OfferLine]:
    return [
        OfferLine(position=position, **line.model_dump())
        for position, line in enumerate(lines, start=1)
    ]


def get_offer(session: Session, offer_id: str, *, for_update: bool = False) -> Offer:
    """Load an offer; ``for_update`` locks its row so two transitions cannot interleave, and
    reads it afresh: a copy this session loaded before the lock may be another's old version."""
    offer = None
    if len(offer_id) == ids.ULID_LENGTH:
        offer = session.get(
            Offer, offer_id.upper(), with_for_update=for_update, populate_existing=for_update
        )
    if offer is None:
        raise OfferNotFound(offer_id)
    return offer


def list_offers(
    session: Session, filters: OfferFilter, *, settings: Settings, limit: int, offset: int
) -> tuple[Sequence[Offer], int]:
    """A page of offers, newest first, and how many match in all."""
    query = select(Offer)
    query = _filter_status(query, filters.status, today(settings))
    if filters.customer:
        pattern = f"%{filters.customer.lower()}%"
        query = query.where(
            or_(
                func.lower(Offer.customer_company).like(pattern),
                func.lower(Offer.customer_contact_name).like(pattern),
                func.lower(Offer.customer_reference).like(pattern),
                func.lower(Offer.customer_email).like(pattern),
            )
        )
    if filters.created_from:
        query = query.where(Offer.created_at >= filters.created_from)
    if filters.created_to:
        query = query.where(Offer.created_at < filters.created_to)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    page = session.exec(
        query.order_by(col(Offer.created_at).desc(), col(Offer.id).desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return page, total


def _filter_status(
    query: SelectOfScalar[Offer], status: OfferStatus | None, current: date
) -> SelectOfScalar[Offer]:
    return query if status is None else query.where(status_condition(status, current))


def status_condition(status: OfferStatus, current: date) -> ColumnElement[bool]:
    """Offers whose status, as customers see it on ``current``, is ``status``."""
    if status == OfferStatus.EXPIRED:
        return and_(col(Offer.status) == OfferStatus.ISSUED, col(Offer.valid_until) < current)
    if status == OfferStatus.ISSUED:
        return and_(col(Offer.status) == OfferStatus.ISSUED, col(Offer.valid_until) >= current)
    return col(Offer.status) == status


def superseded_by(session: Session, offer_ids: Sequence[str]) -> dict[str, str]:
    """Map each of ``offer_ids`` that has a revision to the revision's id."""
    if not offer_ids:
        return {}
    rows = session.exec(
        select(Offer.supersedes_id, Offer.id).where(col(Offer.supersedes_id).in_(offer_ids))
    ).all()
    return {old: new for old, new in rows if old is not None}


# Revisions form a chain (each new draft supersedes one offer), so a walk this long means
# the data loops; stop rather than spin.
MAX_REVISION_CHAIN = 100


def current_revision(session: Session, offer_id: str) -> str | None:
    """The latest revision after ``offer_id`` that a customer can open (not a draft)."""
    latest: str | None = None
    current = offer_id
    for _ in range(MAX_REVISION_CHAIN):
        revision = session.exec(
            select(Offer.id, Offer.status).where(col(Offer.supersedes_id) == current)
        ).first()
        if revision is None:
            break
        current, status = revision
        if status != OfferStatus.DRAFT:
            latest = current
    return latest


def update_offer(
    session: Session,
    offer_id: str,
    data: OfferUpdate,
    *,
    actor: str,
    settings: Settings,
    expected: Expected | None = None,
    owner: "Owner | None" = None,
) -> Offer:
    """Change a draft, and with ``owner`` who owns it, in one commit, unless it changed since
    ``expected`` (the version its editor read); an issued offer is a document the customer
    holds and never changes."""
    offer = get_offer(session, offer_id, for_update=True)
    require_version(session, expected, offer.updated_at, noun="draft", entity=("offer", offer.id))
    require_status(offer, {OfferStatus.DRAFT}, "update", settings)
    if data.valid_until is not None and data.valid_until < today(settings):
        raise Unprocessable("valid_until lies in the past.", loc=("body", "valid_until"))
    _apply_customer(session, offer, data.customer, data.customer_id, data.customer_reference)
    gross_before = _gross(offer)
    if data.lines is not None:
        offer.lines = _build_lines(data.lines)
    for field in ("currency", "language", "valid_until", "notes", "terms"):
        value = getattr(data, field)
        if value is not None:
            setattr(offer, field, value)
    _update_assignment(session, offer, data)
    _store_gross(offer)
    offer.updated_at = next_stamp(offer.updated_at)
    session.add(offer)
    changed = data.model_dump(mode="json", exclude_unset=True)
    if "lines" in changed:
        changed["lines"] = len(offer.lines)
    summary = "Changed " + ", ".join(changed)
    gross_after = _gross(offer)
    if gross_after != gross_before:
        # "Who changed the price, and when" is read off this entry: the amounts, not a count.
        changed["gross_total"] = [str(gross_before), str(gross_after)]
        summary += f" (gross total {gross_before} → {gross_after} {offer.currency})"
    _audit(session, offer, actor, "update", summary, changed)
    if owner is not None and owner.id != offer.owner_id:
        _hand_over(session, offer, owner.id, actor)
    session.commit()
    return offer


def _gross(offer: Offer) -> Decimal:
    return compute_totals(offer.lines, offer.currency).gross


def _store_gross(offer: Offer) -> None:
    """Every new offer (created, revised, duplicated) and every saved draft goes through
    here: the stored total the lists filter by is the one its lines price to."""
    offer.gross_amount = _gross(offer)


@dataclass(frozen=True)
class Owner:
    """The staff user an offer is handed to (``id`` None: to nobody): alerts go to its owner."""

    id: int | None


def _update_assignment(session: Session, offer: Offer, data: OfferUpdate) -> None:
    fields = ("campaign_id", "placement_id", "creative_id")
    if not data.model_fields_set & set(fields):
        return
    for field in data.model_fields_set & set(fields):
        setattr(offer, field, getattr(data, field))
    # The check reads campaigns: flushing the changed offer first would turn an unknown id into
    # a foreign-key error (a 500) instead of the 422 naming the field.
    with session.no_autoflush:
        _publish_assignment(session, offer)


def issue_offer(
    session: Session,
    offer_id: str,
    *,
    actor: str,
    settings: Settings,
    expected: Expected | None = None,
) -> Offer:
    """Freeze a draft and send it, unless it changed since ``expected`` (the version its issuer
    read): from now on its PDF and its QR code are final."""
    offer = get_offer(session, offer_id, for_update=True)
    require_version(session, expected, offer.updated_at, noun="draft", entity=("offer", offer.id))
    require_status(offer, {OfferStatus.DRAFT}, "issue", settings)
    if not offer.lines:
        raise InvalidTransition("An offer needs at least one line before it can be issued.")
    if offer.valid_until < today(settings):
        raise InvalidTransition("valid_until lies in the past; update the draft first.")
    offer.status = OfferStatus.ISSUED
    offer.issued_at = offer.updated_at = next_stamp(offer.updated_at)
    session.add(offer)
    _audit(session, offer, actor, "issue", "Issued the offer")
    publish(session, OfferIssued(offer_id=offer.id, actor=actor))
    session.commit()
    return offer


def revise_offer(
    session: Session,
    offer_id: str,
    *,
    actor: str,
    settings: Settings,
    expected: Expected | None = None,
) -> Offer:
    """Start a new draft (new ULID) from an issued offer, unless it changed since ``expected``
    (the version its reviser read); the old one becomes superseded."""
    offer = get_offer(session, offer_id, for_update=True)
    require_version(session, expected, offer.updated_at, noun="offer", entity=("offer", offer.id))
    require_status(offer, REVISABLE, "revise", settings)
    revision = _copy_offer(offer, max(offer.valid_until, today(settings)))
    revision.supersedes_id = offer.id
    revision.owner_id = offer.owner_id
    offer.status = OfferStatus.SUPERSEDED
    offer.superseded_at = offer.updated_at = next_stamp(offer.updated_at)
    session.add(offer)
    _insert_with_unique_tracking_id(session, revision)
    _audit(
        session,
        offer,
        actor,
        "revise",
        f"Revised: superseded by {revision.id}",
        {"revision": revision.id},
    )
    _audit(
        session,
        revision,
        actor,
        "create",
        f"Created as the revision of {offer.id}",
        {"supersedes": offer.id, "lines": len(revision.lines)},
    )
    publish(session, OfferRevised(offer_id=offer.id, new_offer_id=revision.id, actor=actor))
    session.commit()
    return revision


def duplicate_offer(
    session: Session, offer_id: str, *, actor: str, settings: Settings, owner_id: int | None
) -> Offer:
    """A new draft with the customer, lines and texts of any offer; the original stays as is."""
    offer = get_offer(session, offer_id)
    valid_until = today(settings) + timedelta(days=settings.default_validity_days)
    copy = _copy_offer(offer, valid_until)
    copy.owner_id = owner_id
    _insert_with_unique_tracking_id(session, copy)
    _audit(
        session,
        copy,
        actor,
        "create",
        f"Created as a copy of {offer.id}",
        {"copy_of": offer.id, "lines": len(copy.lines)},
    )
    publish(session, OfferCreated(offer_id=copy.id, actor=actor))
    session.commit()
    return copy


def _hand_over(session: Session, offer: Offer, owner_id: int | None, actor: str) -> None:
    before = offer.owner_id
    offer.owner_id = owner_id
    session.add(offer)
    try:
        session.flush()
    except IntegrityError as exc:  # the whole save goes, the draft's changes with it
        session.rollback()
        raise Unprocessable(f"No staff user with id {owner_id}.", loc=("owner_id",)) from exc
    _audit_owner(session, offer, actor, before, owner_id)


def _owner_name(session: Session, user_id: int | None) -> str:
    user = session.get(StaffUser, user_id) if user_id is not None else None
    return user.email if user is not None else "nobody"


def _audit_owner(
    session: Session, offer: Offer, actor: str, before: int | None, after: int | None
) -> None:
    # The log names people, not row ids: "who had this offer before" is read by a person.
    old, new = _owner_name(session, before), _owner_name(session, after)
    summary, changes = _owner_change((before, old), (after, new))
    _audit(session, offer, actor, "assign", summary, changes)


def _owner_change(
    before: tuple[int | None, str], after: tuple[int | None, str]
) -> tuple[str, dict[str, object]]:
    """The audit log's summary and changes of an offer given from one person to another."""
    summary = f"Owner changed from {before[1]} to {after[1]}"
    return summary, {"owner_id": [before[0], after[0]], "owner": [before[1], after[1]]}


def hand_over_owned(session: Session, from_id: int, to_id: int, *, actor: str) -> list[str]:
    """Give every offer ``from_id`` owns, whatever its status, to ``to_id``: the customer's
    contact, the staff alerts and the customer's questions follow the owner. Each offer's
    history records it. The offer's version stays: who owns it is not the document, and a
    page opened on it before still issues or activates what it showed. The caller commits,
    and drops the offers' tracking pages from the cache (it does not see an UPDATE)."""
    # Only the ids, and one UPDATE: loading each offer (and its lines) made a leaver's 5,000
    # offers a minute's work.
    lock_owned(session, from_id)
    moved = session.execute(
        update(Offer)
        .where(col(Offer.owner_id) == from_id)
        .values(owner_id=to_id)
        .returning(col(Offer.id))
        .execution_options(synchronize_session="fetch")
    )
    offer_ids: list[str] = sorted(moved.scalars().all())
    old, new = _owner_name(session, from_id), _owner_name(session, to_id)
    summary, changes = _owner_change((from_id, old), (to_id, new))
    entries = [audit.OfferChange(offer_id, summary, changes) for offer_id in offer_ids]
    audit.record_offers(session, actor=actor, action="offer.assign", entries=entries)
    return offer_ids


def owned_by(user_id: int) -> SelectOfScalar[str]:
    """The ids of the offers the user owns, to select by in one statement however many."""
    return select(col(Offer.id)).where(col(Offer.owner_id) == user_id)


def lock_owned(session: Session, user_id: int) -> None:
    """Lock the offers the user owns (in id order) until the commit: an offer given to
    someone else by a save that commits meanwhile is read again, found no longer theirs and
    left alone. The caller commits."""
    session.exec(owned_by(user_id).order_by(col(Offer.id)).with_for_update(of=Offer)).all()


def owned_by_status(session: Session, user_id: int, today: date) -> dict[str, int]:
    """How many offers the user owns, by the status a person sees (expired included)."""
    expired = and_(col(Offer.status) == OfferStatus.ISSUED, col(Offer.valid_until) < today)
    rows = session.exec(
        select(col(Offer.status), expired, func.count())
        .where(col(Offer.owner_id) == user_id)
        .group_by(col(Offer.status), expired)
    ).all()
    counts: dict[str, int] = {}
    for status, lapsed, count in rows:
        key = str(OfferStatus.EXPIRED if lapsed else OfferStatus(status))
        counts[key] = counts.get(key, 0) + count
    return counts


def _copy_offer(offer: Offer, valid_until: date) -> Offer:
    return Offer(
        id="",
        tracking_id="",
        currency=offer.currency,
        valid_until=valid_until,
        notes=offer.notes,
        terms=offer.terms,
        campaign_id=offer.campaign_id,
        placement_id=offer.placement_id,
        creative_id=offer.creative_id,
        lines=[_copy_line(line) for line in offer.lines],
        **{field: getattr(offer, field) for field in SNAPSHOT_FIELDS},
    )


def _copy_line(line: OfferLine) -> OfferLine:
    return OfferLine(**line.model_dump(exclude={"id", "offer_id"}))


def require_status(
    offer: Offer,
    allowed: frozenset[OfferStatus] | set[OfferStatus],
    action: str,
    settings: Settings,
) -> None:
    current = offer.effective_status(today(settings))
    if current not in allowed:
        allowed_text = ", ".join(sorted(allowed))
        raise InvalidTransition(
            f"Cannot {action} offer {offer.id}: it is {current}; only an offer that is "
            f"{allowed_text} can be."
        )


def _repeated_answer(
    session: Session,
    offer: Offer,
    status: OfferStatus,
    answered_at: datetime | None,
    sent: Mapping[str, object],
) -> bool:
    """Whether the customer's answer repeats the one the (locked) offer has: a double tap on
    "Accept", or the form sent again on a slow network. It ends the transaction, which has
    nothing to write. A different answer (declining after accepting, another PO number) is no
    repeat: the status check refuses it."""
    if offer.status != status or not is_repeat(answered_at, utcnow(), offer, sent):
        return False
    session.rollback()
    return True


def accept_offer(
    session: Session, offer_id: str, *, signer_name: str, po_number: str, settings: Settings
) -> Offer:
    """The customer accepts an issued offer, naming who signs and optionally a PO number. The
    same acceptance sent again (app.repeats) is the first one: nothing is saved or told again."""
    offer = get_offer(session, offer_id, for_update=True)
    sent = {"accepted_by_name": signer_name, "accepted_po_number": po_number}
    if _repeated_answer(session, offer, OfferStatus.ACCEPTED, offer.accepted_at, sent):
        return offer
    require_status(offer, {OfferStatus.ISSUED}, "accept", settings)
    offer.status = OfferStatus.ACCEPTED
    offer.accepted_by_name = signer_name
    offer.accepted_po_number = po_number
    offer.accepted_at = offer.updated_at = next_stamp(offer.updated_at)
    session.add(offer)
    # The stored PDF goes: the next download prints the acceptance (signer, PO, time).
    session.execute(delete(OfferPdf).where(col(OfferPdf.offer_id) == offer.id))
    _audit(
        session,
        offer,
        CUSTOMER,
        "accept",
        f"Accepted by {signer_name}",
        {"signer_name": signer_name, "po_number": po_number},
    )
    publish(session, OfferAccepted(offer_id=offer.id, signer_name=signer_name, po_number=po_number))
    session.commit()
    return offer


def decline_offer(session: Session, offer_id: str, *, reason: str, settings: Settings) -> Offer:
    """The customer declines an issued offer and says why; the same answer sent again
    (app.repeats) is the first one, as for accepting."""
    offer = get_offer(session, offer_id, for_update=True)
    sent = {"declined_reason": reason}
    if _repeated_answer(session, offer, OfferStatus.DECLINED, offer.declined_at, sent):
        return offer
    require_status(offer, {OfferStatus.ISSUED}, "decline", settings)
    offer.status = OfferStatus.DECLINED
    offer.declined_reason = reason
    offer.declined_at = offer.updated_at = next_stamp(offer.updated_at)
    session.add(offer)
    _audit(session, offer, CUSTOMER, "decline", "Declined by the customer", {"reason": reason})
    publish(session, OfferDeclined(offer_id=offer.id, reason=reason))
    session.commit()
    return offer
