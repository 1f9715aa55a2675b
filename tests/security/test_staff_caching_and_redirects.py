"""Issue 14.7: no staff page or download stays in the browser's cache. Issue 14.10: no
redirect is built from the Host header the client sent."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth.staff import Role
from app.config import get_settings
from app.requestguard import relative_locations
from tests.factories import make_offer


@pytest.mark.concurrency
def test_every_staff_page_and_download_is_no_store(
    web: TestClient, as_role: Callable[[Role], str], db: Session
) -> None:
    offer = make_offer(db, get_settings(), issued=True)
    as_role(Role.ADMIN)
    urls = [
        "/admin/login",
        "/admin/",
        "/admin/offer/list",
        f"/admin/offer/details/{offer.id}",
        "/admin/offer/export/csv",
        f"/admin/offers/{offer.id}/pdf",
        "/admin/analytics/",
        "/admin/analytics/csv/funnel",
        "/admin/settings",
        "/admin/no-such-page",
    ]

    for url in urls:
        response = web.get(url)
        assert response.headers.get("cache-control") == "no-store", url
    # sqladmin's own static files may be cached as usual.
    assert web.get("/admin/statics/css/main.css").headers.get("cache-control") != "no-store"


def test_api_csv_exports_are_no_store(api: TestClient) -> None:
    for url in ("/api/v1/analytics/export/scans.csv", "/api/v1/analytics/funnel?format=csv"):
        assert api.get(url).headers["cache-control"] == "no-store", url


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/offers/",  # trailing slash
        "/lookup?code=01H0W-ARY2W",
        "/admin",
        "/admin/offer/list",  # sign-in first
        "/admin/analytics/",  # a staff page of our own, sign-in first
    ],
)
def test_redirects_never_name_the_host_the_client_sent(client: TestClient, path: str) -> None:
    response = client.get(path, headers={"Host": "evil.example"}, follow_redirects=False)

    assert response.status_code in (301, 302, 303, 307, 308)
    location = response.headers["location"]
    assert "evil.example" not in location
    assert location.startswith("/")


def test_a_redirect_to_another_site_is_kept(client: TestClient, session: Session) -> None:
    from tests.factories import make_campaign, make_placement

    campaign = make_campaign(session)
    assert campaign.id is not None
    placement = make_placement(session, campaign.id, fallback_url="https://shop.example.com/x")

    response = client.get(f"/c/{placement.slug}", follow_redirects=False)

    assert response.headers["location"].startswith("https://shop.example.com/x")


def test_a_location_back_here_never_becomes_a_link_to_another_site() -> None:
    """A redirect to our own ``http://host//evil.example/x`` (a path the client chose) made
    relative must not read ``//evil.example/x``, which browsers take for another site."""
    scope = {"headers": [(b"host", b"track.example.com")], "server": ("127.0.0.1", 8000)}
    raw = [(b"location", b"http://track.example.com//evil.example/x?y=1")]

    relative_locations(raw, scope)

    assert raw == [(b"location", b"/evil.example/x?y=1")]
