"""Mail, queued: a service adds a mail to the outbox in its own transaction; the worker sends it.

No request ever waits for SMTP. ``queue_mail`` builds the whole message at once (multipart
text and HTML, attachments, a ``Message-ID`` derived from the caller's dedupe key) and adds it
as one ``mail_outbox`` row to the caller's session: the caller's commit writes the change and
its mail together, a rollback drops both, and queueing the same key twice adds one mail. The
worker (app.notifications.delivery) sends it at least once.
"""

import hashlib
import mimetypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Connection
from sqlmodel import Session

from app.config import Settings, get_settings
from app.db import insert_on_conflict, utcnow
from app.errors import Unprocessable
from app.notifications.models import MailOutbox
from app.notifications.templates import LOGO_CID, RenderedMail

MAX_SUBJECT = 300


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str = "application/octet-stream"


class InvalidAddress(Unprocessable):
    """An e-mail address that cannot receive mail; the message says what is wrong with it."""

    def __init__(self, detail: str, loc: Sequence[str | int] = ("body", "email")) -> None:
        super().__init__(detail, loc=tuple(loc))


def normalize_address(value: str, *, loc: Sequence[str | int] = ("body", "email")) -> str:
    """The address in its normalized form, or InvalidAddress with a reason a person can act on.

    email-validator rather than a regular expression: it knows RFC 5322's and 6531's syntax,
    internationalized domains and the special-use domains; no DNS lookup (that would make a
    form wait on the network, and a test depend on it).
    """
    try:
        return str(validate_email(value.strip(), check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc), loc) from exc


def sender(settings: Settings) -> tuple[str, str]:
    """The From header's display name and address: OFFERTRACK_MAIL_FROM, else the company's."""
    if settings.mail_from:
        name, address = parseaddr(settings.mail_from)
        return name, address
    return settings.company_name, settings.company_email


def message_id_for(dedupe_key: str, settings: Settings) -> str:
    """A Message-ID that is a function of the dedupe key: the same event gives the same id."""
    digest = hashlib.sha256(dedupe_key.encode()).hexdigest()[:40]
    domain = sender(settings)[1].rpartition("@")[2] or "offertrack.invalid"
    return f"<{digest}@{domain}>"


def build_message(
    *,
    to: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    attachments: Sequence[Attachment] = (),
    reply_to: str | None = None,
    headers: Mapping[str, str] | None = None,
    settings: Settings,
) -> EmailMessage:
    """The RFC 5322 message: text and HTML alternatives, then any attachments."""
    message = EmailMessage(policy=SMTP)
    name, address = sender(settings)
    message["From"] = Address(display_name=name, addr_spec=address)
    message["To"] = to
    message["Subject"] = " ".join(subject.split())[:MAX_SUBJECT]
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = message_id
    if reply_to:
        message["Reply-To"] = reply_to
    for header, value in (headers or {}).items():
        message[header] = value
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    _embed_logo(message, html, settings)
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return message


def _embed_logo(message: EmailMessage, html: str, settings: Settings) -> None:
    """The company logo as a part related to the HTML (multipart/related), where the HTML
    shows ``cid:`` it: the mail carries its image, so no client fetches one from a server."""
    logo = settings.logo_file
    html_part = message.get_body(("html",))
    if logo is None or html_part is None or f"cid:{LOGO_CID}" not in html:
        return
    maintype, _, subtype = (mimetypes.guess_type(logo.name)[0] or "image/png").partition("/")
    html_part.add_related(
        logo.read_bytes(),
        maintype=maintype,
        subtype=subtype,
        cid=f"<{LOGO_CID}>",
        filename=logo.name,
        disposition="inline",
    )


def queue_mail(
    session: Session,
    *,
    to: str,
    subject: str,
    text: str,
    html: str,
    dedupe_key: str,
    attachments: Sequence[Attachment] = (),
    reply_to: str | None = None,
    headers: Mapping[str, str] | None = None,
    category: str = "",
    settings: Settings | None = None,
) -> str:
    """Add one mail to the caller's transaction (the caller commits); returns its Message-ID.

    ``dedupe_key`` names the event the mail reports (``offer-sent:<ulid>``): queueing the same
    key again, in a retried request or a redelivered event, adds nothing. ``to`` must be valid
    (InvalidAddress otherwise, with the field ``body.to``)."""
    row = prepare_mail(
        to=to,
        subject=subject,
        text=text,
        html=html,
        dedupe_key=dedupe_key,
        attachments=attachments,
        reply_to=reply_to,
        headers=headers,
        category=category,
        settings=settings or get_settings(),
    )
    insert_mails(session.connection(), [row])
    return str(row["message_id"])


def prepare_mail(
    *,
    to: str,
    subject: str,
    text: str,
    html: str,
    dedupe_key: str,
    settings: Settings,
    attachments: Sequence[Attachment] = (),
    reply_to: str | None = None,
    headers: Mapping[str, str] | None = None,
    category: str = "",
) -> dict[str, Any]:
    """The outbox row of one mail, built outside any transaction (see ``insert_mails``)."""
    recipient = normalize_address(to, loc=("body", "to"))
    message_id = message_id_for(dedupe_key, settings)
    message = build_message(
        to=recipient,
        subject=subject,
        text=text,
        html=html,
        message_id=message_id,
        attachments=attachments,
        reply_to=normalize_address(reply_to, loc=("body", "reply_to")) if reply_to else None,
        headers=headers,
        settings=settings,
    )
    now = utcnow()
    return {
        "dedupe_key": dedupe_key[:200],
        "message_id": message_id,
        "category": category[:40],
        "recipient": recipient,
        "subject": str(message["Subject"]),
        "message": message.as_bytes(),
        "created_at": now,
        "next_attempt_at": now,
        "attempts": 0,
        "last_error": "",
    }


def prepare_rendered(
    mail: RenderedMail,
    *,
    to: str,
    dedupe_key: str,
    category: str,
    settings: Settings,
    **options: Any,
) -> dict[str, Any]:
    """``prepare_mail`` for a mail rendered from templates (app.notifications.templates)."""
    return prepare_mail(
        to=to,
        subject=mail.subject,
        text=mail.text,
        html=mail.html,
        dedupe_key=dedupe_key,
        category=category,
        settings=settings,
        **options,
    )


def queue_rendered(
    session: Session,
    mail: RenderedMail,
    *,
    to: str,
    dedupe_key: str,
    category: str,
    settings: Settings,
    **options: Any,
) -> str:
    """``queue_mail`` for a mail rendered from templates."""
    row = prepare_rendered(
        mail, to=to, dedupe_key=dedupe_key, category=category, settings=settings, **options
    )
    insert_mails(session.connection(), [row])
    return str(row["message_id"])


def insert_mails(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Add prepared mails; a dedupe key already queued adds nothing (ON CONFLICT DO NOTHING,
    which both databases speak; SQLAlchemy builds it per dialect)."""
    if not rows:
        return
    insert = insert_on_conflict(connection.dialect.name, MailOutbox)
    statement = insert.on_conflict_do_nothing(index_elements=["dedupe_key"])
    connection.execute(statement, list(rows))
