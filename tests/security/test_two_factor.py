"""Issue 14.5 (two factors): optional TOTP sign-in for staff with single-use recovery codes,
compulsory for admins when OFFERTRACK_REQUIRE_ADMIN_2FA is set."""

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.admin import throttle, twofactor, users
from app.audit import AuditLogEntry
from app.auth.staff import Role, StaffUser
from app.config import get_settings
from app.errors import Conflict
from app.offers.models import Offer, OfferStatus
from tests.admin.conftest import StaffLogin, csrf_from, session_cookie_text, sign_in
from tests.factories import make_offer

pytestmark = pytest.mark.concurrency


def _password_step(web: TestClient, who: StaffLogin) -> TestClient:
    page = web.get("/admin/login")
    answer = web.post(
        "/admin/login",
        data={"email": who.email, "password": who.password, "csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/login/2fa"
    return web


def _enter(web: TestClient, code: str, follow: bool = False) -> object:
    page = web.get("/admin/login/2fa")
    return web.post(
        "/admin/login/2fa",
        data={"code": code, "csrf_token": csrf_from(page.text)},
        follow_redirects=follow,
    )


def _next_code(secret: str) -> str:
    """The app's code of the next 30 s step: the current one went into the enrolment, and a
    code works once."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def _signed_in(web: TestClient) -> bool:
    return web.get("/admin/", follow_redirects=False).status_code == 200


def _last_login(db: Session, who: StaffLogin) -> datetime | None:
    query = select(StaffUser.last_login_at).where(StaffUser.email == who.email)
    with Session(db.get_bind()) as fresh:
        return fresh.exec(query).one()


def _enrol_from_account_page(web: TestClient, token: str) -> tuple[str, list[str]]:
    web.post("/admin/account/2fa/start", data={"csrf_token": token})
    page = web.get("/admin/account")
    assert "<svg" in page.text  # the QR code, inline: no request to another site
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text)
    assert secret
    done = web.post(
        "/admin/account/2fa/confirm",
        data={"code": pyotp.TOTP(secret.group(1)).now(), "csrf_token": token},
        follow_redirects=False,
    )
    assert done.status_code == 303
    return secret.group(1), _recovery_codes(web.get(done.headers["location"]).text)


def _recovery_codes(html: str) -> list[str]:
    """The recovery codes the page shows (in the box of a secret shown once), or none."""
    box = re.search(r'id="secret-value">([^<]*)</textarea>', html)
    codes = re.findall(r"^[0-9A-Z]{4}(?:-[0-9A-Z]{4}){3}$", box.group(1), re.M) if box else []
    assert codes == [] or len(codes) == twofactor.RECOVERY_CODES
    return codes


def _confirmations(db: Session, who: StaffLogin) -> int:
    with Session(db.get_bind()) as fresh:
        done = fresh.exec(select(AuditLogEntry).where(AuditLogEntry.action == "staff_user.2fa_on"))
        return len([entry for entry in done if who.email in entry.summary])


def test_confirming_the_set_up_redirects_and_the_next_page_shows_the_codes_once(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    who = make_staff(Role.SALES)
    token = sign_in(web, who)
    web.post("/admin/account/2fa/start", data={"csrf_token": token})
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', web.get("/admin/account").text)
    assert secret

    answer = web.post(
        "/admin/account/2fa/confirm",
        data={"code": pyotp.TOTP(secret.group(1)).now(), "csrf_token": token},
        follow_redirects=False,
    )
    shown = web.get(answer.headers["location"])
    reloaded = web.get(answer.headers["location"])

    assert answer.status_code == 303 and answer.headers["location"].endswith("/admin/account")
    codes = _recovery_codes(shown.text)
    assert len(codes) == twofactor.RECOVERY_CODES
    assert not any(code in answer.text + answer.headers["location"] for code in codes)
    assert not any(code in session_cookie_text(web) for code in codes)  # sealed there
    assert _recovery_codes(reloaded.text) == [] and "your recovery codes" not in reloaded.text
    assert "Recovery codes left: 10" in reloaded.text  # the reload changed nothing
    assert _confirmations(db, who) == 1


def test_enrolment_then_sign_in_needs_the_code(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    who = make_staff(Role.SALES)
    token = sign_in(web, who)
    secret, _ = _enrol_from_account_page(web, token)
    assert "On: signing in needs a code" in web.get("/admin/account").text
    web.post("/admin/logout", data={"csrf_token": token})

    user = db.exec(select(StaffUser).where(StaffUser.email == who.email)).one()
    user.last_login_at = None
    db.add(user)
    db.commit()
    _password_step(web, who)
    assert not _signed_in(web)  # the password alone is not enough
    assert _last_login(db, who) is None  # nor is it a sign-in to show in the users list
    wrong = _enter(web, "000000")
    assert wrong.status_code == 422  # type: ignore[attr-defined]
    assert 'id="code-error"' in wrong.text  # type: ignore[attr-defined]
    right = _enter(web, _next_code(secret))

    assert right.status_code == 303  # type: ignore[attr-defined]
    assert _signed_in(web)
    assert _last_login(db, who) is not None


def test_a_code_works_once(web: TestClient, make_staff: Callable[..., StaffLogin]) -> None:
    who = make_staff(Role.VIEWER)
    token = sign_in(web, who)
    secret, _ = _enrol_from_account_page(web, token)
    web.post("/admin/logout", data={"csrf_token": token})
    code = _next_code(secret)
    _password_step(web, who)
    assert _enter(web, code).status_code == 303  # type: ignore[attr-defined]
    web.post("/admin/logout", data={"csrf_token": csrf_from(web.get("/admin/logout").text)})

    _password_step(web, who)
    replayed = _enter(web, code)

    assert replayed.status_code == 422  # type: ignore[attr-defined]
    assert not _signed_in(web)


def test_a_recovery_code_signs_in_once(
    web: TestClient, make_staff: Callable[..., StaffLogin]
) -> None:
    who = make_staff(Role.VIEWER)
    token = sign_in(web, who)
    _, codes = _enrol_from_account_page(web, token)
    web.post("/admin/logout", data={"csrf_token": token})

    _password_step(web, who)
    assert _enter(web, codes[0].lower()).status_code == 303  # type: ignore[attr-defined]
    assert "Recovery codes left: 9" in web.get("/admin/account").text
    web.post("/admin/logout", data={"csrf_token": csrf_from(web.get("/admin/logout").text)})
    _password_step(web, who)

    assert _enter(web, codes[0]).status_code == 422  # type: ignore[attr-defined]


def _sent_side_by_side(
    browsers: list[TestClient], code: str, monkeypatch: pytest.MonkeyPatch
) -> list[int]:
    """Each browser sends ``code`` at once, and each request has read the user's row and
    found the code right before either uses it up (RFC 6238 section 5.2's second attempt)."""
    all_checked = threading.Barrier(len(browsers), timeout=10)
    claim = twofactor._claim

    def claim_once_all_have_checked(*args: Any, **kwargs: Any) -> bool:
        all_checked.wait()
        return claim(*args, **kwargs)

    monkeypatch.setattr(twofactor, "_claim", claim_once_all_have_checked)
    with ThreadPoolExecutor(len(browsers)) as pool:
        answers = pool.map(lambda browser: _enter(browser, code).status_code, browsers)  # type: ignore[attr-defined]
        return sorted(answers)


def test_one_code_sent_twice_side_by_side_signs_in_once(
    web: TestClient,
    second_browser: TestClient,
    make_staff: Callable[..., StaffLogin],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    who = make_staff(Role.VIEWER)
    secret, _ = _enrol_from_account_page(web, sign_in(web, who))
    browsers = [_password_step(b, who) for b in (web, second_browser)]
    assert not any(_signed_in(b) for b in browsers)

    answers = _sent_side_by_side(browsers, _next_code(secret), monkeypatch)

    assert answers == [303, 422]
    assert sorted(_signed_in(b) for b in browsers) == [False, True]


def test_one_recovery_code_sent_twice_side_by_side_signs_in_once(
    web: TestClient,
    second_browser: TestClient,
    make_staff: Callable[..., StaffLogin],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    who = make_staff(Role.VIEWER)
    _, codes = _enrol_from_account_page(web, sign_in(web, who))
    browsers = [_password_step(b, who) for b in (web, second_browser)]

    answers = _sent_side_by_side(browsers, codes[0], monkeypatch)

    assert answers == [303, 422]
    assert sorted(_signed_in(b) for b in browsers) == [False, True]
    signed_in = next(b for b in browsers if _signed_in(b))
    assert "Recovery codes left: 9" in signed_in.get("/admin/account").text


def test_switching_off_needs_a_code(web: TestClient, make_staff: Callable[..., StaffLogin]) -> None:
    who = make_staff(Role.SALES)
    token = sign_in(web, who)
    secret, _ = _enrol_from_account_page(web, token)

    refused = web.post("/admin/account/2fa/disable", data={"code": "123", "csrf_token": token})
    assert refused.status_code == 422
    off = web.post(
        "/admin/account/2fa/disable",
        data={"code": _next_code(secret), "csrf_token": token},
    )
    assert "Two-factor sign-in is off" in off.text
    web.post("/admin/logout", data={"csrf_token": token})
    assert sign_in(web, who)  # the password alone again


def test_wrong_codes_to_switch_it_off_are_throttled_like_those_at_sign_in(
    web: TestClient, make_staff: Callable[..., StaffLogin]
) -> None:
    """Whoever finds a session left open cannot try the million codes to switch the second
    factor off: after the free tries they are told to wait, and the factor stays on."""
    who = make_staff(Role.SALES)
    token = sign_in(web, who)
    secret, _ = _enrol_from_account_page(web, token)

    statuses = [
        web.post(
            "/admin/account/2fa/disable", data={"code": "111111", "csrf_token": token}
        ).status_code
        for _ in range(4)
    ]
    right_but_waiting = web.post(
        "/admin/account/2fa/disable", data={"code": _next_code(secret), "csrf_token": token}
    )

    assert statuses == [422, 422, 422, 429]
    assert right_but_waiting.status_code == 429 and "Retry-After" in right_but_waiting.headers
    assert "On: signing in needs a code" in web.get("/admin/account").text


def test_a_second_factor_is_throttled_like_a_password(
    web: TestClient, make_staff: Callable[..., StaffLogin]
) -> None:
    who = make_staff(Role.VIEWER)
    token = sign_in(web, who)
    _enrol_from_account_page(web, token)
    web.post("/admin/logout", data={"csrf_token": token})
    _password_step(web, who)

    statuses = [_enter(web, "111111").status_code for _ in range(4)]  # type: ignore[attr-defined]

    assert statuses == [422, 422, 422, 429]


def test_codes_sent_side_by_side_are_counted_while_each_is_checked(
    make_staff: Callable[..., StaffLogin], db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each code arrives while the one before it is being checked: the fourth finds three
    counted and is refused, as one after the other (the codes are a million only)."""
    who = make_staff(Role.VIEWER)
    staff = users.load_active(db, users.find_by_email(db, who.email).id or 0)  # type: ignore[union-attr]
    assert staff is not None
    secret = twofactor.begin_enrolment(db, staff)
    twofactor.confirm_enrolment(db, staff, pyotp.TOTP(secret).now())
    right = {pyotp.TOTP(secret).at(time.time() + step) for step in (-60, -30, 0, 30, 60)}
    wrong = [code for code in (f"{n:06d}" for n in range(20)) if code not in right]
    attempt = throttle.attempt(who.email, "198.51.100.69", key="tests")
    answers: list[int] = []
    verify = twofactor.verify
    arriving = iter(range(1, 7))

    def enter(n: int) -> None:
        with Session(db.get_bind()) as session:
            try:
                twofactor.check_second_factor(session, staff, wrong[n], attempt)
            except (twofactor.WrongCode, throttle.TooManyLogins) as refused:
                answers.insert(0, refused.status_code)  # the earlier code answers after it

    def verify_while_the_next_code_arrives(session: Session, user_id: int, code: str) -> bool:
        if (n := next(arriving, None)) is not None:
            enter(n)
        return verify(session, user_id, code)

    monkeypatch.setattr(twofactor, "verify", verify_while_the_next_code_arrives)
    enter(0)

    assert answers == [422, 422, 422, 429]


@pytest.fixture
def admins_need_2fa(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "require_admin_2fa", True)


@pytest.mark.usefixtures("admins_need_2fa")
def test_an_admin_without_2fa_must_enrol_before_the_session_starts(
    web: TestClient, make_staff: Callable[..., StaffLogin]
) -> None:
    admin = make_staff(Role.ADMIN)
    _password_step(web, admin)
    page = web.get("/admin/login/2fa")
    assert "Set up two-factor sign-in" in page.text and "<svg" in page.text
    assert not _signed_in(web)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text)
    assert secret

    done = _enter(web, pyotp.TOTP(secret.group(1)).now())

    assert done.status_code == 303  # type: ignore[attr-defined]
    landing = done.headers["location"]  # type: ignore[attr-defined]
    assert landing.endswith("/admin/")
    assert len(_recovery_codes(web.get(landing).text)) == twofactor.RECOVERY_CODES
    assert _recovery_codes(web.get(landing).text) == []  # shown once
    assert _signed_in(web)
    account = web.get("/admin/account").text
    assert "Admins of this site must keep it on" in account


@pytest.mark.usefixtures("admins_need_2fa")
def test_other_roles_may_still_sign_in_with_a_password(
    web: TestClient, make_staff: Callable[..., StaffLogin]
) -> None:
    assert sign_in(web, make_staff(Role.SALES))


NOW_REQUIRED = "Admins must now sign in with two-factor sign-in"


def _enrol_at_sign_in(web: TestClient, who: StaffLogin) -> str:
    """Password, then the set-up page's secret confirmed with its first code; returns the CSRF
    token of the new session."""
    _password_step(web, who)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', web.get("/admin/login/2fa").text)
    assert secret
    _enter(web, pyotp.TOTP(secret.group(1)).now())
    home = web.get("/admin/").text
    assert len(_recovery_codes(home)) == twofactor.RECOVERY_CODES
    return csrf_from(home)


def _activated(db: Session, offer_id: str) -> bool:
    db.expire_all()
    offer = db.get(Offer, offer_id)
    ordered = offer is not None and offer.status == OfferStatus.ORDERED
    db.rollback()
    return ordered


def test_an_admin_session_begun_on_the_password_alone_ends_when_2fa_becomes_required(
    web: TestClient, make_staff: Callable[..., StaffLogin], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = make_staff(Role.ADMIN)
    sign_in(web, admin)
    monkeypatch.setattr(get_settings(), "require_admin_2fa", True)

    turned_away = web.get("/admin/", follow_redirects=False)

    assert turned_away.status_code == 302
    assert turned_away.headers["location"].endswith("/admin/login")
    login_page = web.get(turned_away.headers["location"])
    assert NOW_REQUIRED in login_page.text
    assert not _signed_in(web)
    _enrol_at_sign_in(web, admin)
    assert _signed_in(web)
    assert web.get("/admin/settings").status_code == 200


def test_an_admin_session_begun_on_the_password_alone_cannot_act_once_2fa_is_required(
    web: TestClient,
    make_staff: Callable[..., StaffLogin],
    db: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    offer = make_offer(db, get_settings(), issued=True)
    admin = make_staff(Role.ADMIN)
    token = sign_in(web, admin)
    monkeypatch.setattr(get_settings(), "require_admin_2fa", True)
    activate = f"/admin/offers/{offer.id}/activate"

    refused = web.post(activate, data={"csrf_token": token}, follow_redirects=False)

    assert refused.status_code == 303
    assert NOW_REQUIRED in web.get(refused.headers["location"]).text
    assert not _activated(db, offer.id)
    token = _enrol_at_sign_in(web, admin)
    assert "is active" in web.post(activate, data={"csrf_token": token}).text
    assert _activated(db, offer.id)


def test_other_roles_sessions_go_on_when_admins_must_use_2fa(
    web: TestClient,
    make_staff: Callable[..., StaffLogin],
    db: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    offer = make_offer(db, get_settings(), issued=True)
    token = sign_in(web, make_staff(Role.SALES))
    monkeypatch.setattr(get_settings(), "require_admin_2fa", True)

    done = web.post(f"/admin/offers/{offer.id}/activate", data={"csrf_token": token})

    assert "is active" in done.text
    assert _signed_in(web)


def test_the_cli_resets_a_lost_second_factor(
    web: TestClient, make_staff: Callable[..., StaffLogin]
) -> None:
    from typer.testing import CliRunner

    from app.cli import cli

    who = make_staff(Role.SALES)
    token = sign_in(web, who)
    _enrol_from_account_page(web, token)

    result = CliRunner().invoke(cli, ["reset-2fa", who.email])

    assert result.exit_code == 0, result.output
    assert not _signed_in(web)  # the sessions ended with it
    assert sign_in(web, who)  # and the password alone signs in again


@pytest.mark.usefixtures("admins_need_2fa")
def test_an_admin_cannot_switch_it_off_while_it_is_required(
    web: TestClient, make_staff: Callable[..., StaffLogin]
) -> None:
    admin = make_staff(Role.ADMIN)
    _password_step(web, admin)
    page = web.get("/admin/login/2fa")
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text)
    assert secret
    _enter(web, pyotp.TOTP(secret.group(1)).now())
    token = csrf_from(web.get("/admin/account").text)

    refused = web.post(
        "/admin/account/2fa/disable",
        data={"code": _next_code(secret.group(1)), "csrf_token": token},
    )

    assert refused.status_code == 409
    assert "Admins must sign in with two factors" in refused.text
    web.post("/admin/logout", data={"csrf_token": token})
    _password_step(web, admin)  # the second step is still asked for
    assert not _signed_in(web)


def test_the_password_again_does_not_forgive_wrong_codes(
    web: TestClient, make_staff: Callable[..., StaffLogin]
) -> None:
    """Someone who knows the password but not the phone cannot wipe their wrong codes by
    giving the password again between guesses: the million codes stay throttled."""
    who = make_staff(Role.VIEWER)
    token = sign_in(web, who)
    _enrol_from_account_page(web, token)
    web.post("/admin/logout", data={"csrf_token": token})

    statuses = []
    for _ in range(4):
        _password_step(web, who)  # the password is right: its step forgives its own count
        statuses.append(_enter(web, "111111").status_code)  # type: ignore[attr-defined]

    assert statuses == [422, 422, 422, 429]


def test_a_set_up_confirmed_twice_side_by_side_keeps_the_codes_its_page_showed(
    make_staff: Callable[..., StaffLogin],
    db: Session,
    committed: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two confirmations of one set-up cross (codes of two steps, one read before the other's
    commit): the first switches two-factor sign-in on and its recovery codes work; the second
    changes nothing and says it is on already. Before, the second wrote its own codes over
    the first's, which its page had shown as the ones to keep."""
    if db.get_bind().dialect.name == "sqlite":
        pytest.skip("SQLite's transactions hold the one write lock from the start: no crossing")
    who = make_staff(Role.SALES)
    staff = users.load_active(db, users.find_by_email(db, who.email).id or 0)  # type: ignore[union-attr]
    assert staff is not None
    secret = twofactor.begin_enrolment(db, staff)
    totp = pyotp.TOTP(secret)
    real_match = twofactor._matching_step
    first_codes: list[str] = []

    def the_other_confirms_meanwhile(row: Any, code: str) -> int | None:
        step = real_match(row, code)
        monkeypatch.setattr(twofactor, "_matching_step", real_match)
        with Session(committed) as other:
            first_codes.extend(twofactor.confirm_enrolment(other, staff, totp.now()))
        return step

    monkeypatch.setattr(twofactor, "_matching_step", the_other_confirms_meanwhile)
    with pytest.raises(Conflict):
        twofactor.confirm_enrolment(db, staff, totp.at(time.time() + 30))
    db.rollback()

    assert twofactor.is_enabled(db, staff.id)
    db.rollback()
    assert twofactor.verify(db, staff.id, first_codes[0])
