"""Security headers on every kind of response, and templates that need no inline script."""

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import Engine
from sqlmodel import Session

from app.config import TEMPLATES_DIR, get_settings
from app.main import create_app
from app.security import PUBLIC_POLICY, HeaderSet, policy_for
from tests.factories import make_offer

COMMON = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def assert_secured(response: Response, *, policy: str = PUBLIC_POLICY) -> None:
    for name, value in COMMON.items():
        assert response.headers.get(name) == value, name
    csp = response.headers["content-security-policy"]
    assert csp == policy
    assert "frame-ancestors 'none'" in csp
    assert response.headers["strict-transport-security"].startswith("max-age=")


def script_sources(csp: str) -> str:
    return next(part for part in csp.split(";") if part.strip().startswith("script-src"))


def test_the_public_policy_runs_no_inline_script_or_style() -> None:
    assert "unsafe-inline" not in PUBLIC_POLICY
    assert "unsafe-eval" not in PUBLIC_POLICY
    assert script_sources(PUBLIC_POLICY).split() == ["script-src", "'self'"]


def test_home_page(client: TestClient) -> None:
    assert_secured(client.get("/"))


def test_tracking_page_sends_no_referrer(client: TestClient, session: Session) -> None:
    offer = make_offer(session, get_settings(), issued=True)

    response = client.get(f"/{offer.id}")

    assert response.status_code == 200
    assert_secured(response)
    assert response.headers["referrer-policy"] == "no-referrer"


def test_error_pages(client: TestClient) -> None:
    not_found = client.get("/01H0WARY2WHGGRF3K72D299T3T")
    bad_code = client.get("/not-a-code!")

    assert not_found.status_code == 404 and bad_code.status_code == 400
    assert_secured(not_found)
    assert_secured(bad_code)


def test_api_answers_and_api_errors(api: TestClient, client: TestClient) -> None:
    assert_secured(api.get("/api/v1/offers"))
    client.headers.pop("Authorization", None)
    unauthorized = client.get("/api/v1/offers")
    assert unauthorized.status_code == 401
    assert_secured(unauthorized)


def test_static_files(client: TestClient) -> None:
    assert_secured(client.get("/static/htmx.min.js"))
    assert_secured(client.get("/favicon.ico"))


def test_a_refused_oversized_body(api: TestClient) -> None:
    response = api.post("/api/v1/offers", content=b"x" * (get_settings().max_request_bytes + 1))

    assert response.status_code == 413
    assert_secured(response)


def test_an_unexpected_error_page(engine: Engine) -> None:
    app = create_app()

    async def boom() -> None:
        raise RuntimeError("bug")

    app.add_api_route("/boom/a/b", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom/a/b")

    assert response.status_code == 500
    assert "Something went wrong" in response.text
    assert_secured(response)
    assert response.headers["x-request-id"]


def test_a_pdf_is_only_kept_out_of_frames(api: TestClient, session: Session) -> None:
    offer = make_offer(session, get_settings())

    response = api.get(f"/api/v1/offers/{offer.id}/pdf")

    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert response.headers["x-frame-options"] == "DENY"


def test_the_api_docs_start_swagger_with_a_nonce_of_their_own(client: TestClient) -> None:
    first = client.get("/docs")
    second = client.get("/docs")

    nonce = re.search(r"'nonce-([^']+)'", first.headers["content-security-policy"])
    assert nonce is not None
    assert f'<script nonce="{nonce.group(1)}">' in first.text
    assert nonce.group(1) not in second.text  # a new one every time
    assert "unsafe-inline" not in script_sources(first.headers["content-security-policy"])
    assert "redoc.standalone" not in client.get("/redoc").text  # it needs Google's fonts


def test_admin_pages_get_their_nonce_policy() -> None:
    policy = policy_for("/admin/offer/list", "text/html", "abc")

    assert "'nonce-abc'" in script_sources(policy)
    assert "unsafe-inline" not in script_sources(policy)
    assert policy_for("/administrator", "text/html", "abc") == PUBLIC_POLICY


@pytest.mark.parametrize(
    ("base_url", "has_hsts"),
    [("https://track.example.com", True), ("http://127.0.0.1:8000", False)],
)
def test_hsts_only_under_https(base_url: str, has_hsts: bool) -> None:
    settings = get_settings().model_copy(update={"public_base_url": base_url})

    names = {name for name, _ in HeaderSet.for_settings(settings).common}

    assert ("Strict-Transport-Security" in names) is has_hsts


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
NONCELESS_SCRIPT = re.compile(r"<script(?![^>]*\b(?:src|nonce)=)[^>]*>", re.I)
EVENT_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
STYLE_ATTRIBUTE = re.compile(r"\sstyle\s*=", re.I)


@pytest.mark.parametrize(
    "template",
    # offers/ is the PDF's template and notifications/mail/ are mail bodies (mail programs
    # ignore stylesheets, so mails style inline); neither is a page under a CSP.
    sorted(p for p in TEMPLATES_DIR.rglob("*.html") if p.parent.name not in ("offers", "mail")),
    ids=lambda p: str(p.relative_to(TEMPLATES_DIR)),
)
def test_web_templates_have_no_inline_script_handler_or_style(template: Path) -> None:
    # offers/ holds the PDF template: WeasyPrint runs no script and is not under a CSP.
    text = template.read_text()

    if template.relative_to(TEMPLATES_DIR).parts[0] == "admin":
        # The staff policy allows scripts that carry the request's nonce, and inline styles.
        assert not NONCELESS_SCRIPT.search(text)
    else:
        assert not INLINE_SCRIPT.search(text)
        assert not STYLE_ATTRIBUTE.search(text)
    assert not EVENT_HANDLER.search(text)


def test_the_staff_site_keeps_its_referrer_so_its_own_posts_name_their_origin(
    client: TestClient,
) -> None:
    # With "no-referrer" a browser sends "Origin: null" on same-site form posts, and the staff
    # CSRF check refuses those; the public pages must never tell other sites their URL.
    assert client.get("/admin/login").headers["Referrer-Policy"] == "same-origin"
    assert client.get("/").headers["Referrer-Policy"] == "no-referrer"
