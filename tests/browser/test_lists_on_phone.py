"""The staff lists on a 390 px phone: a sales person picks an offer, an order or a customer
from the list without scrolling it sideways (the status and the total sat off to the right of
a table that scrolled inside its own region), and opens it with one tap; the questions page
fits too. At 1280 px the lists stay tables with their header row."""

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from sqlalchemy import Engine
from sqlmodel import Session

from app.admin import users
from app.auth.staff import Role
from app.config import get_settings
from app.customers import service as customers_service
from app.customers.schemas import CustomerCreate
from app.notifications import questions
from app.offers.ids import hyphenate_tracking_id
from app.tracking import service as tracking_service
from app.tracking.codes import parse_tracking_code
from tests.browser.conftest import DESK, PHONE_390, ContextOptions
from tests.browser.staffpages import assert_usable
from tests.factories import line_data, make_offer

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
PASSWORD = "correct horse battery"
# A long company name and reference, as customers have them: they wrap in the row.
LONG_COMPANY = "Ελληνικά Προϊόντα Βορείου Ελλάδος Ανώνυμη Εμπορική Εταιρεία"
LONG_REFERENCE = "PO-2026-THESSALONIKI-WAREHOUSE-0004711-B"
# What a tap needs (WCAG 2.5.5, the enhanced target size the task asks for).
TAP = 44


@dataclass
class Listed:
    order: str
    offer: str
    customer: int


@pytest.fixture
def listed(committed: Engine) -> Listed:
    """An order with a long company name and reference, an issued offer with a question from a
    long address, a customer, and a sales user."""
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        users.create_user(session, "sales@example.com", Role.SALES, PASSWORD, actor="tests")
        order = make_offer(
            session,
            settings,
            issued=True,
            company=LONG_COMPANY,
            customer_reference=LONG_REFERENCE,
            lines=[line_data(quantity="12", unit_price="98765.43")],
        )
        tracking_service.activate_offer(session, order.id, actor="tests", settings=settings)
        offer = make_offer(session, settings, issued=True, company="Nordwind GmbH")
        questions.ask_question(
            session,
            parse_tracking_code(offer.id),
            email="procurement.department.thessaloniki-warehouse@nordwind-logistics.example",
            message="Please quote https://nordwind-logistics.example/rfq/2026/0004711/attachments/"
            "specification-pumps-and-installation-revision-3.pdf as well",
            settings=settings,
        )
        customer = customers_service.create_customer(
            session,
            CustomerCreate(
                company=LONG_COMPANY,
                contact_name="Maria Papadopoulou",
                email="maria.papadopoulou@voreia-ellada-proionta.example",
                city="Thessaloniki",
                vat_id="EL123456789",
            ),
            actor="tests",
        )
    return Listed(order=order.id, offer=offer.id, customer=customer.id or 0)


