"""'Send to customer': the mail is queued with the PDF and the tracking link, and recorded."""

import email
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, select

from app.audit import AuditLogEntry
from app.auth.staff import Role
from app.config import get_settings
from app.db import utcnow
from app.notifications.models import MailOutbox
from tests.factories import make_offer

pytestmark = pytest.mark.concurrency


def _outbox(db: Session) -> list[EmailMessage]:
    with Session(db.get_bind()) as session:
        rows = session.exec(select(MailOutbox)).all()
        parsed = [email.message_from_bytes(row.message, policy=default) for row in rows]
    return [m for m in parsed if isinstance(m, EmailMessage)]


def test_sales_sends_an_issued_offer_with_its_pdf_and_link(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    offer_id = make_offer(db, get_settings(), issued=True, company="Acme Hellas SA").id
    token = as_role(Role.SALES)
    form = web.get(f"/admin/offers/{offer_id}/send").text
    assert 'value="maria@example.com"' in form  # the customer's address, prefilled

    bad = web.post(
        f"/admin/offers/{offer_id}/send",
        data={"csrf_token": token, "to": "maria@", "subject": "Offer", "message": "Hi Maria"},
    )
    assert bad.status_code == 422 and 'id="to-error"' in bad.text and "Hi Maria" in bad.text
    assert _outbox(db) == []

    sent = web.post(
        f"/admin/offers/{offer_id}/send",
        data={
            "csrf_token": token,
            "to": "maria@example.com",
            "subject": "Your offer",
            "message": "Dear Maria,\n\nhere it is.",
        },
        follow_redirects=False,
    )

    assert sent.status_code == 303
    [mail] = _outbox(db)
    assert mail["To"] == "maria@example.com" and mail["Subject"] == "Your offer"
    body = mail.get_body(("plain",))
    assert body is not None and f"/{offer_id}" in body.get_content()
    [pdf] = list(mail.iter_attachments())
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_content().startswith(b"%PDF")
    with Session(db.get_bind()) as session:
        actions = session.exec(
            select(AuditLogEntry.action).where(AuditLogEntry.offer_id == offer_id)
        ).all()
    assert "offer.send" in actions
    assert "Sent to maria@example.com" in web.get(f"/admin/offer/details/{offer_id}").text


def test_a_draft_cannot_be_sent_and_a_viewer_cannot_send(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    draft_id = make_offer(db, get_settings(), company="Acme Hellas SA").id
    token = as_role(Role.SALES)
    data = {"csrf_token": token, "to": "maria@example.com", "subject": "S", "message": "M"}
    assert web.post(f"/admin/offers/{draft_id}/send", data=data).status_code == 409
    web.cookies.clear()
    viewer_token = as_role(Role.VIEWER)
    data["csrf_token"] = viewer_token
    assert web.post(f"/admin/offers/{draft_id}/send", data=data).status_code == 403
    assert _outbox(db) == []


def test_a_german_offer_s_send_form_starts_with_a_german_message(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    offer = make_offer(db, get_settings(), issued=True, company="Müller GmbH", language="de")
    as_role(Role.SALES)

    form = web.get(f"/admin/offers/{offer.id}/send").text

    assert 'value="Angebot ' in form and f"von {get_settings().company_name}" in form
    assert "Guten Tag Maria P.," in form and "Mit freundlichen Grüßen" in form
    assert "Deutsch" in form and "Dear" not in form


@pytest.mark.parametrize(
    ("language", "word", "attached"),
    [
        ("de", "Angebot", "Das Angebot ist dieser E-Mail als PDF beigefügt."),
        ("el", "Προσφορά", "Η προσφορά επισυνάπτεται σε αυτό το μήνυμα ως PDF."),
    ],
)
def test_the_customer_saves_the_attached_pdf_under_a_name_in_their_language(
    web: TestClient,
    as_role: Callable[[Role], str],
    db: Session,
    language: str,
    word: str,
    attached: str,
) -> None:
    # A German buyer's download folder filled with "offer-01M98-ZARS9.pdf".
    offer = make_offer(db, get_settings(), issued=True, language=language)
    token = as_role(Role.SALES)
    data = {"csrf_token": token, "to": "maria@example.com", "subject": "S", "message": "M"}

    web.post(f"/admin/offers/{offer.id}/send", data=data, follow_redirects=False)

    [mail] = _outbox(db)
    [pdf] = list(mail.iter_attachments())
    code = f"{offer.tracking_id[:5]}-{offer.tracking_id[5:]}"
    assert pdf.get_filename() == f"{word}-{code}.pdf"
    # Said in the plain text too, which some procurement mailboxes show alone.
    plain = mail.get_body(("plain",))
    assert plain is not None and attached in plain.get_content()


def test_the_send_form_sent_twice_mails_the_customer_once(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    offer_id = make_offer(db, get_settings(), issued=True, company="Acme Hellas SA").id
    data = {
        "csrf_token": as_role(Role.SALES),
        "to": "maria@example.com",
        "subject": "Your offer",
        "message": "Dear Maria,\n\nhere it is.",
    }
    url = f"/admin/offers/{offer_id}/send"

    first = web.post(url, data=data, follow_redirects=False)
    second = web.post(url, data=data, follow_redirects=False)

    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert (
        "The offer is on its way to maria@example.com" in web.get(second.headers["location"]).text
    )
    assert len(_outbox(db)) == 1
    web.post(url, data=data | {"message": "Dear Maria,\n\nhere it is, with the new price."})
    assert len(_outbox(db)) == 2
    with Session(db.get_bind()) as session:  # as if both were sent a minute ago
        minute_ago = utcnow() - timedelta(seconds=61)
        session.execute(update(AuditLogEntry).values(occurred_at=minute_ago))
        session.commit()
    web.post(url, data=data)
    assert len(_outbox(db)) == 3
