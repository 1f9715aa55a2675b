"""Sign-in, sessions and CSRF: forged cross-site requests fail, throttling, idle timeout."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, select

from app.admin import users
from app.admin.sessions import StaffSession
from app.admin.throttle import MAX_PER_ADDRESS
from app.audit import AuditLogEntry
from app.auth.models import ApiKey
from app.auth.service import create_api_key
from app.auth.staff import Role, StaffUser
from app.config import get_settings
from app.db import utcnow
from app.offers.models import Offer, OfferStatus
from tests.admin.conftest import PASSWORD, StaffLogin, csrf_from, sign_in
from tests.factories import make_offer

pytestmark = pytest.mark.concurrency


@pytest.fixture
def issued(db: Session) -> str:
    return make_offer(db, get_settings(), issued=True).id


def _status(db: Session, offer_id: str) -> str:
    db.expire_all()
    offer = db.get(Offer, offer_id)
    assert offer is not None
    status = offer.status
    db.rollback()
    return status


def test_a_forged_cross_site_post_fails_and_changes_nothing(
    web: TestClient, as_role: Callable[[Role], str], issued: str, db: Session
) -> None:
    token = as_role(Role.SALES)
    url = f"/admin/offers/{issued}/activate"

    # An evil page can make the browser send the session cookie, but cannot read the token.
    no_token = web.post(url, headers={"Origin": "https://evil.example"})
    wrong_token = web.post(url, data={"csrf_token": "guessed"})
    right_token_wrong_site = web.post(
        url, data={"csrf_token": token}, headers={"Origin": "https://evil.example"}
    )

    assert no_token.status_code == wrong_token.status_code == 403
    assert right_token_wrong_site.status_code == 403
    assert "could not be verified" in no_token.text
    assert _status(db, issued) == OfferStatus.ISSUED

    same_site = web.post(url, data={"csrf_token": token}, headers={"Origin": str(web.base_url)})
    assert same_site.status_code == 200  # followed to the order page
    assert _status(db, issued) == OfferStatus.ORDERED


def test_a_malformed_origin_is_refused_as_cross_site(
    web: TestClient, as_role: Callable[[Role], str], issued: str, db: Session
) -> None:
    token = as_role(Role.SALES)

    response = web.post(
        f"/admin/offers/{issued}/activate",
        data={"csrf_token": token},
        headers={"Origin": "http://[oops"},
    )

    assert response.status_code == 403
    assert "could not be verified" in response.text
    assert _status(db, issued) == OfferStatus.ISSUED


def test_behind_a_tls_proxy_the_public_origin_is_ours(
    web: TestClient, as_role: Callable[[Role], str], issued: str, db: Session
) -> None:
    token = as_role(Role.SALES)
    cookie = "; ".join(f"{name}={value}" for name, value in web.cookies.items())
    # The browser speaks https to the proxy; the proxy speaks http to us.
    url = f"http://track.example.com/admin/offers/{issued}/activate"
    origin = {"Origin": get_settings().public_base_url, "Cookie": cookie}

    garbled = web.post(url, data={"csrf_token": "tökén"}, headers=origin)
    activated = web.post(url, data={"csrf_token": token}, headers=origin)

    assert garbled.status_code == 403
    assert activated.status_code == 200
    assert _status(db, issued) == OfferStatus.ORDERED


def test_sqladmin_forms_and_actions_need_the_token_too(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    token = as_role(Role.ADMIN)
    key, _ = create_api_key(db, "erp", actor="tests")
    key_id = key.id

    created = web.post(
        "/admin/staff-user/create",
        data={"email": "mallory@example.com", "role": "admin", "password": "x" * 12},
    )
    revoked = web.post("/admin/api-key/action/revoke", data={"pks": str(key_id)})
    by_link = web.get(f"/admin/api-key/action/revoke?pks={key_id}")  # a link never changes state

    assert created.status_code == revoked.status_code == 403
    assert by_link.status_code == 405
    db.expire_all()
    assert users.find_by_email(db, "mallory@example.com") is None
    assert db.get(ApiKey, key_id).revoked_at is None  # type: ignore[union-attr]
    db.rollback()

    asked = web.post("/admin/api-key/action/revoke", data={"pks": str(key_id), "csrf_token": token})
    assert asked.status_code == 200 and "Yes, revoke" in asked.text
    assert db.get(ApiKey, key_id).revoked_at is None  # type: ignore[union-attr]
    db.rollback()
    ok = web.post(
        "/admin/api-key/action/revoke",
        data={"pks": str(key_id), "csrf_token": token, "confirmed": "yes"},
    )
    assert ok.status_code == 200 and "Revoked 1 API key" in ok.text


def test_signing_in_needs_the_form_token_and_renews_the_session(
    web: TestClient, make_staff: Callable[..., StaffLogin]
) -> None:
    who = make_staff(Role.VIEWER)
    page = web.get("/admin/login")
    before = csrf_from(page.text)

    forged = web.post("/admin/login", data={"email": who.email, "password": who.password})
    assert forged.status_code == 403

    after = sign_in(web, who)
    assert after != before  # a token planted before sign-in is worthless afterwards


def test_the_session_cookie_is_the_staff_sites_own(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    who = make_staff(Role.VIEWER)
    web.get("/admin/login")
    cookie = web.cookies.jar
    response = web.post(
        "/admin/login",
        data={
            "email": who.email,
            "password": who.password,
            "csrf_token": csrf_from(web.get("/admin/login").text),
        },
        follow_redirects=False,
    )
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith("ot_staff=")
    for attribute in ("path=/admin", "httponly", "samesite=lax", "secure", "max-age=1800"):
        assert attribute in set_cookie.lower()
    assert cookie is not None

    # The public site's CSRF cookie lives beside it; neither replaces the other.
    offer = make_offer(db, get_settings(), issued=True)
    web.get(f"/{offer.id}")
    names = {c.name: c.path for c in web.cookies.jar}
    assert names == {"ot_staff": "/admin", "ot_csrf": "/"}
    assert web.get("/admin/").status_code == 200


def _age_sessions(db: Session, *, started: timedelta, last_seen: timedelta) -> None:
    """Move every staff session's clock back, as if time had passed on the server."""
    db.execute(
        update(StaffSession).values(
            created_at=utcnow() - started, last_seen_at=utcnow() - last_seen
        )
    )
    db.commit()


