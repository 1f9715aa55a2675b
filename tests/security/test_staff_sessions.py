"""Issue 14.4: staff sessions live on the server. A copied cookie dies with sign-out; a user
sees their sessions and ends the others; a new password, a new role or deactivation ends the
user's other sessions at once."""

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.admin import users
from app.admin.sessions import StaffSession
from app.auth.staff import Role, StaffUser
from app.config import get_settings
from app.main import create_app
from tests.admin.conftest import StaffLogin, csrf_from, sign_in

pytestmark = pytest.mark.concurrency
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def _browser(app: FastAPI, user_agent: str = FIREFOX) -> TestClient:
    # The session's running client started the app; this is one more browser on it.
    client = TestClient(app, base_url="https://track.example.com")
    client.headers["User-Agent"] = user_agent
    return client


def _signed_in(browser: TestClient) -> bool:
    return browser.get("/admin/", follow_redirects=False).status_code == 200


def _user_id(db: Session, email: str) -> int:
    user_id = db.exec(select(StaffUser.id).where(StaffUser.email == email)).one()
    db.rollback()
    assert user_id is not None
    return user_id


@pytest.mark.usefixtures("web")
def test_a_copied_cookie_stops_working_at_sign_out(
    app: FastAPI, make_staff: Callable[..., StaffLogin]
) -> None:
    browser = _browser(app)
    token = sign_in(browser, make_staff(Role.ADMIN))
    stolen = _browser(app)
    stolen.cookies.set("ot_staff", browser.cookies["ot_staff"], path="/admin")
    assert _signed_in(stolen)

    out = browser.post("/admin/logout", data={"csrf_token": token}, follow_redirects=False)

    assert out.status_code == 303
    assert not _signed_in(stolen)
    assert not _signed_in(browser)


@pytest.mark.usefixtures("web")
def test_the_cookie_holds_no_user_id(app: FastAPI, make_staff: Callable[..., StaffLogin]) -> None:
    import base64
    import json

    browser = _browser(app)
    sign_in(browser, make_staff(Role.VIEWER))
    payload = browser.cookies["ot_staff"].split(".")[0]
    data = json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))

    assert set(data) == {"sid", "csrf"}


@pytest.mark.usefixtures("web")
def test_a_session_ended_on_one_node_is_ended_on_the_others_at_once(
    app: FastAPI, make_staff: Callable[..., StaffLogin]
) -> None:
    """Another app on the same database (another process or node) keeps no copy of a session
    that could outlive its end: the cookie stops working there with the very next request."""
    other_node = create_app(get_settings().model_copy(update={"scan_feed": False}))
    browser = _browser(app)
    who = make_staff(Role.SALES)
    token = sign_in(browser, who)
    elsewhere = TestClient(other_node, base_url="https://track.example.com")
    elsewhere.cookies.set("ot_staff", browser.cookies["ot_staff"], path="/admin")
    assert _signed_in(elsewhere)
    second = _browser(app)
    sign_in(second, who)  # the same user in a second browser, on this node

    ended = browser.post("/admin/account/sessions/end-others", data={"csrf_token": token})
    assert ended.status_code == 200 and _signed_in(elsewhere) and not _signed_in(second)
    browser.post("/admin/logout", data={"csrf_token": token}, follow_redirects=False)

    assert not _signed_in(elsewhere)


