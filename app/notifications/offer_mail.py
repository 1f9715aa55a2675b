"""Send an issued offer to the customer: its PDF attached, the tracking link, a message staff
may edit. The mail goes into the outbox in the same transaction as the history entry that
records it, so the offer's history never claims a mail that was not queued (or the reverse).
"""

import secrets
from dataclasses import dataclass

from markupsafe import Markup, escape
from sqlmodel import Session

from app import audit
from app.config import Settings
from app.errors import Unprocessable
from app.notifications.mail import Attachment, queue_mail
from app.offers import service as offers_service
from app.offers.documents import Renderer, offer_pdf
from app.offers.ids import hyphenate_tracking_id
from app.offers.models import Offer, OfferStatus

SENDABLE = frozenset(
    {OfferStatus.ISSUED, OfferStatus.ACCEPTED, OfferStatus.ORDERED, OfferStatus.EXPIRED}
)
MAX_MESSAGE = 10_000


@dataclass(frozen=True)
class OfferMail:
    to: str
    subject: str
    message: str


def tracking_url(offer: Offer, settings: Settings) -> str:
    return f"{settings.public_base_url}/{offer.id}"


def draft_mail(offer: Offer, settings: Settings) -> OfferMail:
    """What the send form starts with; staff change any of it."""
    greeting = f"Dear {offer.customer_contact_name}," if offer.customer_contact_name else "Hello,"
    message = (
        f"{greeting}\n\nplease find attached our offer {hyphenate_tracking_id(offer.tracking_id)}"
        f" for {offer.customer_company}. We look forward to hearing from you.\n\n"
        f"Kind regards,\n{settings.company_name}"
    )
    subject = f"Offer {hyphenate_tracking_id(offer.tracking_id)} from {settings.company_name}"
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
    """Queue the offer's mail to the customer and record it in the offer's history."""
    offer = offers_service.get_offer(session, offer_id)
    offers_service.require_status(offer, SENDABLE, "send", settings)
    if not mail.message.strip():
        raise Unprocessable("Write a message to go with the offer.", loc=("body", "message"))
    if len(mail.message) > MAX_MESSAGE or not mail.subject.strip():
        raise Unprocessable(
            "Give the mail a subject (and a message of sensible length).", loc=("body", "subject")
        )
    document = offer_pdf(session, offer.id, renderer=renderer, settings=settings)
    url = tracking_url(offer, settings)
    message_id = queue_mail(
        session,
        to=mail.to,
        subject=mail.subject,
        text=f"{mail.message.strip()}\n\nYour offer online, always up to date: {url}\n",
        html=_html(mail.message, url),
        dedupe_key=f"offer-sent:{offer.id}:{secrets.token_hex(8)}",
        attachments=[Attachment(document.filename, document.content, "application/pdf")],
        category="offer",
        settings=settings,
    )
    audit.record(
        session,
        actor=actor,
        action="offer.send",
        entity_type="offer",
        entity_id=offer.id,
        offer_id=offer.id,
        summary=f"Sent to {mail.to} with the PDF attached",
        changes={"to": mail.to, "subject": mail.subject, "message_id": message_id},
    )
    session.commit()
    return message_id


def _html(message: str, url: str) -> str:
    paragraphs = [p.strip() for p in message.strip().split("\n\n") if p.strip()]
    body = "".join(
        Markup("<p>{}</p>").format(Markup("<br>").join(escape(line) for line in p.splitlines()))
        for p in paragraphs
    )
    link = Markup('<p>Your offer online, always up to date: <a href="{0}">{0}</a></p>').format(url)
    return str(Markup("<!doctype html><html><body>") + body + link + Markup("</body></html>"))
