"""Customer questions in the staff site: read per offer, deleted with their personal data."""

import html
import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.audit import AuditLogEntry
from app.auth.staff import Role
from app.config import get_settings
from app.notifications import questions
from app.notifications.models import CustomerQuestion, MailOutbox
from app.offers import service as offers_service
from app.offers.ids import hyphenate_tracking_id
from app.tracking.codes import parse_tracking_code
from tests.factories import make_offer

pytestmark = pytest.mark.concurrency


def _asked(db: Session) -> tuple[str, str]:
    offer = make_offer(db, get_settings(), issued=True, company="Acme Hellas SA")
    questions.ask_question(
        db,
        parse_tracking_code(offer.id),
        email="buyer@acme-hellas.example",
        message="Can you deliver to Thessaloniki in May?",
        settings=get_settings(),
    )
    [question] = questions.offer_questions(db, offer.id)
    return offer.id, question.id


def _personal_data_left(db: Session, offer_id: str) -> list[str]:
    """Every stored text about the offer that still names the question or the asker."""
    with Session(db.get_bind()) as session:
        history = session.exec(
            select(AuditLogEntry).where(col(AuditLogEntry.offer_id) == offer_id)
        ).all()
        mails = session.exec(select(MailOutbox)).all()
        rows = session.exec(select(CustomerQuestion)).all()
    texts = [f"{e.summary} {e.changes}" for e in history]
    texts += [m.message.decode(errors="replace") + m.recipient for m in mails]
    texts += [f"{q.email} {q.message}" for q in rows]
    return [t for t in texts if "Thessaloniki" in t or "buyer@acme-hellas.example" in t]


def test_sales_reads_and_deletes_a_question_and_its_personal_data_goes(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    offer_id, question_id = _asked(db)
    token = as_role(Role.SALES)
    details = web.get(f"/admin/offer/details/{offer_id}").text
    assert f"question {question_id}" in details  # the history refers to it
    assert "Thessaloniki" not in details
    page = web.get(f"/admin/offers/{offer_id}/questions")
    assert "Can you deliver to Thessaloniki in May?" in page.text
    assert "buyer@acme-hellas.example" in page.text
    assert _personal_data_left(db, offer_id)  # the question and its alert mail

    deleted = web.post(
        f"/admin/offers/{offer_id}/questions/{question_id}/delete",
        data={"csrf_token": token},
        follow_redirects=False,
    )

    assert deleted.status_code == 303
    assert _personal_data_left(db, offer_id) == []
    assert "No questions kept for this offer" in web.get(deleted.headers["location"]).text
    history = web.get(f"/admin/offer/details/{offer_id}").text
    assert f"Deleted the customer&#39;s question {question_id}" in history


def test_a_viewer_reads_but_cannot_delete_and_an_unknown_question_is_404(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    offer_id, question_id = _asked(db)
    token = as_role(Role.VIEWER)
    page = web.get(f"/admin/offers/{offer_id}/questions").text
    assert "Thessaloniki" in page and "Delete this question" not in page

    url = f"/admin/offers/{offer_id}/questions/{question_id}/delete"
    assert web.post(url, data={"csrf_token": token}).status_code == 403
    assert _personal_data_left(db, offer_id)
    web.cookies.clear()
    sales_token = as_role(Role.SALES)
    missing = f"/admin/offers/{offer_id}/questions/01J00000000000000000000000/delete"
    assert web.post(missing, data={"csrf_token": sales_token}).status_code == 404
    other = make_offer(db, get_settings(), issued=True, company="Other AG").id
    elsewhere = f"/admin/offers/{other}/questions/{question_id}/delete"
    assert web.post(elsewhere, data={"csrf_token": sales_token}).status_code == 404
    assert _personal_data_left(db, offer_id)  # a question is deleted from its own offer only


def test_deleting_a_question_asked_before_questions_had_a_table_deletes_its_alert_mail(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    """Its alert mail was keyed by another id (the migration gave the question a new one)."""
    offer_id, question_id = _asked(db)
    [mail] = db.exec(
        select(MailOutbox).where(col(MailOutbox.dedupe_key).contains(question_id))
    ).all()
    mail.dedupe_key = f"alert:question:{offer_id}:01J00000000000000000000000"
    db.add(mail)
    db.commit()
    token = as_role(Role.SALES)

    web.post(f"/admin/offers/{offer_id}/questions/{question_id}/delete", data={"csrf_token": token})

    assert _personal_data_left(db, offer_id) == []


def test_sales_answers_a_question_with_one_tap_in_the_offers_language(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    """The page had the asker's address as a small link and "Delete this question" as its
    only button: answering opened an empty mail, with no subject naming the offer."""
    offer = make_offer(db, get_settings(), issued=True, company="Ελληνικά ΑΕ", language="el")
    questions.ask_question(
        db,
        parse_tracking_code(offer.id),
        email="maria@acme.example",
        message="Παράδοση ως 15/1;\nDelivery by 15 Jan & unloading?",
        settings=get_settings(),
    )
    as_role(Role.SALES)

    page = web.get(f"/admin/offers/{offer.id}/questions").text

    match = re.search(
        r'<a class="btn btn-primary" href="(mailto:[^"]+)">Answer by e-mail</a>', page
    )
    assert match, page
    link = urlsplit(html.unescape(match.group(1)))
    assert link.path == "maria@acme.example"
    fields = parse_qs(link.query)
    code = hyphenate_tracking_id(offer.tracking_id)
    assert fields["subject"] == [f"Re: Προσφορά {code} από {get_settings().company_name}"]
    assert fields["body"] == ["\n\n> Παράδοση ως 15/1;\n> Delivery by 15 Jan & unloading?\n"]


def test_the_offers_history_links_to_the_question_and_to_the_offer_it_was_copied_from(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    """The history named them by their ids only ("Created as a copy of 01M98…", "Question
    from the customer (question 01M98…)"): a salesperson copied the id into the search."""
    offer_id, _ = _asked(db)
    copy = offers_service.duplicate_offer(
        db, offer_id, actor="tests", settings=get_settings(), owner_id=None
    )
    as_role(Role.SALES)

    asked = web.get(f"/admin/offer/details/{offer_id}").text
    copied = web.get(f"/admin/offer/details/{copy.id}").text

    assert re.search(
        rf'href="[^"]*/admin/offers/{offer_id}/questions">Read the question</a>', asked
    )
    assert re.search(rf'href="[^"]*/admin/offer/details/{offer_id}">Open the original</a>', copied)
