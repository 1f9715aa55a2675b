"""Ask a question: the owner gets it with Reply-To the customer; the offer's history records
that it was asked, by reference, while its text and address stay deletable."""

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from app.audit import AuditLogEntry
from app.auth.staff import Role, StaffUser
from app.config import Settings
from app.notifications import questions
from app.notifications.models import CustomerQuestion
from app.notifications.questions import Topic
from app.offers.ids import hyphenate_tracking_id
from app.offers.models import Offer
from app.tracking.codes import parse_tracking_code
from tests.factories import make_offer
from tests.notifications.conftest import Inbox, body_text, run_worker

pytestmark = pytest.mark.concurrency
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _offer(engine: Engine, settings: Settings) -> Offer:
    with Session(engine, expire_on_commit=False) as session:
        owner = StaffUser(email="ana@acme.example", role=Role.SALES, password_hash="-")
        session.add(owner)
        session.flush()
        offer = make_offer(session, settings, issued=True, company="Acme Hellas")
        offer.owner_id = owner.id
        session.add(offer)
        session.commit()
        return offer


def _ask(web: TestClient, code: str, **form: str) -> "object":
    token = CSRF.search(web.get(f"/{code}").text)
    assert token, "the offer page has no form"
    return web.post(f"/{code}/question", data={**form, "csrf_token": token.group(1)})


