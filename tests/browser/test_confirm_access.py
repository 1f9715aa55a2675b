"""The "Confirm access" page of sudo mode on a 390 px phone, as an admin meets it: a settings
page opened long after signing in asks for the password first, a wrong one is refused beside
the field, the right one leads back; in the browser's language, axe clean throughout."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine, update
from sqlmodel import Session

from app.admin import users
from app.admin.sessions import StaffSession
from app.auth.staff import Role
from app.db import utcnow
from tests.browser.conftest import PHONE_390
from tests.browser.test_every_staff_page_on_a_phone import phone_problems

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
PASSWORD = "correct horse battery"


@pytest.fixture
def admin(committed: Engine) -> str:
    with Session(committed) as session:
        users.create_user(session, "admin@example.com", Role.ADMIN, PASSWORD, actor="tests")
    return "admin@example.com"


def _phone(browser: Browser, locale: str) -> Iterator[Page]:
    context = browser.new_context(**PHONE_390, locale=locale, bypass_csp=True)  # CSP: for axe
    yield context.new_page()
    context.close()


@pytest.fixture
def phone_en(browser: Browser) -> Iterator[Page]:
    yield from _phone(browser, "en-GB")


@pytest.fixture
def phone_de(browser: Browser) -> Iterator[Page]:
    yield from _phone(browser, "de-DE")


def _signed_in_long_ago(page: Page, base: str, committed: Engine) -> None:
    page.goto(f"{base}/admin/login")
    page.get_by_label("E-mail").fill("admin@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Orders per stage")).to_be_visible()
    with committed.begin() as connection:
        connection.execute(update(StaffSession).values(confirmed_at=utcnow() - timedelta(hours=1)))


def test_an_admin_confirms_access_on_a_phone_and_lands_back(
    live_server: str, admin: str, committed: Engine, phone_en: Page
) -> None:
    page = phone_en
    _signed_in_long_ago(page, live_server, committed)

    page.goto(f"{live_server}/admin/settings")
    expect(page.get_by_role("heading", name="Confirm access")).to_be_visible()
    assert phone_problems(page) == []
    page.get_by_label("Password").fill("not my password")
    page.get_by_role("button", name="Confirm").click()
    password = page.get_by_label("Password")
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#password-error")).to_have_text("That password is not right.")
    assert phone_problems(page) == []
    password.fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()

    expect(page.get_by_text("Access confirmed.")).to_be_visible()
    assert page.url == f"{live_server}/admin/settings"
    expect(page.get_by_text("OFFERTRACK_SUDO_MINUTES")).to_be_visible()


def test_the_confirm_page_speaks_german_to_a_german_browser(
    live_server: str, admin: str, committed: Engine, phone_de: Page
) -> None:
    page = phone_de
    _signed_in_long_ago(page, live_server, committed)

    page.goto(f"{live_server}/admin/settings")

    expect(page.get_by_role("heading", name="Zugriff bestätigen")).to_be_visible()
    page.get_by_role("button", name="Bestätigen").click()
    expect(page.locator("#password-error")).to_have_text("Geben Sie Ihr Passwort ein.")
    assert phone_problems(page) == []
