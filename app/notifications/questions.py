"""A customer asks a question about an offer (or, on a declined or expired one, for a new
quotation): the owner gets it by mail with Reply-To the customer's address. The question, text
and address, is kept in ``customer_question``; the offer's history (the audit log, which never
forgets) records only that one was asked, by the question's id. Deleting the question removes
its personal data: the row, and the copy of its alert mail in the outbox."""

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete
from sqlmodel import Session, col, select
from ulid import ULID

from app import audit
from app.config import Settings
from app.db import utcnow
from app.errors import NotFound, Unprocessable
from app.notifications import alerts, delivery
from app.notifications.alerts import AlertKind
from app.notifications.mail import InvalidAddress, normalize_address
from app.notifications.models import CustomerQuestion, MailOutbox
from app.offers.models import Offer, OfferStatus
from app.repeats import REPEAT_WINDOW
from app.tracking import service as tracking_service
from app.tracking.codes import TrackingCode

MAX_QUESTION = 2000
CUSTOMER = "customer"


class Topic(StrEnum):
    QUESTION = "question"
    NEW_QUOTATION = "new_quotation"


class QuestionInvalid(Unprocessable):
    """Each field of the form that is wrong, with its reason: the form says them all at once,
    so that a customer does not fix the address only to be told of the empty message next."""

    def __init__(self, problems: dict[str, str]) -> None:
        field, detail = next(iter(problems.items()))
        super().__init__(detail, loc=(field,))
        self.problems = problems


def _checked(email: str, message: str) -> tuple[str, str]:
    """The normalized address and the message, or QuestionInvalid naming every bad field."""
    problems: dict[str, str] = {}
    address = ""
    try:
        address = normalize_address(email, loc=("email",))
    except InvalidAddress as exc:
        problems["email"] = exc.detail
    text = message.strip()
    if not text:
        problems["message"] = "Please write your question."
    elif len(text) > MAX_QUESTION:
        problems["message"] = f"Please keep it under {MAX_QUESTION} characters."
    if problems:
        raise QuestionInvalid(problems)
    return address, text


def customer_offer(session: Session, code: TrackingCode) -> Offer:
    """The offer behind a full ULID (the customer's key); a tracking ID shows no contact."""
    offer = tracking_service.find_by_code(session, code)
    if code.form != "full" or offer.status == OfferStatus.DRAFT:
        raise tracking_service.CodeNotFound()
    return offer


def _asked_just_now(
    session: Session, offer: Offer, topic: Topic, email: str, text: str, now: datetime
) -> str | None:
    """The question's id if the same message came from the same address within the repeat
    window. The offer is locked first, so that two copies sent at once see each other."""
    session.get(Offer, offer.id, with_for_update=True, populate_existing=True)
    query = select(CustomerQuestion.id).where(
        CustomerQuestion.offer_id == offer.id,
        CustomerQuestion.topic == topic,
        CustomerQuestion.email == email,
        CustomerQuestion.message == text,
        col(CustomerQuestion.asked_at) >= now - REPEAT_WINDOW,
    )
    return session.exec(query.limit(1)).first()