def _signed_in(browser: Browser, live_server: str, options: ContextOptions) -> Page:
    page = browser.new_context(**options, bypass_csp=True).new_page()  # for axe: staffpages
    page.goto(f"{live_server}/admin/")
    page.get_by_label("E-mail").fill("sales@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    return page


@pytest.fixture
def phone(browser: Browser, live_server: str, listed: Listed) -> Iterator[Page]:
    page = _signed_in(browser, live_server, PHONE_390)
    yield page
    page.context.close()


@pytest.fixture
def desk(browser: Browser, live_server: str, listed: Listed) -> Iterator[Page]:
    page = _signed_in(browser, live_server, DESK)
    yield page
    page.context.close()


def _headers_without_name(page: Page) -> list[str]:
    """axe's empty-table-header (best practice, so not among assert_usable's blocking ones)."""
    # axe is there: assert_usable injected it.
    found: list[str] = page.evaluate(
        """async () => (await axe.run(document, {runOnly: ["empty-table-header"]}))
             .violations.flatMap(v => v.nodes.map(n => n.target.join(" ")))"""
    )
    return found


def _fits(page: Page) -> None:
    """Nothing scrolls sideways, neither the page nor a region inside it; axe passes, and every
    header cell has a name."""
    assert_usable(page, [])
    assert _headers_without_name(page) == []
    wider = page.evaluate(
        """() => [...document.querySelectorAll("main *")]
             .filter(e => e.scrollWidth > e.clientWidth + 1
                          && ["auto", "scroll"].includes(getComputedStyle(e).overflowX))
             .map(e => e.className)"""
    )
    assert wider == []


def _on_screen(item: Locator) -> None:
    """Shown whole across the screen's width, and what a finger there would touch."""
    item.scroll_into_view_if_needed()
    expect(item).to_be_visible()
    box = item.bounding_box()
    width = item.page.evaluate("innerWidth")
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (box, width)
    hit = item.evaluate(
        """e => { const r = e.getBoundingClientRect();
                  const at = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
                  return e.contains(at) || at.contains(e); }"""
    )
    assert hit, f"{item} is covered or clipped"


def _row(page: Page, text: str) -> Locator:
    return page.locator("tbody tr").filter(has_text=text)


def _cell(row: Locator, label: str, value: str) -> None:
    """The row's cell shows its column's name over its value, both on screen."""
    cell = row.locator(f'td[data-label="{label}"]')
    _on_screen(cell)
    expect(cell).to_contain_text(value)
    shown = cell.evaluate("e => getComputedStyle(e, '::before').content")
    assert shown == f'"{label}"', (label, shown)


def _tappable(target: Locator) -> None:
    box = target.bounding_box()
    assert box and box["width"] >= TAP and box["height"] >= TAP, box


def test_the_orders_list_on_a_phone(live_server: str, listed: Listed, phone: Page) -> None:
    page = phone
    page.goto(f"{live_server}/admin/order/list")
    _fits(page)
    row = _row(page, LONG_COMPANY)
    _cell(row, "Tracking ID", hyphenate_tracking_id(listed.order))
    _cell(row, "Company", LONG_COMPANY)
    _cell(row, "Customer reference", LONG_REFERENCE)
    _cell(row, "Current stage", "")
    _cell(row, "Total (gross)", "1,469,629.60")
    _cell(row, "Ordered", "2")

    opening = row.get_by_role("link", name=hyphenate_tracking_id(listed.order))
    _tappable(opening)
    opening.tap()
    expect(page.locator("#order-tracking-id")).to_have_text(hyphenate_tracking_id(listed.order))


def test_ticking_orders_for_a_bulk_update_on_a_phone(
    live_server: str, listed: Listed, phone: Page
) -> None:
    page = phone
    page.goto(f"{live_server}/admin/order/list")
    tick = page.get_by_role("checkbox", name=f"Select {listed.order}")
    every = page.get_by_role("checkbox", name="Select all rows on this page")
    page.get_by_text("Select all", exact=True).tap()
    expect(every).to_be_checked()
    expect(tick).to_be_checked()
    every.tap()
    expect(tick).not_to_be_checked()

    area = page.locator("label").filter(has=tick)
    _tappable(area)
    box = area.bounding_box()
    assert box
    page.touchscreen.tap(box["x"] + 3, box["y"] + 3)  # the target's corner, not the box
    expect(tick).to_be_checked()
    page.get_by_role("button", name="Add a stage update to the selected orders").tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add a stage update")
    expect(page.get_by_text(LONG_COMPANY)).to_be_visible()


def test_the_offers_list_on_a_phone(live_server: str, listed: Listed, phone: Page) -> None:
    page = phone
    page.goto(f"{live_server}/admin/offer/list")
    _fits(page)
    row = _row(page, "Nordwind GmbH")
    _cell(row, "Tracking ID", hyphenate_tracking_id(listed.offer))
    _cell(row, "Company", "Nordwind GmbH")
    _cell(row, "Status", "issued")
    _cell(row, "Total (gross)", "3,100.00")
    _cell(row, "Created", "2")

    opening = row.get_by_role("link", name=hyphenate_tracking_id(listed.offer))
    _tappable(opening)
    opening.tap()
    expect(page.get_by_role("link", name="Customer questions")).to_be_visible()


def test_the_customers_list_on_a_phone(live_server: str, listed: Listed, phone: Page) -> None:
    page = phone
    page.goto(f"{live_server}/admin/customers")
    _fits(page)
    row = _row(page, "Maria Papadopoulou")
    _cell(row, "Company", LONG_COMPANY)
    _cell(row, "Contact", "Maria Papadopoulou")
    _cell(row, "E-mail", "maria.papadopoulou@voreia-ellada-proionta.example")
    _cell(row, "City", "Thessaloniki")
    _cell(row, "VAT ID", "EL123456789")

    opening = row.get_by_role("link", name=LONG_COMPANY)
    _on_screen(opening)
    _tappable(opening)
    opening.tap()
    expect(page.get_by_label("Company")).to_have_value(LONG_COMPANY)


def test_the_questions_page_on_a_phone(live_server: str, listed: Listed, phone: Page) -> None:
    page = phone
    page.goto(f"{live_server}/admin/offers/{listed.offer}/questions")
    _fits(page)
    _on_screen(page.get_by_text("specification-pumps", exact=False))
    answer = page.get_by_role("link", name="Answer by e-mail")
    _on_screen(answer)
    _tappable(answer)


def test_at_1280_px_the_lists_stay_tables(live_server: str, desk: Page) -> None:
    page = desk
    for path, first in (("/admin/order/list", "Tracking ID"), ("/admin/customers", "Company")):
        page.goto(f"{live_server}{path}")
        expect(page.get_by_role("columnheader", name=first)).to_be_visible()
        row = page.locator("tbody tr").first
        company = row.get_by_text(LONG_COMPANY).bounding_box()
        last = row.locator("td").last.bounding_box()
        assert company and last
        # One line per row: the row's last cell beside its company, not under it.
        assert last["x"] > company["x"] and last["y"] < company["y"] + company["height"]
        assert_usable(page, [])
        assert _headers_without_name(page) == [], path


def test_a_flash_message_keeps_its_tracking_id_on_one_line(
    live_server: str, committed: Engine, phone: Page
) -> None:
    """ "Order 01H0W-" / "ARY2W is active": the message after activating, broken at the hyphen."""
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, get_settings(), issued=True)
    phone.goto(f"{live_server}/admin/offers/{offer.id}/activate")
    phone.get_by_role("button", name=re.compile("^Yes, ")).click()

    code = phone.locator(".flash-messages .tracking-id")
    expect(code).to_have_text(hyphenate_tracking_id(offer.tracking_id))
    assert code.evaluate("span => span.getClientRects().length") == 1
