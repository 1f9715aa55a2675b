"""Issue 14.5 (throttle): failed sign-ins slow down one account from one address, with
growing delays, and never keep the owner out from another address."""

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlmodel import Session

from app.admin import throttle, users
from app.admin.throttle import FREE_TRIES, MAX_DELAY, delay_after
from app.auth import passwords
from app.auth.staff import LoginFailure, Role
from app.db import utcnow
from tests.admin.conftest import StaffLogin, csrf_from

pytestmark = pytest.mark.concurrency


def _browser_at(app: FastAPI, address: str) -> TestClient:
    # The session's running client started the app; this one only brings another address.
    return TestClient(app, base_url="https://track.example.com", client=(address, 40000))


def _sign_in(browser: TestClient, email: str, password: str) -> int:
    token = csrf_from(browser.get("/admin/login").text)
    data = {"email": email, "password": password, "csrf_token": token}
    return browser.post("/admin/login", data=data, follow_redirects=False).status_code


def test_delays_grow_and_are_capped() -> None:
    waits = [delay_after(n).total_seconds() for n in range(FREE_TRIES + 6)]

    assert waits[:FREE_TRIES] == [0] * FREE_TRIES
    assert waits[FREE_TRIES:] == [1, 2, 4, 8, 16, 32]
    assert delay_after(100) == MAX_DELAY


@pytest.mark.usefixtures("web")
def test_a_guesser_is_slowed_but_the_owner_signs_in_from_elsewhere(
    app: FastAPI, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    owner = make_staff(Role.ADMIN)
    attacker = _browser_at(app, "198.51.100.66")

    statuses = [_sign_in(attacker, owner.email, "wrong password") for _ in range(FREE_TRIES + 1)]
    late_right = _sign_in(attacker, owner.email, owner.password)
    from_the_office = _sign_in(_browser_at(app, "203.0.113.10"), owner.email, owner.password)

    assert statuses == [400] * FREE_TRIES + [429]
    assert late_right == 429  # the guesser's address waits, even with the right password
    assert from_the_office == 303  # the owner is not locked out


@pytest.mark.usefixtures("web")
def test_after_the_delay_the_next_try_is_allowed_and_the_delay_doubles(
    app: FastAPI, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    owner = make_staff(Role.SALES)
    browser = _browser_at(app, "198.51.100.67")
    for _ in range(FREE_TRIES):
        assert _sign_in(browser, owner.email, "wrong password") == 400
    token = csrf_from(browser.get("/admin/login").text)
    data = {"email": owner.email, "password": "wrong password", "csrf_token": token}

    waiting = browser.post("/admin/login", data=data)
    assert waiting.status_code == 429 and waiting.headers["retry-after"] == "1"
    assert "second" in waiting.text

    db.execute(update(LoginFailure).values(failed_at=utcnow() - timedelta(seconds=2)))
    db.commit()
    assert browser.post("/admin/login", data=data).status_code == 400  # allowed again
    again = browser.post("/admin/login", data=data)
    assert again.status_code == 429 and again.headers["retry-after"] == "2"


def test_guesses_sent_side_by_side_are_counted_while_the_password_is_checked(
    make_staff: Callable[..., StaffLogin], committed: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking a password takes a while (a deliberately slow hash): a guesser who sends the
    next guess before the last one is answered must find the guesses before it counted. Here
    each guess arrives while the one before it is being checked."""
    owner = make_staff(Role.ADMIN)
    who = throttle.attempt(owner.email, "198.51.100.68", key="tests")
    answers: list[int] = []
    verify = passwords.verify_password
    arriving = iter(range(1, FREE_TRIES + 4))

    def guess(n: int) -> None:
        with Session(committed) as session:
            try:
                users.sign_in(session, owner.email, f"guess {n}", who)
            except (users.InvalidCredentials, throttle.TooManyLogins) as refused:
                answers.insert(0, refused.status_code)  # the earlier guess answers after it

    def verify_while_the_next_guess_arrives(hashed: str | None, password: str) -> bool:
        if (n := next(arriving, None)) is not None:
            guess(n)
        return verify(hashed, password)

    monkeypatch.setattr(passwords, "verify_password", verify_while_the_next_guess_arrives)
    guess(0)

    assert answers == [400] * FREE_TRIES + [429]


def test_guesses_arriving_at_the_same_moment_get_the_free_tries_only(
    make_staff: Callable[..., StaffLogin], committed: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight guesses sent at once (a script opening eight connections): each looks at the
    count and adds itself in turn, so three are checked and five told to wait, whatever the
    number of worker threads or processes. The look at the count takes a moment here, as on a
    busy database, so that all eight look before any adds itself unless they take turns."""
    owner = make_staff(Role.ADMIN)
    who = throttle.attempt(owner.email, "198.51.100.70", key="tests")
    check = throttle.check

    def slow_check(session: Session, attempt: throttle.Attempt) -> None:
        check(session, attempt)
        time.sleep(0.2)

    monkeypatch.setattr(throttle, "check", slow_check)
    start = threading.Barrier(8)

    def guess(n: int) -> int:
        start.wait(10)
        with Session(committed) as session:
            try:
                users.sign_in(session, owner.email, f"guess {n}", who)
            except (users.InvalidCredentials, throttle.TooManyLogins) as refused:
                return refused.status_code
        return 200

    with ThreadPoolExecutor(8) as pool:
        answers = sorted(pool.map(guess, range(8)))

    assert answers == [400] * FREE_TRIES + [429] * (8 - FREE_TRIES)
