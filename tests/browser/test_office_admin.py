"""The office manager in a real browser, at a desk and on a phone (390x844): a new sales person
gets an account and signs in; a sales person leaves, is disabled and their offers go to a
colleague; every page on the way passes axe and fits the screen."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.admin import users
from app.auth.staff import Role
from app.config import get_settings
from app.offers.models import Offer
from tests.browser.conftest import DESK, PHONE_390
from tests.browser.staffpages import problems
from tests.factories import make_offer

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
PASSWORD = "correct horse battery"


@pytest.fixture(params=["phone", "desk"])
def office(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    options = PHONE_390 if request.param == "phone" else DESK
    context = browser.new_context(**options, bypass_csp=True)  # for axe only
    page = context.new_page()
    yield page
    context.close()


def _sign_in(page: Page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/admin/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Orders per stage")).to_be_visible()


def test_the_office_manager_onboards_one_and_hands_a_leavers_offers_to_a_colleague(
    committed: Engine, live_server: str, office: Page, browser: Browser
) -> None:
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        users.create_user(session, "office@example.com", Role.ADMIN, PASSWORD, actor="tests")
        leaver = users.create_user(session, "leaving@example.com", Role.SALES, PASSWORD, actor="t")
        for _ in range(3):
            offer = make_offer(session, settings, issued=True)
            offer.owner_id = leaver.id
            session.add(offer)
        session.commit()
    page, found = office, []
    _sign_in(page, live_server, "office@example.com")

    # A new sales person: the account, then their own first sign-in with the first password.
    page.goto(f"{live_server}/admin/staff-user/create")
    found += problems(page)
    page.get_by_label("E-mail").fill("new.hire@example.com")
    page.get_by_label("Role").select_option("sales")
    page.get_by_label("Password").fill("first password 2027")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("new.hire@example.com").first).to_be_visible()
    hire = browser.new_context(**DESK).new_page()
    _sign_in(hire, live_server, "new.hire@example.com", "first password 2027")
    hire.context.close()

    # The leaver: disabled, with the warning that their offers have no active owner.
    page.goto(f"{live_server}/admin/staff-user/edit/{leaver.id}")
    page.get_by_label("Active").uncheck()
    page.get_by_label("Yes, disable this user").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("leaving@example.com still owns 3 offers")).to_be_visible()
    page.goto(f"{live_server}/admin/staff-user/details/{leaver.id}")
    expect(page.locator("#departed-offers")).to_contain_text("still owns 3 offers")
    found += problems(page)
    page.get_by_role("link", name="Hand over offers…").click()
    found += problems(page)
    page.get_by_role("button", name="Hand over 3 offers").click()  # nobody chosen yet
    expect(page.locator("#to_user-error")).to_have_text("Choose who takes the offers over.")
    found += problems(page)
    page.get_by_label("New owner").select_option(label="new.hire@example.com (sales)")
    page.get_by_role("button", name="Hand over 3 offers").click()

    expect(page.get_by_text("3 offers of leaving@example.com now belong to")).to_be_visible()
    assert "/admin/staff-user/details/" in page.url
    with Session(committed) as session:
        hire_id = users.find_by_email(session, "new.hire@example.com")
        owners = session.exec(select(Offer.owner_id).where(col(Offer.owner_id).is_not(None)))
        assert hire_id is not None and set(owners.all()) == {hire_id.id}
    assert found == []