def test_a_session_ends_after_idle_time_and_after_twelve_hours(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    sign_in(web, make_staff(Role.VIEWER))

    _age_sessions(db, started=timedelta(hours=1), last_seen=timedelta(minutes=5))
    assert web.get("/admin/", follow_redirects=False).status_code == 200

    _age_sessions(db, started=timedelta(hours=1), last_seen=timedelta(minutes=31))
    assert web.get("/admin/", follow_redirects=False).status_code == 302

    sign_in(web, make_staff(Role.SALES))
    _age_sessions(db, started=timedelta(hours=13), last_seen=timedelta(0))
    assert web.get("/admin/", follow_redirects=False).status_code == 302


def test_failed_sign_ins_are_throttled_per_address(
    web: TestClient, make_staff: Callable[..., StaffLogin]
) -> None:
    who = make_staff(Role.VIEWER)
    token = csrf_from(web.get("/admin/login").text)

    for n in range(MAX_PER_ADDRESS):
        data = {"email": f"guess{n}@example.com", "password": "wrong password", "csrf_token": token}
        assert web.post("/admin/login", data=data).status_code == 400
    blocked = web.post(
        "/admin/login", data={"email": who.email, "password": PASSWORD, "csrf_token": token}
    )

    assert blocked.status_code == 429


def test_deactivating_a_user_or_changing_the_password_ends_their_session(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    make_staff(Role.ADMIN)  # the last admin stays
    who = make_staff(Role.SALES)
    sign_in(web, who)
    user_id = db.exec(select(StaffUser.id).where(StaffUser.email == who.email)).one()
    assert user_id is not None
    db.rollback()

    users.set_password(db, user_id, "another long password", actor="tests")
    assert web.get("/admin/", follow_redirects=False).status_code == 302

    sign_in(web, StaffLogin(who.email, "another long password", who.role))
    users.update_user(db, user_id, role=Role.SALES, is_active=False, actor="tests")
    assert web.get("/admin/", follow_redirects=False).status_code == 302
    page = web.get("/admin/login")
    refused = web.post(
        "/admin/login",
        data={
            "email": who.email,
            "password": "another long password",
            "csrf_token": csrf_from(page.text),
        },
    )
    assert refused.status_code == 400
    entries = db.exec(
        select(AuditLogEntry.action)
        .where(AuditLogEntry.entity_id == str(user_id))
        .order_by(col(AuditLogEntry.id))
    ).all()
    assert entries == ["staff_user.create", "staff_user.password", "staff_user.update"]


def test_sign_out_is_a_post_and_a_link_only_asks(
    web: TestClient, as_role: Callable[[Role], str]
) -> None:
    token = as_role(Role.VIEWER)

    asked = web.get("/admin/logout")
    assert asked.status_code == 200 and "Sign out?" in asked.text
    assert web.get("/admin/", follow_redirects=False).status_code == 200

    out = web.post("/admin/logout", data={"csrf_token": token})
    assert "You are signed out" in out.text
    assert web.get("/admin/", follow_redirects=False).status_code == 302
    # The sign-out link opened signed out: signing in does not lead back to "Sign out?".
    again = web.get("/admin/logout", follow_redirects=False)
    assert again.headers["location"] == "/admin/login"


def test_sign_in_returns_to_the_page_asked_for_but_never_to_another_site(
    web: TestClient, make_staff: Callable[..., StaffLogin]
) -> None:
    who = make_staff(Role.VIEWER)
    # sqladmin's pages too: a staff alert's "Open the offer" link ended on the dashboard.
    first = web.get("/admin/order/list", follow_redirects=False)
    assert first.status_code == 302
    assert first.headers["location"].endswith("/admin/login?next=%2Fadmin%2Forder%2Flist")

    redirect = web.get("/admin/settings", follow_redirects=False)
    assert redirect.headers["location"].endswith("/admin/login?next=%2Fadmin%2Fsettings")
    for target, expected in (
        ("/admin/order/list", "/admin/order/list"),
        ("//evil.example/", "/admin/"),
    ):
        token = csrf_from(web.get("/admin/login").text)
        response = web.post(
            "/admin/login",
            data={
                "email": who.email,
                "password": who.password,
                "csrf_token": token,
                "next": target,
            },
            follow_redirects=False,
        )
        assert response.headers["location"].endswith(expected)
        web.cookies.clear()


def test_after_the_session_ended_a_fragment_swaps_in_nothing(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session
) -> None:
    """The editor's totals, posted by htmx while the person types: a redirect to the sign-in
    page would be followed and the whole page swapped in where the totals stand."""
    token = sign_in(web, make_staff(Role.SALES))
    _age_sessions(db, started=timedelta(hours=1), last_seen=timedelta(minutes=31))
    form = {"csrf_token": token, "lines-0-description": "Pump", "lines-0-quantity": "1"}

    totals = web.post(
        "/admin/offers/editor/totals",
        data=form,
        headers={"HX-Request": "true"},
        follow_redirects=False,
    )

    assert totals.status_code == 401 and totals.text == ""
