"""A staff user changes their own password on Your account, with their current one.

Before, only an admin (the users page) or IT (`offertrack set-password`) could: a sales person
given a first password by an admin kept it, or asked.
"""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.admin import throttle
from app.admin.access import SESSION_COOKIE
from app.audit import AuditLogEntry
from app.auth import passwords
from app.auth.staff import Role
from tests.admin.conftest import StaffLogin, csrf_from, sign_in

NEW = "a new long passphrase"


def _change(web: TestClient, current: str, new: str, again: str | None = None) -> object:
    token = csrf_from(web.get("/admin/account").text)
    form = {
        "current_password": current,
        "new_password": new,
        "new_password_again": new if again is None else again,
        "csrf_token": token,
    }
    return web.post("/admin/account/password", data=form, follow_redirects=False)


def _signs_in(browser: TestClient, email: str, password: str) -> bool:
    browser.cookies.clear()
    page = browser.get("/admin/login")
    answer = browser.post(
        "/admin/login",
        data={"email": email, "password": password, "csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    return answer.status_code == 303


def _signed_in(browser: TestClient) -> bool:
    return browser.get("/admin/", follow_redirects=False).status_code == 200


def test_a_user_changes_their_password_and_their_other_sessions_end(
    web: TestClient,
    second_browser: TestClient,
    make_staff: Callable[..., StaffLogin],
    db: Session,
) -> None:
    who = make_staff(Role.SALES)
    sign_in(second_browser, who)  # the phone, signed in too
    sign_in(web, who)

    answer = _change(web, who.password, NEW)

    assert answer.status_code == 303  # type: ignore[attr-defined]
    page = web.get("/admin/account").text
    assert "Your password is changed" in page
    assert _signed_in(web), "the browser that changed it stays signed in"
    assert not _signed_in(second_browser), "the other session ended"
    assert not _signs_in(second_browser, who.email, who.password)
    assert _signs_in(second_browser, who.email, NEW)
    entries = db.exec(
        select(AuditLogEntry.summary).where(col(AuditLogEntry.action) == "staff_user.password")
    ).all()
    db.rollback()
    assert entries == [f"Set a new password for {who.email}"]


@pytest.mark.parametrize(
    ("current", "new", "again", "field", "message"),
    [
        ("not my password", NEW, None, "current_password", "not your current password"),
        (None, "short", None, "new_password", "at least 10 characters"),
        (None, "Summer2026!", None, "new_password", "easy to guess"),
        (None, "1234567890", None, "new_password", "This is a top-100 common password."),
        (None, NEW, NEW + "x", "new_password_again", "The two new passwords differ"),
        (None, None, None, "new_password", "the same as the current one"),
    ],
)
def test_a_refused_change_says_why_beside_its_field_and_changes_nothing(
    web: TestClient,
    make_staff: Callable[..., StaffLogin],
    current: str | None,
    new: str | None,
    again: str | None,
    field: str,
    message: str,
) -> None:
    who = make_staff(Role.VIEWER)
    sign_in(web, who)

    answer = _change(web, current or who.password, new or who.password, again)

    assert answer.status_code == 422  # type: ignore[attr-defined]
    text = answer.text  # type: ignore[attr-defined]
    assert f'id="{field}-error"' in text and message in text
    assert f'aria-describedby="{field}-error"' in text
    assert 'value="' + (current or who.password) + '"' not in text, "a password sent back"
    assert _signed_in(web)
    assert _signs_in(web, who.email, who.password), "the password is unchanged"


def test_guessing_the_current_password_is_throttled_as_at_sign_in(
    web: TestClient, make_staff: Callable[..., StaffLogin]
) -> None:
    """A session left open on a shared computer must not become a free guessing machine for
    the password (which may open other accounts of its owner)."""
    who = make_staff(Role.VIEWER)
    sign_in(web, who)
    statuses = [
        _change(web, f"guess number {n}", NEW).status_code  # type: ignore[attr-defined]
        for n in range(throttle.FREE_TRIES + 1)
    ]

    assert statuses[:-1] == [422] * throttle.FREE_TRIES
    assert statuses[-1] == 429
    refused = _change(web, who.password, NEW)
    assert refused.status_code == 429  # type: ignore[attr-defined]
    assert "Retry-After" in refused.headers  # type: ignore[attr-defined]
    assert 'id="current_password-error"' in refused.text  # type: ignore[attr-defined]


def test_a_copy_of_the_cookie_taken_before_the_change_is_signed_out_by_it(
    web: TestClient,
    second_browser: TestClient,
    make_staff: Callable[..., StaffLogin],
) -> None:
    """A user changes their password because someone may have got into their account: a copy
    of this browser's own cookie (taken from a shared computer, a proxy log) is that someone
    too, and must not outlive the change while this browser stays signed in."""
    who = make_staff(Role.SALES)
    sign_in(web, who)
    stolen = web.cookies.get(SESSION_COOKIE)
    assert stolen is not None

    assert _change(web, who.password, NEW).status_code == 303  # type: ignore[attr-defined]

    assert _signed_in(web), "the browser that changed it stays signed in"
    second_browser.cookies.set(SESSION_COOKIE, stolen, path="/admin")
    assert not _signed_in(second_browser), "the copy taken before the change still signs in"


def test_giving_the_current_password_as_the_new_one_is_no_failed_sign_in(
    web: TestClient, make_staff: Callable[..., StaffLogin]
) -> None:
    """The right current password, typed again as the new one, is refused beside the new
    password, but is not a guess: it must not bring the sign-in delays nearer."""
    who = make_staff(Role.VIEWER)
    sign_in(web, who)
    statuses = [
        _change(web, who.password, who.password).status_code  # type: ignore[attr-defined]
        for _ in range(throttle.FREE_TRIES + 1)
    ]

    assert statuses == [422] * (throttle.FREE_TRIES + 1)
    assert _change(web, who.password, NEW).status_code == 303  # type: ignore[attr-defined]


def test_a_password_made_of_the_users_own_address_is_easy_to_guess() -> None:
    """zxcvbn is told what an attacker tries first: the address, its parts, our company."""
    address = "ana.keller@acme.example"

    assert passwords.password_problem("ana.keller@acme.example", [address]) is not None
    assert passwords.password_problem("keller1234!", [address]) is not None
    assert passwords.password_problem("correct horse battery", [address]) is None
    long = "correct horse battery " * 40  # past zxcvbn's 72 characters: judged on its start
    assert passwords.password_problem(long, [address]) is None
