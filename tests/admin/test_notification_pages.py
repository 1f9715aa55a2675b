"""The staff pages of notifications: each user's alert preferences; mails written to disk."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from app.admin.users import find_by_email
from app.auth.staff import Role
from app.config import Settings
from app.notifications import alerts, delivery
from app.notifications.alerts import AlertKind, AlertMode
from app.notifications.delivery import ClaimedMail, FileTransport
from app.notifications.mail import build_message

pytestmark = pytest.mark.concurrency


def _choices(**changed: str) -> dict[str, str]:
    return {kind.value: changed.get(kind.value, "immediately") for kind in AlertKind}


def test_a_user_sets_how_each_alert_reaches_them(
    web: TestClient, as_role: Callable[[Role], str], committed: Engine
) -> None:
    token = as_role(Role.VIEWER)

    page = web.get("/admin/alerts/")
    assert page.status_code == 200 and "My alerts" in page.text
    assert page.text.count("checked") == len(AlertKind)  # all "immediately" at first
    saved = web.post(
        "/admin/alerts/",
        data={**_choices(scanned="digest", declined="off"), "csrf_token": token},
        follow_redirects=False,
    )

    assert saved.status_code == 303
    with Session(committed) as session:
        user = find_by_email(session, "viewer@example.com")
        assert user is not None and user.id is not None
        modes = alerts.preferences(session, user.id)
    assert modes[AlertKind.SCANNED] == AlertMode.DIGEST
    assert modes[AlertKind.DECLINED] == AlertMode.OFF
    assert modes[AlertKind.ACCEPTED] == AlertMode.IMMEDIATELY
    assert 'name="scanned" value="digest" id="scanned-digest"' in web.get("/admin/alerts/").text


def test_an_unknown_choice_is_a_form_error_and_nothing_is_saved(
    web: TestClient, as_role: Callable[[Role], str], committed: Engine
) -> None:
    token = as_role(Role.SALES)

    refused = web.post("/admin/alerts/", data={**_choices(scanned="hourly"), "csrf_token": token})

    assert refused.status_code == 422 and "Choose one of the options." in refused.text
    with Session(committed) as session:
        user = find_by_email(session, "sales@example.com")
        assert user is not None and user.id is not None
        assert alerts.preferences(session, user.id)[AlertKind.SCANNED] == AlertMode.IMMEDIATELY


def test_preferences_need_a_sign_in_and_the_csrf_token(
    web: TestClient, as_role: Callable[[Role], str]
) -> None:
    assert web.get("/admin/alerts/", follow_redirects=False).status_code in (302, 303)
    as_role(Role.VIEWER)
    assert web.post("/admin/alerts/", data=_choices()).status_code == 403


def test_admins_see_the_mails_written_to_disk_in_development(
    web: TestClient, as_role: Callable[[Role], str], settings: Settings
) -> None:
    message = build_message(
        to="maria@example.com",
        subject="Your offer 01H0W-ARY2W",
        text="Hello",
        html="<p>Hello</p>",
        message_id="<x@example.com>",
        settings=settings,
    )
    FileTransport(delivery.mail_directory(settings)).send(
        ClaimedMail(4242, "maria@example.com", message.as_bytes(), 0, "<x@example.com>")
    )
    as_role(Role.ADMIN)

    listing = web.get("/admin/alerts/mail")
    assert listing.status_code == 200
    assert "Your offer 01H0W-ARY2W" in listing.text and "maria@example.com" in listing.text
    raw = web.get("/admin/alerts/mail/00004242.eml")
    assert raw.headers["content-type"].startswith("text/plain")
    assert "Message-ID: <x@example.com>" in raw.text
    assert web.get("/admin/alerts/mail/..%2Fsecret_key").status_code == 404


def test_viewers_do_not_see_written_mails(web: TestClient, as_role: Callable[[Role], str]) -> None:
    as_role(Role.VIEWER)

    assert web.get("/admin/alerts/mail").status_code == 403


def test_a_customer_question_is_referenced_in_the_history_and_read_on_its_page(
    web: TestClient, as_role: Callable[[Role], str], db: Session, settings: Settings
) -> None:
    from app.notifications import questions
    from app.tracking.codes import parse_tracking_code
    from tests.factories import make_offer

    offer = make_offer(db, settings, issued=True)
    questions.ask_question(
        db,
        parse_tracking_code(offer.id),
        email="maria@example.com",
        message="Is the pump available in stainless steel?",
        settings=settings,
    )
    as_role(Role.VIEWER)

    page = web.get(f"/admin/offer/details/{offer.id}")
    [question] = questions.offer_questions(db, offer.id)

    assert page.status_code == 200
    # The history (the audit log, never deleted) names the question, not its personal data.
    assert f"Question from the customer (question {question.id})" in page.text
    assert "stainless steel" not in page.text
    listed = web.get(f"/admin/offers/{offer.id}/questions").text
    assert "Is the pump available in stainless steel?" in listed
    assert "maria@example.com" in listed
