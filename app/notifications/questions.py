"""A customer asks a question about an offer (or, on a declined or expired one, for a new
quotation): the owner gets it by mail with Reply-To the customer's address, and it is written
to the offer's history (the audit log the staff site shows on the offer's page)."""

from enum import StrEnum

from sqlmodel import Session
from ulid import ULID

from app import audit
from app.config import Settings
from app.db import utcnow
from app.errors import Unprocessable
from app.notifications import alerts
from app.notifications.alerts import AlertKind
from app.notifications.mail import normalize_address
from app.offers.models import Offer, OfferStatus
from app.tracking import service as tracking_service
from app.tracking.codes import TrackingCode

MAX_QUESTION = 2000
CUSTOMER = "customer"


class Topic(StrEnum):
    QUESTION = "question"
    NEW_QUOTATION = "new_quotation"


class QuestionMissing(Unprocessable):
    def __init__(self) -> None:
        super().__init__("Please write your question.", loc=("message",))


class QuestionTooLong(Unprocessable):
    def __init__(self) -> None:
        super().__init__(f"Please keep it under {MAX_QUESTION} characters.", loc=("message",))


def customer_offer(session: Session, code: TrackingCode) -> Offer:
    """The offer behind a full ULID (the customer's key); a tracking ID shows no contact."""
    offer = tracking_service.find_by_code(session, code)
    if code.form != "full" or offer.status == OfferStatus.DRAFT:
        raise tracking_service.CodeNotFound()
    return offer


def ask_question(
    session: Session,
    code: TrackingCode,
    *,
    email: str,
    message: str,
    settings: Settings,
    topic: Topic = Topic.QUESTION,
) -> Offer:
    """Send the customer's message to the offer's owner and record it in the offer's history.

    ``topic`` NEW_QUOTATION is the same path for "Ask for a new quotation" on a declined or
    expired offer; only the wording of the mail and the history entry differ."""
    address = normalize_address(email, loc=("email",))
    text = message.strip()
    if not text:
        raise QuestionMissing()
    if len(text) > MAX_QUESTION:
        raise QuestionTooLong()
    offer = customer_offer(session, code)
    asked_at = utcnow()
    audit.record(
        session,
        actor=CUSTOMER,
        action=f"offer.{topic}",
        entity_type="offer",
        entity_id=offer.id,
        offer_id=offer.id,
        summary=f"{_label(topic)} from {address}: {text}",
        changes={"email": address, "message": text},
    )
    alerts.raise_alert(
        session,
        offer,
        AlertKind.QUESTION,
        f"question:{offer.id}:{ULID()}",
        {"customer_email": address, "question": text, "topic": topic},
        settings=settings,
        reply_to=address,
        webhook={
            "offer_id": offer.id,
            "tracking_id": offer.tracking_id,
            "topic": topic,
            "asked_at": asked_at.isoformat(),
        },
    )
    session.commit()
    return offer


def _label(topic: Topic) -> str:
    return "Request for a new quotation" if topic == Topic.NEW_QUOTATION else "Question"
