"""A salesperson's day on a 390 px phone, where a full-page answer comes back at its top and
the field they were at is screens below: the editor's line buttons and a refused save bring
them back to the line, and a customer's question is answered with one tap."""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine
from sqlmodel import Session

from app.admin import users
from app.auth.staff import Role
from app.config import get_settings
from app.tracking import service as tracking_service
from tests.browser.conftest import PHONE_390
from tests.browser.staffpages import assert_usable
from tests.factories import make_offer

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
PASSWORD = "correct horse battery"


@pytest.fixture
def sales_phone(browser: Browser, committed: Engine, live_server: str) -> Iterator[Page]:
    with Session(committed) as session:
        users.create_user(session, "sales@example.com", Role.SALES, PASSWORD, actor="tests")
    context = browser.new_context(**PHONE_390)
    page = context.new_page()
    page.goto(f"{live_server}/admin/")
    page.get_by_label("E-mail").fill("sales@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    yield page
    context.close()


def _ready_for_typing(page: Page, field_id: str) -> None:
    """The field has the cursor and, once the page has scrolled (smoothly), is on screen."""
    expect(page.locator(f"#{field_id}")).to_be_focused()
    page.wait_for_function(
        """id => { const r = document.getElementById(id).getBoundingClientRect();
                   return r.top >= 0 && r.bottom <= innerHeight; }""",
        arg=field_id,
        timeout=5000,
    )


def _line(page: Page, index: int, description: str, quantity: str, price: str) -> None:
    page.locator(f"#lines-{index}-description").fill(description)
    page.locator(f"#lines-{index}-quantity").fill(quantity)
    page.locator(f"#lines-{index}-unit_price").fill(price)
    page.locator(f"#lines-{index}-vat_rate").fill("24")


def test_the_editor_brings_the_phone_back_to_the_line_it_changed(
    live_server: str, sales_phone: Page
) -> None:
    page = sales_phone
    page.goto(f"{live_server}/admin/offers/new")
    page.get_by_label("Company").first.fill("Ελληνικά Προϊόντα ΑΕ")
    _line(page, 0, "Pump PX-200", "2", "1250")
    page.get_by_role("button", name="Add line").click()
    _ready_for_typing(page, "lines-1-description")
    page.keyboard.type("Installation")
    page.locator("#lines-1-quantity").fill("8")
    page.locator("#lines-1-unit_price").fill("85")
    page.get_by_role("button", name="Add line").click()
    _ready_for_typing(page, "lines-2-description")
    _line(page, 2, "Manual", "1,5", "30")

    page.get_by_role("button", name="Move line 3 up").click()
    _ready_for_typing(page, "lines-1-description")
    expect(page.locator("#lines-1-description")).to_have_value("Manual")

    # A refused save: the field to correct, not the top of a page several screens long.
    page.get_by_role("button", name="Save draft").last.click()
    expect(page.get_by_text("Nothing was saved")).to_be_attached()
    _ready_for_typing(page, "lines-1-quantity")
    expect(page.locator("#lines-1-quantity-error")).to_contain_text("point before the decimals")


def _activated(engine: Engine, company: str) -> str:
    settings = get_settings()
    with Session(engine, expire_on_commit=False) as session:
        order = make_offer(session, settings, issued=True, company=company)
        tracking_service.activate_offer(session, order.id, actor="tests", settings=settings)
    return order.id


def test_a_bulk_stage_update_from_a_phone(
    committed: Engine, live_server: str, sales_phone: Page
) -> None:
    """The rows' checkboxes and "View" links were 20 and 14 px targets, and the bulk form
    had no first heading (axe: page-has-heading-one)."""
    for company in ("Acme Hellas SA", "Nordwind GmbH"):
        _activated(committed, company)
    page = sales_phone
    seen: list[str] = []
    page.goto(f"{live_server}/admin/order/list")
    assert_usable(page, seen)
    for target in (*page.locator('input[name="pks"]').all(), *page.get_by_title("View").all()):
        box = target.bounding_box()
        assert box and box["width"] >= 24 and box["height"] >= 24, box  # WCAG 2.2 target size
    for tick in page.locator('input[name="pks"]').all():
        tick.tap()
    page.get_by_role("button", name="Add a stage update to the selected orders").tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add a stage update")
    assert_usable(page, seen)

    page.get_by_label("Stage", exact=True).select_option(label="Shipped")
    page.get_by_label("Expected delivery").fill("2099-02-01")
    page.get_by_role("button", name="Add to all 2").tap()
    expect(page.get_by_text("Stage update added to 2 orders.")).to_be_visible()
    assert_usable(page, seen)


def test_ending_the_session_left_open_on_another_computer_from_a_phone(
    browser: Browser, live_server: str, sales_phone: Page
) -> None:
    """Every row's button was named "Sign out": on a screen reader, which session ends?"""
    desk = browser.new_context(
        user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
    )
    other = desk.new_page()
    other.goto(f"{live_server}/admin/")
    other.get_by_label("E-mail").fill("sales@example.com")
    other.get_by_label("Password").fill(PASSWORD)
    other.get_by_role("button", name="Sign in").click()
    expect(other.get_by_role("heading", name="Dashboard")).to_be_visible()
    page = sales_phone
    page.goto(f"{live_server}/admin/account")
    assert_usable(page, [])

    page.get_by_role("button", name=re.compile(r"^Sign out Firefox on Linux, signed in ")).tap()

    expect(page.locator("#sessions")).not_to_contain_text("Firefox")
    other.goto(f"{live_server}/admin/")
    expect(other.get_by_role("heading", name="Sign in to OfferTrack staff")).to_be_visible()
    desk.close()
