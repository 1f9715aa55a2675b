"""Send an issued offer to the customer: its PDF attached, the tracking link, a message staff
may edit. The mail goes into the outbox in the same transaction as the history entry that
records it, so the offer's history never claims a mail that was not queued (or the reverse).
"""

import hashlib
import secrets
from dataclasses import dataclass

from sqlmodel import Session, col, select

from app import audit, i18n
from app.audit import AuditLogEntry
from app.config import Settings
from app.db import utcnow
from app.errors import Unprocessable
from app.notifications.mail import Attachment, queue_rendered
from app.notifications.templates import RenderedMail, render_mail
from app.offers import service as offers_service
from app.offers.documents import Renderer, offer_pdf
from app.offers.ids import hyphenate_tracking_id
from app.offers.models import Offer, OfferStatus
from app.repeats import REPEAT_WINDOW
from app.tracking.scans import mail_link

SENDABLE = frozenset(
    {OfferStatus.ISSUED, OfferStatus.ACCEPTED, OfferStatus.ORDERED, OfferStatus.EXPIRED}
)
MAX_MESSAGE = 10_000
# The history's action for a sending: the follow-ups count "not opened since" from it.
SENT = "offer.send"


@dataclass(frozen=True)
class OfferMail:
    to: str
    subject: str
    message: str


def tracking_url(offer: Offer, settings: Settings) -> str:
    return f"{settings.public_base_url}/{offer.id}"


def draft_mail(offer: Offer, settings: Settings) -> OfferMail:
    """What the send form starts with, in the offer's language; staff change any of it."""
    language = offer.language
    code = hyphenate_tracking_id(offer.tracking_id)
    name = offer.customer_contact_name
    if name:
        greeting = i18n.translate(language, "Dear %(name)s,") % {"name": name}
    else:
        greeting = i18n.translate(language, "Hello,")
    text = i18n.translate(
        language,
        "please find attached our offer %(code)s for %(company)s. "
        "We look forward to hearing from you.",
    ) % {"code": code, "company": offer.customer_company}
    regards = i18n.translate(language, "Kind regards,")
    subject = i18n.translate(language, "Offer %(code)s from %(company)s") % {
        "code": code,
        "company": settings.company_name,
    }
    message = f"{greeting}\n\n{text}\n\n{regards}\n{settings.company_name}"
    return OfferMail(offer.customer_email, subject, message)


def send_offer(
    session: Session,
    offer_id: str,
    mail: OfferMail,
    *,
    renderer: Renderer,
    actor: str,
    settings: Settings,
) -> str:
    """Queue the offer's mail to the customer and record it in the offer's history; the same
    mail sent again within a minute is the first one (its message id), not queued again."""
    offer = offers_service.get_offer(session, offer_id, for_update=True)
    offers_service.require_status(offer, SENDABLE, "send", settings)
    if not mail.message.strip():
        raise Unprocessable("Write a message to go with the offer.", loc=("body", "message"))
    if len(mail.message) > MAX_MESSAGE or not mail.subject.strip():
        raise Unprocessable(
            "Give the mail a subject (and a message of sensible length).", loc=("body", "subject")
        )
    digest = _digest(mail)
    earlier = _repeated_send(session, offer.id, digest, actor)
    if earlier is not None:
        return earlier
    document = offer_pdf(session, offer.id, renderer=renderer, settings=settings)
    message_id = queue_rendered(
        session,
        _rendered(offer, mail, settings),
        to=mail.to,
        dedupe_key=f"offer-sent:{offer.id}:{secrets.token_hex(8)}",
        attachments=[Attachment(document.filename, document.content, "application/pdf")],
        category="offer",
        settings=settings,
    )
    audit.record(
        session,
        actor=actor,
        action=SENT,
        entity_type="offer",
        entity_id=offer.id,
        offer_id=offer.id,
        summary=f"Sent to {mail.to} with the PDF attached",
        changes={
            "to": mail.to,
            "subject": mail.subject,
            "message_id": message_id,
            "digest": digest,
        },
    )
    session.commit()
    return message_id


def _digest(mail: OfferMail) -> str:
    """Which mail this is, without keeping the message a second time."""
    return hashlib.sha256(f"{mail.to}\0{mail.subject}\0{mail.message}".encode()).hexdigest()


def _repeated_send(session: Session, offer_id: str, digest: str, actor: str) -> str | None:
    """The message id of the offer's last mail if this one repeats it: a double tap, or the
    form sent again after a slow answer (the PDF takes a while). The offer is locked."""
    query = (
        select(AuditLogEntry)
        .where(
            AuditLogEntry.offer_id == offer_id,
            AuditLogEntry.action == SENT,
            AuditLogEntry.occurred_at >= utcnow() - REPEAT_WINDOW,
        )
        .order_by(col(AuditLogEntry.id).desc())
        .limit(1)
    )
    latest = session.exec(query).first()
    if latest is None or latest.actor != actor or not latest.changes:
        return None
    return str(latest.changes["message_id"]) if latest.changes.get("digest") == digest else None


def _rendered(offer: Offer, mail: OfferMail, settings: Settings) -> RenderedMail:
    """The staff's subject and message on the letterhead, in the offer's language (the
    link's line and the signature around the message are the template's)."""
    context = {
        "subject": mail.subject,
        "message": mail.message.strip(),
        "paragraphs": [p.strip().splitlines() for p in mail.message.split("\n\n") if p.strip()],
        "tracking_id": offer.tracking_id,
        "page_url": mail_link(tracking_url(offer, settings)),
    }
    return render_mail("offer_sent", context, settings=settings, lang=offer.language)
