"""The tracking pages are matched early (they are the busiest), yet shadow no other path."""

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session
from starlette.routing import Mount

from app.config import Settings
from tests.factories import make_offer
from tests.routes import served_routes


@pytest.mark.parametrize(
    ("path", "status", "content_type"),
    [
        ("/healthz", 200, "application/json"),
        ("/metrics", 200, "text/plain"),
        ("/docs", 200, "text/html"),
        ("/openapi.json", 200, "application/json"),
        ("/robots.txt", 200, "text/plain"),
        ("/favicon.ico", 200, "image/svg+xml"),
        ("/admin/login", 200, "text/html"),
        ("/api/v1/offers", 401, "application/json"),
    ],
)
def test_other_paths_are_not_taken_for_codes(
    client: TestClient, path: str, status: int, content_type: str
) -> None:
    response = client.get(path)

    assert response.status_code == status
    assert response.headers["content-type"].startswith(content_type)


def test_the_staff_site_without_its_slash_is_found(client: TestClient) -> None:
    response = client.get("/admin", follow_redirects=False)

    assert response.status_code == 307
    assert response.headers["location"] == "/admin/"


def test_no_other_single_segment_path_is_spelled_like_a_canonical_code(app: FastAPI) -> None:
    """The canonical-code route is matched before every other route: a path of ours that
    looked like a code (ten or 26 upper-case Crockford characters) would be shadowed. Routes
    inside included routers count, each at the path it is served at."""
    from app.tracking.codes import CANONICAL

    paths = [path for path, _ in served_routes(app.router.routes) if "{" not in path]
    mounts = [route.path for route in app.router.routes if isinstance(route, Mount)]

    assert {"/favicon.ico", "/healthz", "/api/v1/offers", "/admin/login"} <= set(paths)
    assert {"/static", "/admin"} <= set(mounts)
    assert [p for p in paths + mounts if CANONICAL.fullmatch(p.strip("/"))] == []


def test_a_canonical_code_and_another_spelling_open_the_same_page(
    client: TestClient, session: Session, settings: Settings
) -> None:
    code = make_offer(session, settings, issued=True).id

    canonical = client.get(f"/{code}")
    spelled = client.get(f"/{code.lower()[:5]}-{code.lower()[5:]}")

    assert canonical.status_code == spelled.status_code == 200
    assert code in canonical.text and code in spelled.text