@pytest.mark.usefixtures("web")
def test_a_user_sees_their_sessions_and_ends_the_others(
    app: FastAPI, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    who = make_staff(Role.SALES)
    laptop, phone = _browser(app, FIREFOX), _browser(app, SAFARI)
    token = sign_in(laptop, who)
    sign_in(phone, who)
    other = _browser(app)
    sign_in(other, make_staff(Role.VIEWER))  # someone else's session is not touched

    page = laptop.get("/admin/account")
    assert page.status_code == 200
    assert "Firefox on Linux" in page.text and "Mobile Safari on iOS" in page.text
    assert page.text.count("this session") == 1

    ended = laptop.post(
        "/admin/account/sessions/end-others", data={"csrf_token": token}, follow_redirects=True
    )

    assert "Signed out 1 other session" in ended.text
    assert _signed_in(laptop) and not _signed_in(phone) and _signed_in(other)
    stored = db.exec(select(StaffSession)).all()
    assert {row.client for row in stored} == {"Firefox on Linux", "Mobile Safari on iOS"}
    db.rollback()


@pytest.mark.usefixtures("web")
def test_one_session_can_be_ended_but_not_someone_elses(
    app: FastAPI, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    who = make_staff(Role.VIEWER)
    laptop, phone, colleague = _browser(app), _browser(app, SAFARI), _browser(app)
    token = sign_in(laptop, who)
    sign_in(phone, who)
    sign_in(colleague, make_staff(Role.SALES))
    rows = {row.client: row.id for row in db.exec(select(StaffSession)).all()}
    colleague_id = max(filter(None, rows.values()))
    db.rollback()

    laptop.post(
        f"/admin/account/sessions/{rows['Mobile Safari on iOS']}/end", data={"csrf_token": token}
    )
    laptop.post(f"/admin/account/sessions/{colleague_id}/end", data={"csrf_token": token})

    assert not _signed_in(phone)
    assert _signed_in(colleague) and _signed_in(laptop)


@pytest.mark.usefixtures("web")
def test_an_admin_changing_a_role_ends_that_users_sessions_at_once(
    app: FastAPI, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    admin_browser, sales_browser = _browser(app), _browser(app)
    admin_token = sign_in(admin_browser, make_staff(Role.ADMIN))
    sales = make_staff(Role.SALES)
    sign_in(sales_browser, sales)
    sales_id = _user_id(db, sales.email)

    edit = admin_browser.get(f"/admin/staff-user/edit/{sales_id}")
    assert edit.status_code == 200
    changed = admin_browser.post(
        f"/admin/staff-user/edit/{sales_id}",
        data={"role": "viewer", "is_active": "y", "csrf_token": admin_token, "save": "Save"},
        follow_redirects=False,
    )

    assert changed.status_code in (302, 303), changed.text
    assert not _signed_in(sales_browser)
    assert _signed_in(admin_browser)


@pytest.mark.usefixtures("web")
def test_an_admin_sets_their_own_password_on_your_account_not_on_the_users_page(
    app: FastAPI, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    """The users page asks no current password and keeps the session id: an admin page left
    open on a shared computer would be enough to take the account over."""
    make_staff(Role.ADMIN, email="other-admin@example.com")
    who = make_staff(Role.ADMIN)
    here, there = _browser(app), _browser(app)
    token = sign_in(here, who)
    sign_in(there, who)
    user_id = _user_id(db, who.email)
    form = here.get(f"/admin/staff-user/edit/{user_id}")
    assert form.status_code == 200

    refused = here.post(
        f"/admin/staff-user/edit/{user_id}",
        data={
            "role": "admin",
            "is_active": "y",
            "new_password": "a brand new passphrase",
            "csrf_token": csrf_from(form.text) or token,
            "save": "Save",
        },
    )

    assert refused.status_code == 400
    assert "To change your own password, use Your account" in refused.text
    assert _signed_in(here) and _signed_in(there)
    assert not _signs_in_with(app, who.email, "a brand new passphrase")
    assert _signs_in_with(app, who.email, who.password)
    db.rollback()


def _signs_in_with(app: FastAPI, email: str, password: str) -> bool:
    browser = _browser(app)
    page = browser.get("/admin/login")
    answer = browser.post(
        "/admin/login",
        data={"email": email, "password": password, "csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    return answer.status_code == 303


@pytest.mark.usefixtures("web")
def test_a_deactivated_users_sessions_stay_ended_when_they_are_reactivated(
    app: FastAPI, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    who = make_staff(Role.SALES)
    laptop, phone = _browser(app), _browser(app, SAFARI)
    sign_in(laptop, who)
    sign_in(phone, who)
    user_id = _user_id(db, who.email)

    users.update_user(db, user_id, role=Role.SALES, is_active=False, actor="tests")
    users.update_user(db, user_id, role=Role.SALES, is_active=True, actor="tests")

    assert not _signed_in(laptop) and not _signed_in(phone)
    assert sign_in(laptop, who)  # the password still works; only the old sessions are gone


@pytest.mark.usefixtures("web")
def test_a_password_set_from_the_command_line_ends_every_session(
    app: FastAPI, make_staff: Callable[..., StaffLogin]
) -> None:
    from typer.testing import CliRunner

    from app.cli import cli

    who = make_staff(Role.ADMIN)
    laptop, phone = _browser(app), _browser(app, SAFARI)
    sign_in(laptop, who)
    sign_in(phone, who)

    result = CliRunner().invoke(cli, ["set-password", who.email], input="a new long passphrase\n")

    assert result.exit_code == 0, result.output
    assert not _signed_in(laptop) and not _signed_in(phone)