def test_a_question_reaches_the_owner_with_reply_to_and_joins_the_history(
    web: TestClient, committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    offer = _offer(committed, settings)

    page = web.get(f"/{offer.id}")
    assert "Ask a question" in page.text
    sent = _ask(web, offer.id, email="maria@example.com", message="Can you deliver in May?")
    run_worker(committed, mail_settings)

    assert sent.status_code == 200 and "Your question is on its way" in sent.text  # type: ignore[attr-defined]
    # (the page views themselves are scans: the owner may also hear the offer was opened)
    [mail] = [m for m in inbox.to("ana@acme.example") if "asks a question" in m["Subject"]]
    assert mail["Reply-To"] == "maria@example.com"
    assert mail["Subject"].strip() == (
        f"Acme Hellas asks a question about offer {hyphenate_tracking_id(offer.tracking_id)}"
    )
    assert "Can you deliver in May?" in body_text(mail)
    with Session(committed) as session:
        [entry] = session.scalars(
            select(AuditLogEntry).where(col(AuditLogEntry.action) == "offer.question")
        )
        question = session.get(CustomerQuestion, entry.changes["question_id"])  # type: ignore[index]
    assert entry.offer_id == offer.id and entry.actor == "customer"
    # The audit log never forgets: it holds neither the text nor the address, only the id.
    assert "Can you deliver in May?" not in f"{entry.summary}{entry.changes}"
    assert "maria@example.com" not in f"{entry.summary}{entry.changes}"
    assert question is not None and question.offer_id == offer.id
    assert question.message == "Can you deliver in May?" and question.email == "maria@example.com"


def test_a_question_sent_twice_reaches_the_owner_once(
    web: TestClient, committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    # A double tap on a phone (the customer pages have no script to stop it), then the same
    # question again, reworded: that one is news.
    offer = _offer(committed, settings)

    answers = [
        _ask(web, offer.id, email="maria@example.com", message="Can you deliver in May?")
        for _ in range(2)
    ]
    _ask(web, offer.id, email="maria@example.com", message="Can you deliver in early May?")
    run_worker(committed, mail_settings)

    assert [a.status_code for a in answers] == [200, 200]  # type: ignore[attr-defined]
    assert "Your question is on its way" in answers[1].text  # type: ignore[attr-defined]
    asked = [m for m in inbox.to("ana@acme.example") if "asks a question" in m["Subject"]]
    assert len(asked) == 2
    with Session(committed) as session:
        stored = list(session.scalars(select(col(CustomerQuestion.message))))
    assert sorted(stored) == ["Can you deliver in May?", "Can you deliver in early May?"]


def test_bad_input_re_renders_the_form_with_the_error_beside_its_field(
    web: TestClient, committed: Engine, settings: Settings
) -> None:
    offer = _offer(committed, settings)

    bad_address = _ask(web, offer.id, email="maria@", message="Price?")
    no_question = _ask(web, offer.id, email="maria@example.com", message="   ")

    assert bad_address.status_code == no_question.status_code == 422  # type: ignore[attr-defined]
    assert 'id="email-error"' in bad_address.text and ">Price?</textarea>" in bad_address.text  # type: ignore[attr-defined]
    assert 'id="message-error"' in no_question.text  # type: ignore[attr-defined]
    assert 'value="maria@example.com"' in no_question.text  # type: ignore[attr-defined]
    with Session(committed) as session:
        assert (
            session.execute(
                select(AuditLogEntry).where(col(AuditLogEntry.action) == "offer.question")
            ).first()
            is None
        )


def test_the_tracking_id_cannot_ask_and_csrf_is_required(
    web: TestClient, committed: Engine, settings: Settings
) -> None:
    offer = _offer(committed, settings)
    form = {"email": "maria@example.com", "message": "Hello?"}

    assert web.post(f"/{offer.id}/question", data=form).status_code == 403
    token = CSRF.search(web.get(f"/{offer.id}").text).group(1)  # type: ignore[union-attr]
    short = web.post(f"/{offer.tracking_id}/question", data={**form, "csrf_token": token})
    assert short.status_code == 404


def test_asking_for_a_new_quotation_is_the_same_service(
    committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    offer = _offer(committed, settings)
    with Session(committed) as session:
        questions.ask_question(
            session,
            parse_tracking_code(offer.id),
            email="maria@example.com",
            message="Same again for 2027, please.",
            settings=settings,
            topic=Topic.NEW_QUOTATION,
        )
    run_worker(committed, mail_settings)

    [mail] = inbox.to("ana@acme.example")
    assert "asks for a new quotation" in mail["Subject"]


def _questions(engine: Engine) -> list[CustomerQuestion]:
    with Session(engine) as session:
        return list(session.scalars(select(CustomerQuestion)))


def test_the_asker_can_delete_their_own_message_and_address(
    web: TestClient, committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    # A buyer who asked had no way to take back their message and address: only staff could.
    offer = _offer(committed, settings)
    web.headers["Accept-Language"] = "de"
    sent = _ask(web, offer.id, email="jonas@example.com", message="Lieferung im Mai?")
    html = sent.text  # type: ignore[attr-defined]
    assert "Wir speichern Ihre Nachricht und Ihre E-Mail-Adresse" in html
    form = re.search(
        r'<form method="post" action="https://track\.example\.com(/questions/delete/[^"?]+)"', html
    )
    token = CSRF.search(html)
    assert form and token and "Meine Nachricht löschen</button>" in html
    assert len(_questions(committed)) == 1

    forged = web.post(form.group(1), data={})  # no CSRF token: nothing happens
    deleted = web.post(form.group(1), data={"csrf_token": token.group(1)})
    again = web.post(form.group(1), data={"csrf_token": token.group(1)})  # a double tap
    run_worker(committed, mail_settings)

    assert forged.status_code == 403
    assert deleted.status_code == 200 and '<html lang="en"' not in deleted.text
    assert "Ihre Nachricht ist gelöscht" in deleted.text
    assert f'href="https://track.example.com/{offer.id}"' in deleted.text
    assert again.status_code == 200 and "Ihre Nachricht ist gelöscht" in again.text
    assert _questions(committed) == []
    assert not [m for m in inbox.messages if "jonas@example.com" in m.as_string()]
    with Session(committed) as session:
        actions = session.execute(
            select(col(AuditLogEntry.actor), col(AuditLogEntry.action)).where(
                col(AuditLogEntry.offer_id) == offer.id,
                col(AuditLogEntry.action) == "offer.question_deleted",
            )
        ).all()
    assert [tuple(row) for row in actions] == [("customer", "offer.question_deleted")]
    assert (
        web.post("/questions/delete/forged", data={"csrf_token": token.group(1)}).status_code == 404
    )


def test_a_question_typed_before_the_phone_dropped_its_session_is_still_sent(
    app: FastAPI, web: TestClient, committed: Engine, settings: Settings
) -> None:
    """A phone that drops session cookies restores the offer's tab, question typed in it;
    sending it met "This form has expired" and the text was gone."""
    offer = _offer(committed, settings)
    page = web.get(f"/{offer.id}")
    token = CSRF.search(page.text)
    assert token
    [cookie] = [c for c in page.headers.get_list("set-cookie") if c.startswith("ot_csrf=")]
    attributes = {part.split("=")[0].strip().lower() for part in cookie.split(";")[1:]}
    restarted = TestClient(app, base_url="https://track.example.com")
    if attributes & {"max-age", "expires"}:  # a browser keeps only these across a restart
        restarted.cookies.set("ot_csrf", cookie.split(";")[0].split("=", 1)[1])

    sent = restarted.post(
        f"/{offer.id}/question",
        data={
            "email": "jonas@example.com",
            "message": "Lieferung im Mai?",
            "csrf_token": token.group(1),
        },
    )

    assert sent.status_code == 200 and "Your question is on its way" in sent.text
    assert len(_questions(committed)) == 1
