"""A staff form sent after its session ended, as it happens on the floor: the tab left open past
the idle time (the browser drops the cookie), sign-out in another tab, "Sign out everywhere
else" on another device. The person is told that nothing was saved, signs in and is back on
the page they were on; a second "Sign out" just says they are signed out."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import Engine
from sqlmodel import Session

from app.admin import users
from app.auth.staff import Role
from app.config import get_settings
from app.tracking import service as tracking_service
from tests.browser.conftest import PHONE
from tests.factories import make_offer

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
PASSWORD = "correct horse battery"
ENDED = "Your session had ended, so nothing was saved"


@pytest.fixture
def order_id(committed: Engine) -> str:
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        order = make_offer(session, settings, issued=True, company="Acme Hellas SA")
        tracking_service.activate_offer(session, order.id, actor="tests", settings=settings)
        users.create_user(session, "sales@example.com", Role.SALES, PASSWORD, actor="tests")
    return order.id


@pytest.fixture
def phone_context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(**PHONE)
    yield context
    context.close()


def _sign_in(page: Page) -> None:
    page.get_by_label("E-mail").fill("sales@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _open_order(context: BrowserContext, base: str, order_id: str) -> Page:
    page = context.new_page()
    page.goto(f"{base}/admin/")
    _sign_in(page)
    page.goto(f"{base}/admin/order/details/{order_id}")
    expect(page.get_by_role("button", name="Add stage update")).to_be_visible()
    page.get_by_label("Public note").fill("Machining started.")
    return page


def _signed_out(page: Page) -> None:
    page.get_by_role("button", name="Menu").click()
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()


def _sent_after_the_end_then_back(page: Page, base: str, order_id: str) -> None:
    page.get_by_role("button", name="Add stage update").click()
    expect(page.get_by_role("heading", name="Sign in to OfferTrack staff")).to_be_visible()
    expect(page.get_by_text(ENDED)).to_be_visible()
    _sign_in(page)
    assert page.url == f"{base}/admin/order/details/{order_id}"
    expect(page.locator("#history")).not_to_contain_text("In production")


def test_a_form_sent_after_sign_out_in_another_tab_says_nothing_was_saved(
    live_server: str, order_id: str, phone_context: BrowserContext
) -> None:
    page = _open_order(phone_context, live_server, order_id)
    other_tab = phone_context.new_page()
    other_tab.goto(f"{live_server}/admin/")
    _signed_out(other_tab)

    _sent_after_the_end_then_back(page, live_server, order_id)

    # Signing out in a tab whose session already ended: signed out, not a refused form.
    other_tab.goto(f"{live_server}/admin/")
    _signed_out(other_tab)
    _signed_out(page)


def test_a_form_sent_after_the_idle_time_says_nothing_was_saved(
    live_server: str, order_id: str, phone_context: BrowserContext
) -> None:
    page = _open_order(phone_context, live_server, order_id)
    # The session cookie lives as long as the idle time: past it the browser drops it.
    phone_context.clear_cookies(name="ot_staff")

    _sent_after_the_end_then_back(page, live_server, order_id)


def test_a_form_sent_after_the_session_was_ended_elsewhere_says_nothing_was_saved(
    live_server: str, order_id: str, phone_context: BrowserContext, browser: Browser
) -> None:
    page = _open_order(phone_context, live_server, order_id)
    desk = browser.new_context()
    try:
        other = desk.new_page()
        other.goto(f"{live_server}/admin/account")
        _sign_in(other)
        other.get_by_role("button", name="Sign out everywhere else").click()
        expect(other.get_by_text("Signed out 1 other session.")).to_be_visible()
    finally:
        desk.close()

    _sent_after_the_end_then_back(page, live_server, order_id)
