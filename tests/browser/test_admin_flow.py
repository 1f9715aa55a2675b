"""Sales staff in a real browser: sign in, find an order, activate an offer, push a stage
update and see it on the customer's page; a viewer's attempt to activate is refused; setting
up two-factor sign-in shows the recovery codes once."""

import re
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine
from sqlmodel import Session, select

from app.admin import users
from app.audit import AuditLogEntry
from app.auth.staff import Role
from app.config import get_settings
from app.offers.ids import hyphenate_tracking_id
from app.tracking import service as tracking_service
from tests.factories import make_offer

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
SCREENSHOTS = Path(__file__).parent / "screenshots"
PASSWORD = "correct horse battery"


@pytest.fixture
def desk(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def _sign_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/admin/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Orders per stage")).to_be_visible()


def test_sales_activates_an_offer_and_the_customer_sees_the_update(
    committed: Engine, live_server: str, desk: Page
) -> None:
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        existing = make_offer(session, settings, issued=True, company="Nordwind GmbH")
        tracking_service.activate_offer(session, existing.id, actor="tests", settings=settings)
        offer = make_offer(session, settings, issued=True, company="Acme Hellas SA")
        users.create_user(session, "sales@example.com", Role.SALES, PASSWORD, actor="tests")
        users.create_user(session, "viewer@example.com", Role.VIEWER, PASSWORD, actor="tests")
    requested: list[str] = []
    desk.on("request", lambda request: requested.append(request.url))

    _sign_in(desk, live_server, "sales@example.com")

    # Find the existing order by its tracking ID as someone reads it off a phone call.
    desk.get_by_role("link", name="Orders").click()
    desk.get_by_role("searchbox").fill(hyphenate_tracking_id(existing.tracking_id).lower())
    desk.get_by_role("button", name="Search").click()
    expect(desk.get_by_role("cell", name="Nordwind GmbH")).to_be_visible()

    # Activate the new offer as an order.
    desk.get_by_role("link", name="Offers").click()
    desk.get_by_role("searchbox").fill("acme")
    desk.get_by_role("button", name="Search").click()
    desk.get_by_role("row", name="Acme Hellas SA").get_by_role("link", name="View").click()
    desk.get_by_role("link", name="Activate as order…").click()
    desk.get_by_role("button", name="Yes, activate").click()
    expect(desk.get_by_text("is active")).to_be_visible()
    expect(desk.locator("#current-stage")).to_have_text("Order confirmed")

    # Push a stage update.
    desk.get_by_label("Stage", exact=True).select_option(label="In production")
    desk.get_by_label("Public note").fill("Machining of the pump housings has started.")
    desk.get_by_role("button", name="Add stage update").click()
    expect(desk.get_by_text("Stage update “In production” added")).to_be_visible()
    SCREENSHOTS.mkdir(exist_ok=True)
    desk.screenshot(path=str(SCREENSHOTS / "admin-order.png"), full_page=True)

    # The customer's page by tracking ID shows it.
    desk.goto(f"{live_server}/{hyphenate_tracking_id(offer.tracking_id).lower()}")
    expect(desk.locator(".current-stage")).to_contain_text("In production")
    expect(desk.get_by_text("Machining of the pump housings has started.")).to_be_visible()
    assert all(url.startswith(live_server) for url in requested), "third-party request made"


def test_a_viewer_cannot_activate(committed: Engine, live_server: str, desk: Page) -> None:
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True, company="Acme Hellas SA")
        users.create_user(session, "viewer@example.com", Role.VIEWER, PASSWORD, actor="tests")
        users.create_user(session, "sales@example.com", Role.SALES, PASSWORD, actor="tests")

    _sign_in(desk, live_server, "sales@example.com")
    desk.goto(f"{live_server}/admin/offers/{offer.id}/activate")
    form_html = desk.locator("form", has=desk.get_by_role("button", name="Yes, activate"))
    activate_form = form_html.evaluate("f => f.outerHTML")
    desk.get_by_role("button", name="Sign out").click()

    _sign_in(desk, live_server, "viewer@example.com")
    desk.goto(f"{live_server}/admin/offer/details/{offer.id}")
    expect(desk.get_by_role("link", name="Activate as order…")).to_have_count(0)
    # Even a form that slipped through (kept from a sales session) is refused by the server.
    token = desk.locator("input[name=csrf_token]").first.get_attribute("value")
    with desk.expect_navigation():
        desk.evaluate(
            """([html, token]) => {
                const holder = document.createElement('div');
                holder.innerHTML = html;
                const form = holder.firstElementChild;
                form.querySelector('input[name=csrf_token]').value = token;
                document.body.appendChild(form);
                form.requestSubmit();
            }""",
            [activate_form, token],
        )

    expect(desk.get_by_text("This needs the sales role")).to_be_visible()
    desk.goto(f"{live_server}/admin/offer/details/{offer.id}")
    expect(desk.locator("#offer-status")).to_have_text("issued")


def test_setting_up_two_factor_shows_the_recovery_codes_once_and_a_reload_sends_nothing(
    committed: Engine, live_server: str, desk: Page
) -> None:
    with Session(committed, expire_on_commit=False) as session:
        users.create_user(session, "sales@example.com", Role.SALES, PASSWORD, actor="tests")
    _sign_in(desk, live_server, "sales@example.com")
    desk.goto(f"{live_server}/admin/account")
    desk.get_by_role("button", name="Set up two-factor sign-in").click()
    secret = desk.locator("#totp-secret").inner_text()
    desk.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    desk.get_by_role("button", name="Switch on").click()

    codes = desk.get_by_label("Two-factor sign-in is on: your recovery codes")
    expect(codes).to_have_value(re.compile(r"^([0-9A-Z]{4}-){3}[0-9A-Z]{4}(\n|$)"))
    assert len(codes.input_value().splitlines()) == 10
    assert desk.url.endswith("/admin/account"), desk.url
    desk.reload()  # a GET after the redirect: the browser has no form to send again

    expect(desk.locator("#twofactor-status")).to_contain_text("Recovery codes left: 10")
    assert codes.count() == 0
    with Session(committed) as session:
        switched_on = select(AuditLogEntry).where(AuditLogEntry.action == "staff_user.2fa_on")
        assert len(session.exec(switched_on).all()) == 1
