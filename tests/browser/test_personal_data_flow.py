"""The office manager answers a contact's request in a real browser, on a 390 px phone and at a
desk: the lookup's answer and the erasure's confirmation are pages reached by POST (the address
never in a URL), so the every-page walks cannot open them; here each passes axe, fits the
screen and, on the phone, has targets a thumb can hit."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine
from sqlmodel import Session, select

from app.admin import users
from app.auth.staff import Role
from app.config import get_settings
from app.customers.models import Customer
from app.notifications.models import OrderSubscription
from tests.browser.conftest import DESK, PHONE_390
from tests.browser.staffpages import problems
from tests.browser.test_every_staff_page_on_a_phone import phone_problems
from tests.factories import make_offer

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
PASSWORD = "correct horse battery"
ADDRESS = "maria@example.com"


@pytest.fixture(params=["phone", "desk"])
def office(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    options = PHONE_390 if request.param == "phone" else DESK
    context = browser.new_context(**options, bypass_csp=True)  # for axe only
    yield context.new_page()
    context.close()


def _checked(page: Page) -> list[str]:
    phone = page.viewport_size is not None and page.viewport_size["width"] < 400
    return problems(page) + (phone_problems(page) if phone else [])


def test_the_office_manager_looks_an_address_up_and_erases_it(
    committed: Engine, live_server: str, office: Page
) -> None:
    with Session(committed, expire_on_commit=False) as session:
        users.create_user(session, "office@example.com", Role.ADMIN, PASSWORD, actor="tests")
        offer = make_offer(session, get_settings(), issued=True)  # to ADDRESS
        session.add(Customer(company="Maria Papadopoulou", email=ADDRESS))
        session.add(OrderSubscription(offer_id=offer.id, email=ADDRESS))
        session.commit()
    page, found = office, []
    page.goto(f"{live_server}/admin/login")
    page.get_by_label("E-mail").fill("office@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Orders per stage")).to_be_visible()

    page.goto(f"{live_server}/admin/personal-data")
    page.get_by_label("E-mail address").fill("not an address")
    page.get_by_role("button", name="Look up").click()
    expect(page.locator("#email-error")).to_have_text("Please give an e-mail address.")
    page.get_by_label("E-mail address").fill(ADDRESS)
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_role("heading", name=f"What is held about {ADDRESS}")).to_be_visible()
    assert ADDRESS not in page.url
    expect(page.locator("#records-customer")).to_contain_text("Maria Papadopoulou")
    found += _checked(page)
    page.get_by_role("button", name="Erase this address…").click()
    expect(page.locator("#erase-goes")).to_contain_text("customer records")
    expect(page.locator("#erase-stays")).to_contain_text("offers sent to this address")
    found += _checked(page)
    page.get_by_role("button", name="Yes, erase").click()

    expect(page.get_by_text("1 customer record, 1 order update subscription")).to_be_visible()
    assert page.url.endswith("/admin/personal-data")
    found += _checked(page)
    assert not found, "\n".join(found)
    with Session(committed) as session:
        assert session.exec(select(Customer)).all() == []
