"""Marketing in a real browser: the campaign dashboard draws its charts, and changing the date
range redraws them through htmx without a page load, within the staff CSP."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine
from sqlmodel import Session, select

from app.admin import users
from app.analytics.models import WebhookEndpoint
from app.auth.staff import Role
from app.config import get_settings
from app.offers import service as offers_service
from tests.analytics.test_attribution import World
from tests.browser.conftest import PHONE

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
SCREENSHOTS = Path(__file__).parent / "screenshots"
PASSWORD = "correct horse battery"


def _sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/admin/analytics/")
    page.get_by_label("E-mail").fill("viewer@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Scans per day")).to_be_visible()


def test_the_date_range_redraws_the_charts(
    committed: Engine, live_server: str, browser: Browser
) -> None:
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        World(session, settings)
        users.create_user(session, "viewer@example.com", Role.VIEWER, PASSWORD, actor="tests")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    requested: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    try:
        _sign_in(page, live_server)
        daily = page.locator("#chart-daily desc")
        expect(daily).to_contain_text("Scans in total 12")
        expect(page.locator("#range-summary")).to_contain_text("30 days")
        expect(page.locator("#chart-estimate-placement title").first).to_contain_text(
            "posterior mean"
        )
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "campaign-dashboard.png"), full_page=True)

        # A marker on the window survives an htmx swap, never a page load.
        page.evaluate("window.sameDocument = true")
        today = offers_service.today(settings)
        page.get_by_label("From", exact=True).fill((today - timedelta(days=1)).isoformat())
        page.get_by_role("button", name="Show").click()
        expect(daily).to_contain_text("Scans in total 2")
        expect(page.locator("#range-summary")).to_contain_text("2 days")
        # The placement chart now only has the offer's two scans, one per placement.
        expect(page.locator("#chart-by-placement desc")).to_contain_text("P1: Scans 1")
        assert page.evaluate("window.sameDocument") is True
        assert f"from={(today - timedelta(days=1)).isoformat()}" in page.url  # linkable range
        assert any("/admin/analytics/?from=" in url for url in requested)  # htmx's own GET
        assert all(url.startswith(live_server) for url in requested), "third-party request"
        assert not [p for p in problems if "Content Security Policy" in p], problems

        phone = browser.new_context(**PHONE)
        small = phone.new_page()
        # Playwright types what cookies() returns (Cookie) apart from what add_cookies() takes
        # (SetCookieParam), though the one is a valid instance of the other.
        small.context.add_cookies(context.cookies())  # type: ignore[arg-type]
        small.goto(f"{live_server}/admin/analytics/")
        expect(small.locator("#chart-daily desc")).to_contain_text("Scans in total 12")
        small.screenshot(path=str(SCREENSHOTS / "campaign-dashboard-360.png"), full_page=True)
        phone.close()
    finally:
        context.close()


def test_a_new_webhook_secret_is_shown_whole_on_a_phone(
    committed: Engine, live_server: str, browser: Browser
) -> None:
    with Session(committed, expire_on_commit=False) as session:
        users.create_user(session, "admin@example.com", Role.ADMIN, PASSWORD, actor="tests")
    phone = browser.new_context(**PHONE)
    page = phone.new_page()
    try:
        page.goto(f"{live_server}/admin/analytics/webhooks")
        page.get_by_label("E-mail").fill("admin@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_label("URL").fill("https://warehouse.example.com/offertrack/hooks/incoming")
        page.get_by_role("button", name="Add endpoint").click()
        secret = page.get_by_label("Signing secret")
        expect(secret).to_have_value(re.compile(r"^whsec_[\w-]{20,}$"))
        # The secret is shown this once: all of it must be readable without scrolling inside
        # the field, and the long URL must not push the page sideways.
        whole = "e => e.scrollWidth <= e.clientWidth && e.scrollHeight <= e.clientHeight"
        assert secret.evaluate(whole), "secret cut off"
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["viewport"]["width"]
        page.screenshot(path=str(SCREENSHOTS / "webhook-secret-360.png"), full_page=True)
    finally:
        phone.close()


def test_reloading_the_page_of_a_new_webhook_adds_no_second_one_nor_shows_the_secret_again(
    committed: Engine, live_server: str, browser: Browser
) -> None:
    with Session(committed, expire_on_commit=False) as session:
        users.create_user(session, "admin@example.com", Role.ADMIN, PASSWORD, actor="tests")
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{live_server}/admin/analytics/webhooks")
        page.get_by_label("E-mail").fill("admin@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_label("URL").fill("https://warehouse.example.com/hooks")
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.get_by_label("Signing secret")).to_have_value(re.compile(r"^whsec_"))
        secret = page.get_by_label("Signing secret").input_value()
        assert re.search(r"/admin/analytics/webhooks/\d+$", page.url), page.url

        page.reload()  # a GET after the redirect: the browser has no form to send again

        expect(page.get_by_text("Delivery log")).to_be_visible()
        assert page.get_by_label("Signing secret").count() == 0
        assert secret not in page.content()
        with Session(committed) as session:
            assert len(session.exec(select(WebhookEndpoint)).all()) == 1
    finally:
        context.close()


def test_send_test_event_shows_why_it_was_not_delivered(
    committed: Engine, live_server: str, browser: Browser
) -> None:
    """The server here allows no internal network, so a receiver on loopback is refused: the
    page it redirects to says so in words, once."""
    with Session(committed, expire_on_commit=False) as session:
        users.create_user(session, "admin@example.com", Role.ADMIN, PASSWORD, actor="tests")
        endpoint = WebhookEndpoint(
            url="http://127.0.0.1:9/hooks", secret="whsec_x", event_types=["scan.created"]
        )
        session.add(endpoint)
        session.commit()
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{live_server}/admin/analytics/webhooks/{endpoint.id}")
        page.get_by_label("E-mail").fill("admin@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="Send test event").click()

        expect(page.get_by_text("Test event not delivered")).to_be_visible()
        expect(page.get_by_text("points to an internal address (127.0.0.1)")).to_be_visible()
        page.screenshot(path=str(SCREENSHOTS / "webhook-test-event.png"), full_page=True)
        page.reload()
        expect(page.get_by_role("heading", name="Delivery log (latest 100)")).to_be_visible()
        assert page.get_by_text("Test event not delivered").count() == 0
    finally:
        context.close()
