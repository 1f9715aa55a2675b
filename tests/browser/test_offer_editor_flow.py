"""Issue 16's walk-through in a real browser, on a phone (360 px) and at a desk (1280 px):
a salesperson creates a customer, writes a three-line offer with two VAT rates and watches
the totals follow the typing, previews the PDF, issues it, sends it (the mail reaches an SMTP
server this test runs, with the PDF whose QR code opens the offer), activates it as an order
(each irreversible step confirmed on its own page) and posts a stage update. Every staff page
on the way must not scroll sideways and must pass axe-core without serious or critical
violations."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine
from sqlmodel import Session

from app.admin import users
from app.auth.staff import Role
from tests.browser.conftest import PHONE
from tests.browser.staffpages import assert_usable
from tests.conftest import _free_port, _wait_until_up
from tests.notifications.conftest import Inbox
from tests.offers.test_pdf import decoded_qr_codes

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
PASSWORD = "correct horse battery"
DESK = {"viewport": {"width": 1280, "height": 900}}


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    handler.port = controller.port  # type: ignore[attr-defined]
    yield handler
    controller.stop()


@pytest.fixture(scope="module")
def server(engine: Engine, inbox: Inbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """OfferTrack on the test database, its mail worker sending to ``inbox`` over SMTP."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "OFFERTRACK_PUBLIC_BASE_URL": base_url,
        "OFFERTRACK_SMTP_URL": f"smtp://127.0.0.1:{inbox.port}",  # type: ignore[attr-defined]
        # The suite switches the background workers off; this server's mail worker must run.
        "OFFERTRACK_WEBHOOK_WORKER": "true",
    }
    log_path = tmp_path_factory.mktemp("mailing-server") / "server.log"
    command_line = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command_line, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_up(base_url, process, log_path)
            yield base_url
        finally:
            process.terminate()
            process.wait(timeout=20)


