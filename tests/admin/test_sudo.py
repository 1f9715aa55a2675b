"""Sudo mode: a sensitive staff action needs the password (or a current code) given within
OFFERTRACK_SUDO_MINUTES; a sign-in counts, an older one is asked on "Confirm access" first."""

from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, select

from app.admin import twofactor, users
from app.admin.sessions import StaffSession
from app.analytics.models import WebhookEndpoint
from app.audit import AuditLogEntry
from app.auth.staff import LoginFailure, Role
from app.db import utcnow
from tests.admin.conftest import StaffLogin, csrf_from, sign_in


def _age_confirmation(db: Session, email: str, minutes: int = 16) -> None:
    """The user's sessions last confirmed ``minutes`` ago (signed in then, used since)."""
    user = users.find_by_email(db, email)
    assert user is not None
    db.execute(
        update(StaffSession)
        .where(col(StaffSession.user_id) == user.id)
        .values(confirmed_at=utcnow() - timedelta(minutes=minutes))
    )
    db.commit()


def _audit_actions(db: Session, email: str) -> list[str]:
    db.rollback()
    entries = db.exec(
        select(AuditLogEntry.action).where(
            col(AuditLogEntry.action).startswith("staff_user.access_confirm"),
            AuditLogEntry.actor == f"staff:{email}",
        )
    ).all()
    return list(entries)


@pytest.fixture
def admin(web: TestClient, make_staff: Callable[..., StaffLogin]) -> StaffLogin:
    who = make_staff(Role.ADMIN)
    sign_in(web, who)
    return who


@pytest.fixture
def colleague(make_staff: Callable[..., StaffLogin], db: Session) -> int:
    who = make_staff(Role.SALES)
    user = users.find_by_email(db, who.email)
    assert user is not None and user.id is not None
    user_id = user.id
    db.rollback()  # SQLite: no writer's lock held while the browsers write
    return user_id


def _confirm(web: TestClient, page: str, **fields: str) -> object:
    html = web.get(page).text
    data = {"csrf_token": csrf_from(html), **fields}
    return web.post("/admin/confirm-access", data=data, follow_redirects=False)


def test_a_fresh_sign_in_is_not_asked(web: TestClient, admin: StaffLogin, colleague: int) -> None:
    assert web.get(f"/admin/users/{colleague}/sign-out").status_code == 200
    assert web.get("/admin/staff-user/create").status_code == 200


def test_an_older_confirmation_is_asked_first_and_then_lands_back(
    web: TestClient, admin: StaffLogin, colleague: int, db: Session
) -> None:
    _age_confirmation(db, admin.email)
    page = f"/admin/users/{colleague}/sign-out"

    asked = web.get(page, follow_redirects=False)

    assert asked.status_code == 303
    location = asked.headers["location"]
    assert location.startswith("/admin/confirm-access?")
    assert parse_qs(urlsplit(location).query)["next"] == [page]
    confirmed = _confirm(web, location, password=admin.password, next=page)
    assert confirmed.status_code == 303  # type: ignore[attr-defined]
    assert confirmed.headers["location"] == page  # type: ignore[attr-defined]
    assert web.get(page, follow_redirects=False).status_code == 200
    assert _audit_actions(db, admin.email) == ["staff_user.access_confirmed"]


def test_a_sensitive_post_without_confirmation_does_nothing(
    web: TestClient, admin: StaffLogin, colleague: int, db: Session, second_browser: TestClient
) -> None:
    token = csrf_from(web.get(f"/admin/users/{colleague}/sign-out").text)
    colleague_browser = second_browser
    sign_in(colleague_browser, StaffLogin("sales@example.com", admin.password, Role.SALES))
    _age_confirmation(db, admin.email)

    sent = web.post(
        f"/admin/users/{colleague}/sign-out", data={"csrf_token": token}, follow_redirects=False
    )

    assert sent.status_code == 303
    assert sent.headers["location"].startswith("/admin/confirm-access")
    assert colleague_browser.get("/admin/account", follow_redirects=False).status_code == 200


def test_the_typed_form_comes_back_after_confirming(
    web: TestClient, admin: StaffLogin, db: Session
) -> None:
    token = csrf_from(web.get("/admin/analytics/webhooks").text)
    _age_confirmation(db, admin.email)
    form = {"url": "https://hook.example.com/orders", "event_types": "order.stage_changed"}

    sent = web.post(
        "/admin/analytics/webhooks",
        data={"csrf_token": token, **form},
        headers={"referer": str(web.base_url) + "/admin/analytics/webhooks"},
        follow_redirects=False,
    )
    assert db.exec(select(WebhookEndpoint)).all() == []
    db.rollback()
    confirmed = web.post(
        "/admin/confirm-access",
        data={"csrf_token": token, "password": admin.password, "next": "/admin/analytics/webhooks"},
    )

    assert sent.headers["location"].startswith("/admin/confirm-access")
    assert confirmed.status_code == 200
    held = confirmed.text
    assert 'action="/admin/analytics/webhooks"' in held
    assert 'value="https://hook.example.com/orders"' in held
    web.post("/admin/analytics/webhooks", data={"csrf_token": csrf_from(held), **form})
    db.rollback()
    assert [e.url for e in db.exec(select(WebhookEndpoint)).all()] == [form["url"]]


