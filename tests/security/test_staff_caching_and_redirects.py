"""Issue 14.7: no staff page or download stays in the browser's cache. Issue 14.10: no
redirect is built from the Host header the client sent."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.routing import Mount, Route

from app import requestguard
from app.auth.staff import Role
from app.config import get_settings
from app.requestguard import relative_locations
from tests.admin.conftest import StaffLogin, sign_in
from tests.admin.staffroutes import (
    PASSWORD,
    Ids,
    demo_data,
    path_values,
    staff_app,
    staff_downloads,
    staff_pages,
)
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


def _posts(staff: FastAPI, ids: Ids) -> Iterator[str]:
    """A URL of every route of the staff site that takes a POST (or a DELETE)."""
    values: dict[str, object] = {
        **path_values(ids),
        "identity": "offer",
        "pk": ids.issued,
    }
    routes: list[Any] = []
    for included in staff.router.routes:
        routes += getattr(getattr(included, "original_router", None), "routes", [included])
    for mount in [r for r in staff.router.routes if isinstance(r, Mount)]:
        routes += mount.routes
    for route in routes:
        if (
            isinstance(route, APIRoute | Route)
            and route.methods
            and {"POST", "DELETE"} & route.methods
        ):
            params = {name: values[name] for name in route.param_convertors}
            yield "/admin" + route.url_path_for(route.name, **params).rstrip("/")


@pytest.mark.concurrency
def test_every_staff_route_answers_no_store(
    app: FastAPI, web: TestClient, committed: Engine
) -> None:
    """Every page, download and form answer of the staff site, derived from its routes."""
    ids = demo_data(committed)
    staff = staff_app(app)
    assert web.get("/admin/login").headers.get("cache-control") == "no-store"
    sign_in(web, StaffLogin("admin@example.com", PASSWORD, Role.ADMIN))
    pages, downloads = staff_pages(app, ids, committed)[1:], staff_downloads(staff, ids)

    for url in [*pages, *downloads]:
        answer = web.get(url, follow_redirects=False)
        assert answer.headers.get("cache-control") == "no-store", (url, answer.status_code)
        assert answer.status_code == 200 or url.startswith(("/admin/login", "/admin/alerts/mail"))
    posts = list(_posts(staff, ids))
    for url in posts:  # without the form's token: refused, and the refusal is a page too
        answer = web.post(url, follow_redirects=False)
        assert answer.status_code == 403, (url, answer.status_code)
        assert answer.headers.get("cache-control") == "no-store", url
    assert len(pages) > 40 and len(downloads) > 15 and len(posts) > 30


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
        "/lookup/?code=01H0W-ARY2W",  # trailing slash, then the lookup
        "/api/v1/webhooks/",
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


def test_redirects_for_long_hosts_and_queries_are_made_relative_but_not_kept(
    client: TestClient,
) -> None:
    """Parsed Locations are cached for the next redirects; a Location built on a long Host
    header or query string the client chose, each different, must not be kept (a server takes
    a header of megabytes)."""
    requestguard._relative.cache_clear()
    long = "x" * 20_000
    requests = [
        *(("/lookup?code=01H0W-ARY2W", {"Host": f"{n}.{long}.example"}) for n in range(50)),
        *((f"/lookup/?code=01H0W-ARY2W&{n}={long}", {}) for n in range(50)),  # trailing slash
    ]

    for path, headers in requests:
        response = client.get(path, headers=headers, follow_redirects=False)
        assert response.headers["location"].startswith("/")  # still made relative

    assert requestguard._relative.cache_info().currsize == 0
