"""The pages with JavaScript turned off: the timeline is there, refreshing is a plain link,
accepting is a plain form post, and the pages have landmarks and labelled controls; in the
staff site "select all" and the routing rules' row buttons work by plain page loads."""

import re
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine
from sqlmodel import Session

from app.admin import users
from app.auth.service import create_api_key
from app.auth.staff import Role
from app.config import get_settings
from app.offers.models import Offer, OfferStatus
from app.tracking import service as tracking_service
from tests.browser.conftest import PHONE
from tests.factories import make_campaign, make_creative, make_offer, make_placement

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
STAFF_PASSWORD = "correct horse battery"


@pytest.fixture
def no_js_phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(**PHONE, java_script_enabled=False)
    page = context.new_page()
    yield page
    context.close()


def _assert_landmarks_and_labels(page: Page) -> None:
    for role in ("banner", "main", "contentinfo"):
        expect(page.get_by_role(role)).to_have_count(1)
    controls = page.locator(
        "input:not([type=hidden]):not([type=submit]):not([type=button]), textarea, select"
    )
    for index in range(controls.count()):
        control_id = controls.nth(index).get_attribute("id")
        assert control_id, f"form control #{index} has no id for a label to name"
        label = page.locator(f'label[for="{control_id}"]')
        expect(label).to_have_count(1)
        # text_content: a closed <details> renders no text, yet its label is there
        assert (label.text_content() or "").strip(), f"the label of #{control_id} is empty"
    buttons = page.locator("button, input[type=submit]")
    for index in range(buttons.count()):
        text = buttons.nth(index).text_content() or ""
        assert text.strip(), f"button #{index} has no text"


def test_order_page_shows_and_refreshes_the_timeline_without_javascript(
    committed: Engine, live_server: str, no_js_phone: Page
) -> None:
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True, company="Acme Hellas SA")
        order = tracking_service.activate_offer(session, offer.id, actor="tests", settings=settings)
        _, token = create_api_key(session, "browser-test", actor="tests")

    for code in (order.id, order.tracking_id):
        no_js_phone.goto(f"{live_server}/{code}")
        expect(no_js_phone.get_by_role("heading", name="Order progress")).to_be_visible()
        expect(no_js_phone.locator(".current-stage")).to_contain_text("Order confirmed")
        _assert_landmarks_and_labels(no_js_phone)

    # Through the server's API, as an integration would: the server's page cache hears of it.
    response = httpx.post(
        f"{live_server}/api/v1/orders/{order.tracking_id}/updates",
        json={"stage": "In production", "public_note": "Machining started"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201
    with no_js_phone.expect_navigation():  # no htmx to swap it in place: a plain page load
        no_js_phone.get_by_role("link", name="Refresh").click()

    expect(no_js_phone.locator(".current-stage")).to_contain_text("In production")
    expect(no_js_phone.get_by_text("Machining started")).to_be_visible()


def test_accepting_an_offer_without_javascript(
    committed: Engine, live_server: str, no_js_phone: Page
) -> None:
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True, company="Nordwind GmbH")

    no_js_phone.goto(f"{live_server}/")
    _assert_landmarks_and_labels(no_js_phone)
    no_js_phone.goto(f"{live_server}/{offer.id}")
    _assert_landmarks_and_labels(no_js_phone)
    no_js_phone.get_by_label("Your name").fill("Maria Papadopoulou")
    no_js_phone.get_by_label(re.compile("Purchase order number")).fill("PO-2026-117")
    no_js_phone.get_by_role("checkbox", name="I accept this offer and its conditions").check()
    no_js_phone.get_by_role("button", name="Accept offer").click()

    expect(no_js_phone.get_by_role("heading", name=re.compile("Thank you"))).to_be_visible()
    no_js_phone.get_by_role("link", name="Back to the offer").click()
    expect(no_js_phone.locator(".status")).to_have_text("Accepted")
    expect(no_js_phone.get_by_text("by Maria Papadopoulou, PO PO-2026-117")).to_be_visible()
    with Session(committed) as session:
        accepted = session.get(Offer, offer.id)
        assert accepted is not None
        assert accepted.status == OfferStatus.ACCEPTED
        assert accepted.accepted_by_name == "Maria Papadopoulou"


def _staff_sign_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/admin/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Orders per stage")).to_be_visible()


def test_staff_select_all_and_write_routing_rules_without_javascript(
    committed: Engine, live_server: str, no_js_phone: Page
) -> None:
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        for company in ("Nordwind GmbH", "Acme Hellas SA"):
            offer = make_offer(session, settings, issued=True, company=company)
            tracking_service.activate_offer(session, offer.id, actor="tests", settings=settings)
        campaign = make_campaign(session, name="Spring fair")
        make_creative(session, campaign.id or 0, name="Blue poster")
        make_creative(session, campaign.id or 0, name="Green poster")
        placement = make_placement(session, campaign.id or 0, name="Table tent")
        users.create_user(session, "sales@example.com", Role.SALES, STAFF_PASSWORD, actor="t")
    page = no_js_phone
    _staff_sign_in(page, live_server, "sales@example.com")

    # "Select all" is a link that brings the list back with every row ticked.
    page.goto(f"{live_server}/admin/order/list")
    page.get_by_role("link", name="Select all on this page").click()
    expect(page.locator('input[name="pks"]:not(:checked)')).to_have_count(0)
    page.get_by_role("button", name="Add a stage update to the selected orders").click()
    expect(page.get_by_role("heading", name="Add a stage update to 2 orders")).to_be_visible()

    # Rules in rows: "Add rule" and "Add variant" post the form and bring it back longer.
    page.goto(f"{live_server}/admin/analytics/placements/{placement.id}")
    page.get_by_role("button", name="Add rule").click()
    page.get_by_label("iOS").check()
    page.locator("#rules-0-destinations-0-url").fill("https://shop.example.com/a")
    page.locator("#rules-0-destinations-0-creative_id").select_option(label="Blue poster")
    page.get_by_role("button", name="Add variant to rule 1").click()
    expect(page.get_by_label("iOS")).to_be_checked()  # what was typed came back
    page.locator("#rules-0-destinations-1-url").fill("https://shop.example.com/b")
    page.locator("#rules-0-destinations-1-creative_id").select_option(label="Green poster")
    page.locator("#rules-0-destinations-1-weight").fill("3")
    page.get_by_role("button", name="Save placement").click()

    expect(page.get_by_text("Placement saved")).to_be_visible()
    expect(page.locator("#rules-readable")).to_contain_text("device is iOS")
    expect(page.locator("#rules-readable")).to_contain_text("(creative Green poster), weight 3")
