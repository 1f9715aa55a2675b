"""Issue 14.3 and 14.13: HEAD and OPTIONS never change anything, on the staff site or off it,
and a HEAD of a tracking page is not a view."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, select

from app.admin import users
from app.auth.models import ApiKey
from app.auth.staff import Role, StaffUser
from app.config import Settings
from app.tracking.models import ScanEvent
from tests.admin.conftest import StaffLogin, sign_in
from tests.factories import make_campaign, make_offer, make_placement


def _scans(session: Session) -> int:
    return session.exec(select(func.count()).select_from(ScanEvent)).one()


def test_head_of_a_tracking_page_records_no_scan(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    spelled = offer.id.lower()  # a spelling that goes through the other route

    for path in (f"/{offer.id}", f"/{spelled}"):
        head = client.head(path)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"].startswith("text/html")
    assert _scans(session) == 0

    assert client.get(f"/{offer.id}").status_code == 200
    assert _scans(session) == 1


def test_head_of_a_campaign_code_records_no_scan(client: TestClient, session: Session) -> None:
    campaign = make_campaign(session)
    assert campaign.id is not None
    placement = make_placement(session, campaign.id, fallback_url="https://shop.example.com/x")

    head = client.head(f"/c/{placement.slug}", follow_redirects=False)
    assert head.status_code == 302 and head.content == b""
    assert head.headers["location"].startswith("https://shop.example.com/x")
    assert _scans(session) == 0

    assert client.get(f"/c/{placement.slug}", follow_redirects=False).status_code == 302
    assert _scans(session) == 1


@pytest.mark.concurrency
@pytest.mark.parametrize("method", ["HEAD", "OPTIONS"])
def test_head_and_options_with_a_form_body_change_nothing_in_sqladmin(
    web: TestClient, make_staff: Callable[..., StaffLogin], db: Session, method: str
) -> None:
    admin = make_staff(Role.ADMIN)
    viewer = make_staff(Role.VIEWER)
    token = sign_in(web, admin)
    viewer_id = users.find_by_email(db, viewer.email).id  # type: ignore[union-attr]
    db.rollback()
    form = {"csrf_token": token}

    web.request(
        method,
        "/admin/staff-user/create",
        data={**form, "email": "mallory@example.com", "role": "admin", "password": "x" * 14},
    )
    web.request(
        method,
        f"/admin/staff-user/edit/{viewer_id}",
        data={**form, "role": "admin", "is_active": "y"},
    )
    web.request(method, "/admin/api-key/create", data={**form, "name": "sneaky"})
    web.request(method, "/admin/logout", data=form)

    db.expire_all()
    assert users.find_by_email(db, "mallory@example.com") is None
    assert db.get(StaffUser, viewer_id).role == Role.VIEWER  # type: ignore[union-attr]
    assert db.exec(select(ApiKey).where(ApiKey.name == "sneaky")).first() is None
    db.rollback()
    assert web.get("/admin/", follow_redirects=False).status_code == 200  # still signed in


@pytest.mark.concurrency
def test_head_of_a_staff_page_answers_like_get_without_a_body(
    web: TestClient, as_role: Callable[[Role], str]
) -> None:
    as_role(Role.ADMIN)

    head = web.head("/admin/staff-user/list")

    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"].startswith("text/html")


def test_a_real_server_answers_head_with_headers_only(live_server: str) -> None:
    import http.client
    from urllib.parse import urlsplit

    address = urlsplit(live_server)
    for path in ("/robots.txt", "/admin/login", "/"):
        connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
        connection.request("HEAD", path)
        response = connection.getresponse()
        # uvicorn keeps the request a HEAD: no body, and the connection stays usable.
        assert response.status == 200, path
        assert response.read() == b""
        assert int(response.headers["content-length"]) > 0
        connection.request("GET", "/robots.txt")
        assert connection.getresponse().status == 200
        connection.close()