def _received(inbox: Inbox, address: str, timeout: float = 60) -> list[object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not inbox.to(address):
        time.sleep(0.2)
    return list(inbox.to(address))


@pytest.fixture(params=["phone", "desk"])
def screen(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    options = PHONE if request.param == "phone" else DESK
    context = browser.new_context(**options, bypass_csp=True)
    page = context.new_page()
    yield page
    context.close()


def _menu(page: Page, name: str) -> None:
    """Follow a menu entry; on a phone the menu first has to be opened."""
    toggle = page.get_by_role("button", name="Menu")
    if toggle.is_visible():
        toggle.click()
    page.get_by_role("navigation", name="Staff menu").get_by_role("link", name=name).click()


def _line(page: Page, index: int, description: str, qty: str, price: str, vat: str) -> None:
    page.locator(f"#lines-{index}-description").fill(description)
    page.locator(f"#lines-{index}-quantity").fill(qty)
    page.locator(f"#lines-{index}-unit_price").fill(price)
    page.locator(f"#lines-{index}-vat_rate").fill(vat)


def test_sales_writes_issues_sends_and_activates_an_offer(
    committed: Engine, server: str, inbox: Inbox, screen: Page
) -> None:
    live_server = server
    with Session(committed) as session:
        users.create_user(session, "sales@example.com", Role.SALES, PASSWORD, actor="tests")
    page = screen
    seen: list[str] = []
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(f"{live_server}/admin/")
    assert_usable(page, seen)
    page.get_by_label("E-mail").fill("sales@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Orders per stage")).to_be_visible()
    assert_usable(page, seen)

    # A customer record, with the postal address and VAT ID the PDF prints.
    _menu(page, "Customers")
    assert_usable(page, seen)
    page.get_by_role("link", name="New customer").click()
    assert_usable(page, seen)
    page.get_by_label("Company").fill("Acme Hellas SA")
    page.get_by_label("Contact name").fill("Maria Papadopoulou")
    customer_email = (
        f"maria-{page.viewport_size['width'] if page.viewport_size else 0}@acme.example"
    )
    page.get_by_label("E-mail").fill(customer_email)
    page.get_by_label("Street address").fill("Leoforos Kifisias 12")
    page.get_by_label("Postcode").fill("11526")
    page.get_by_label("City").fill("Athens")
    page.get_by_label("VAT ID").fill("EL123456789")
    page.get_by_role("button", name="Save customer").click()
    expect(page.get_by_text("Customer Acme Hellas SA saved.")).to_be_visible()
    assert_usable(page, seen)

    # Three lines, two VAT rates; the totals follow the typing (htmx, priced on the server).
    page.get_by_role("link", name="New offer for this customer").click()
    expect(page.get_by_label("Customer record")).to_have_value(page.url.split("=")[-1])
    assert_usable(page, seen)
    _line(page, 0, "Pump PX-200", "2", "1250.00", "24")
    expect(page.locator("#total-gross")).to_have_text("€3,100.00")
    page.get_by_role("button", name="Add line").click()
    _line(page, 1, "Installation", "8", "85", "24")
    page.get_by_role("button", name="Add line").click()
    _line(page, 2, "Operating manual, printed", "1", "30", "6")
    expect(page.locator("#total-gross")).to_have_text("€3,975.00")
    expect(page.locator("#line-net-2")).to_have_text("€30.00")
    expect(page.get_by_text("VAT 6 % on €30.00")).to_be_visible()
    assert_usable(page, seen)
    page.get_by_role("button", name="Save draft").first.click()
    expect(page.get_by_text("Draft saved.")).to_be_visible()
    assert_usable(page, seen)

    # Preview the draft's PDF.
    pdf_url = page.get_by_role("link", name="Preview PDF").get_attribute("href")
    assert pdf_url
    preview = page.request.get(pdf_url)
    assert preview.ok and preview.body().startswith(b"%PDF")

    # Issue, confirming first.
    page.get_by_role("link", name="Issue…").click()
    expect(page.get_by_text("never change again")).to_be_visible()
    assert_usable(page, seen)
    page.get_by_role("button", name="Yes, issue").click()
    expect(page.locator("#offer-status")).to_have_text("issued")
    assert_usable(page, seen)

    # Send it: the customer's address is filled in, the message can be edited.
    offer_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    page.get_by_role("link", name="Send to customer…").click()
    expect(page.get_by_label("To")).to_have_value(customer_email)
    assert_usable(page, seen)
    page.get_by_label("Message").fill("Dear Maria,\n\nhere is our offer for the pumps.")
    page.get_by_role("button", name="Send to customer").click()
    expect(page.get_by_text(f"The offer is on its way to {customer_email}")).to_be_visible()
    expect(page.locator("#history")).to_contain_text(f"Sent to {customer_email}")
    assert_usable(page, seen)
    [mail] = _received(inbox, customer_email)
    assert "here is our offer for the pumps." in mail.get_body(("plain",)).get_content()  # type: ignore[attr-defined]
    [attachment] = list(mail.iter_attachments())  # type: ignore[attr-defined]
    assert attachment.get_content_type() == "application/pdf"
    codes = {
        code.text for found, _, _ in decoded_qr_codes(attachment.get_content()) for code in found
    }
    # The QR code spells the URL in capitals (the alphanumeric mode: a smaller code).
    assert codes == {f"{live_server.upper()}/{offer_id}"}

    # Activate as an order, confirming first.
    page.get_by_role("link", name="Activate as order…").click()
    assert_usable(page, seen)
    page.get_by_role("button", name="Yes, activate").click()
    expect(page.get_by_text("is active")).to_be_visible()
    assert_usable(page, seen)

    # The stage-update form offers the next stage; post it.
    stage = page.get_by_label("Stage", exact=True)
    expect(stage.locator("option:checked")).to_have_text("In production")
    page.get_by_label("Public note").fill("Machining of the pump housings has started.")
    page.get_by_role("button", name="Add stage update").click()
    expect(page.get_by_text("Stage update “In production” added")).to_be_visible()
    assert_usable(page, seen)

    # The orders list: every column fits at a desk (no scrolling inside the table either),
    # and "select all" ticks every row for a bulk stage update.
    _menu(page, "Orders")
    assert_usable(page, seen)
    if page.viewport_size and page.viewport_size["width"] >= 1280:
        region = page.locator(".table-responsive").first
        assert region.evaluate("r => r.scrollWidth <= r.clientWidth")
    page.get_by_label("Select all rows on this page").check()
    expect(page.locator('input[name="pks"]:not(:checked)')).to_have_count(0)

    assert len(seen) >= 13
    assert all(url.startswith(live_server) for url in requested), "third-party request made"