def ask_question(
    session: Session,
    code: TrackingCode,
    *,
    email: str,
    message: str,
    settings: Settings,
    topic: Topic = Topic.QUESTION,
) -> str:
    """Send the customer's message to the offer's owner and record it in the offer's history;
    the question's id (the first one's, for a repeat).

    ``topic`` NEW_QUOTATION is the same path for "Ask for a new quotation" on a declined or
    expired offer; only the wording of the mail and the history entry differ."""
    address, text = _checked(email, message)
    offer = customer_offer(session, code)
    asked_at = utcnow()
    earlier = _asked_just_now(session, offer, topic, address, text, asked_at)
    if earlier is not None:
        return earlier  # a double tap, or the form sent again after a slow answer: told once
    question = CustomerQuestion(
        id=str(ULID()),
        offer_id=offer.id,
        topic=topic,
        email=address,
        message=text,
        asked_at=asked_at,
    )
    session.add(question)
    audit.record(
        session,
        actor=CUSTOMER,
        action=f"offer.{topic}",
        entity_type="offer",
        entity_id=offer.id,
        offer_id=offer.id,
        summary=f"{_label(topic)} from the customer (question {question.id})",
        changes={"question_id": question.id, "topic": topic},
    )
    alerts.raise_alert(
        session,
        offer,
        AlertKind.QUESTION,
        _alert_key(offer.id, question.id),
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
    return question.id


class QuestionNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("This question does not exist (any more).")


def offer_questions(session: Session, offer_id: str) -> Sequence[CustomerQuestion]:
    """The questions about an offer still kept, newest first."""
    query = select(CustomerQuestion).where(col(CustomerQuestion.offer_id) == offer_id)
    return session.exec(query.order_by(col(CustomerQuestion.id).desc())).all()


def delete_question(
    session: Session, offer_id: str, question_id: str, *, actor: str, settings: Settings
) -> CustomerQuestion:
    """Delete a question and its alert mail from the outbox (sent or not, the copy held here
    has the text and address too), and the mail's .eml file where mails go to files: the
    deletion path of the question's personal data."""
    question = session.get(CustomerQuestion, question_id)
    if question is None or question.offer_id != offer_id:
        raise QuestionNotFound()
    mails = _alert_mails(session, question)
    session.execute(delete(MailOutbox).where(col(MailOutbox.id).in_(mails)))
    audit.record(
        session,
        actor=actor,
        action="offer.question_deleted",
        entity_type="offer",
        entity_id=question.offer_id,
        offer_id=question.offer_id,
        summary=f"Deleted the customer's question {question.id} and its personal data",
        changes={"question_id": question.id},
    )
    session.delete(question)
    session.commit()
    # After the commit: a rollback must not have lost the copy of a mail still kept.
    delivery.remove_mail_files(delivery.files_of_mails(settings, mails))
    return question


def deletion_token(question_id: str, settings: Settings) -> str:
    """What lets the asker delete their own question: the button on the page after asking."""
    return _deletion_serializer(settings).dumps(question_id)


def delete_own_question(session: Session, token: str, *, settings: Settings) -> str | None:
    """The asker deletes their question and address (the deletion path of their own data):
    the offer it was about, or None when it is gone already (deleted twice: the same answer)."""
    try:
        question_id = _deletion_serializer(settings).loads(token)
    except BadSignature as exc:
        raise QuestionNotFound() from exc
    question = session.get(CustomerQuestion, str(question_id))
    if question is None:
        return None
    offer_id = question.offer_id
    delete_question(session, offer_id, question.id, actor=CUSTOMER, settings=settings)
    return offer_id


def _deletion_serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.resolved_secret_key(), salt="customer-question.delete")


def _alert_mails(session: Session, question: CustomerQuestion) -> list[int]:
    """The outbox copies of the question's alert: by its key, and, for a question asked
    before questions had their own table (its alert's key named another id), any question
    alert about the offer that carries the asker's address."""
    key = f"alert:{_alert_key(question.offer_id, question.id)}"
    about_offer = f"alert:{_alert_key(question.offer_id, '')}%"
    rows = session.exec(
        select(MailOutbox.id, MailOutbox.dedupe_key, MailOutbox.message).where(
            col(MailOutbox.dedupe_key).like(about_offer)
        )
    ).all()
    address = question.email.encode()
    return [
        mail_id
        for mail_id, dedupe_key, message in rows
        if mail_id is not None and (dedupe_key == key or address in message)
    ]


def _alert_key(offer_id: str, question_id: str) -> str:
    return f"question:{offer_id}:{question_id}"


def _label(topic: Topic) -> str:
    return "Request for a new quotation" if topic == Topic.NEW_QUOTATION else "Question"
