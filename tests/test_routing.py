"""The tracking pages are matched early (they are the busiest), yet shadow no other path."""

import pytest
from fastapi.testclient import TestClient


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