def test_wrong_passwords_are_throttled_as_at_sign_in_and_logged(
    web: TestClient, admin: StaffLogin, db: Session
) -> None:
    _age_confirmation(db, admin.email)
    answers = [
        _confirm(web, "/admin/confirm-access", password="not it", next="/admin/settings")
        for _ in range(4)
    ]

    first, last = answers[0], answers[-1]
    assert first.status_code == 422  # type: ignore[attr-defined]
    assert 'id="password-error"' in first.text  # type: ignore[attr-defined]
    assert "That password is not right." in first.text  # type: ignore[attr-defined]
    assert last.status_code == 429  # type: ignore[attr-defined]
    assert int(last.headers["retry-after"]) >= 1  # type: ignore[attr-defined]
    db.rollback()
    failures = db.exec(select(LoginFailure).where(LoginFailure.email == admin.email)).all()
    assert len(failures) == 3  # the sign-in's own count; the 4th was not let through to count
    assert _audit_actions(db, admin.email) == ["staff_user.access_confirm_failed"] * 4
    db.rollback()
    assert web.get("/admin/settings", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "target", ["https://evil.example/admin/", "//evil.example/admin/", "/\\evil.example", "/x"]
)
def test_next_never_leads_to_another_site(
    web: TestClient, admin: StaffLogin, db: Session, target: str
) -> None:
    page = web.get("/admin/confirm-access", params={"next": target})
    assert 'name="next" value=""' in page.text

    confirmed = _confirm(web, "/admin/confirm-access", password=admin.password, next=target)

    assert confirmed.headers["location"] == "/admin/"  # type: ignore[attr-defined]


def test_a_user_with_two_factor_confirms_with_a_code_instead(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    who = make_staff(Role.ADMIN, "totp-admin@example.com")
    user = users.find_by_email(db, who.email)
    assert user is not None and user.id is not None
    staff = users.load_active(db, user.id)
    assert staff is not None
    secret = twofactor.begin_enrolment(db, staff)
    code = pyotp.TOTP(secret)
    # Set up with the previous step's code: the current one is left for the confirmation.
    recovery = twofactor.confirm_enrolment(db, staff, code.at(utcnow() - timedelta(seconds=30)))
    page = web.get("/admin/login")
    login = {"email": who.email, "password": who.password, "csrf_token": csrf_from(page.text)}
    second = web.post("/admin/login", data=login)
    web.post("/admin/login/2fa", data={"code": recovery[0], "csrf_token": csrf_from(second.text)})
    _age_confirmation(db, who.email)
    asked = web.get("/admin/settings")
    assert 'for="code"' in asked.text and 'for="password"' in asked.text

    wrong = _confirm(web, "/admin/confirm-access", code="000000", next="/admin/settings")
    right = _confirm(web, "/admin/confirm-access", code=code.now(), next="/admin/settings")

    assert wrong.status_code == 422  # type: ignore[attr-defined]
    assert 'id="code-error"' in wrong.text  # type: ignore[attr-defined]
    assert right.headers["location"] == "/admin/settings"  # type: ignore[attr-defined]
    assert web.get("/admin/settings", follow_redirects=False).status_code == 200


def test_the_page_speaks_the_browsers_language(web: TestClient, admin: StaffLogin) -> None:
    page = web.get("/admin/confirm-access", headers={"accept-language": "de-DE,de;q=0.9"})
    assert "Zugriff bestätigen" in page.text
    assert 'lang="de"' in page.text


def test_ordinary_sales_work_is_not_asked(web: TestClient, admin: StaffLogin, db: Session) -> None:
    _age_confirmation(db, admin.email, minutes=60)
    for page in ("/admin/offer/list", "/admin/offers/new", "/admin/account", "/admin/"):
        assert web.get(page, follow_redirects=False).status_code == 200, page


def test_sqladmin_user_and_key_forms_ask_too(
    web: TestClient, admin: StaffLogin, db: Session
) -> None:
    _age_confirmation(db, admin.email)
    for page in ("/admin/staff-user/create", "/admin/api-key/create"):
        asked = web.get(page, follow_redirects=False)
        assert asked.status_code == 303, page
        assert asked.headers["location"].startswith("/admin/confirm-access?next="), page
