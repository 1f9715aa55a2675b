"""A sales person's follow-ups on a 390 px phone: each list shows its first three entries and
keeps the rest behind "Show N more" (a native details element, so the dashboard's figures are
not 30 entries down), and a tracking ID never breaks at its hyphen. An admin's dashboard
names the disabled users whose offers nobody follows up, with the way to hand them over."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.admin import users
from app.auth.staff import Role, StaffUser
from app.config import get_settings
from app.offers import service as offers_service
from tests.browser.conftest import PHONE_390
from tests.browser.test_every_staff_page_on_a_phone import phone_problems
from tests.factories import committed_scan, make_offer

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
PASSWORD = "correct horse battery"
EACH = 7  # entries in each of the three lists: three shown, four behind "Show 4 more"


def _busy_week(engine: Engine) -> None:
    """A sales person with seven offers in each list of their follow-ups."""
    settings = get_settings()
    soon = offers_service.today(settings) + timedelta(days=2)
    with Session(engine, expire_on_commit=False) as session:
        users.create_user(session, "sales@example.com", Role.SALES, PASSWORD, actor="tests")
        owner = session.exec(select(StaffUser.id).where(col(StaffUser.role) == Role.SALES)).one()
        made = []
        for n in range(EACH * 2):
            company = f"Ελληνικά Προϊόντα Βορείου Ελλάδος {n} ΑΕ"  # long, as real names are
            offer = make_offer(session, settings, issued=True, company=company)
            offer.owner_id = owner
            if n < EACH:  # unopened for a week
                assert offer.issued_at is not None
                offer.issued_at -= timedelta(days=7)
            else:  # opened, and expiring in two days
                offer.valid_until = soon
            session.add(offer)
            made.append(offer)
        session.commit()
    for offer in made[EACH:]:
        committed_scan(engine, offer)


@pytest.fixture
def phone_dashboard(browser: Browser, committed: Engine, live_server: str) -> Iterator[Page]:
    _busy_week(committed)
    context = browser.new_context(**PHONE_390, bypass_csp=True)  # for axe only (staffpages)
    page = context.new_page()
    page.goto(f"{live_server}/admin/")
    page.get_by_label("E-mail").fill("sales@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your follow-ups")).to_be_visible()
    yield page
    context.close()


def test_each_list_shows_three_and_the_rest_behind_show_more(phone_dashboard: Page) -> None:
    page = phone_dashboard
    card = page.locator("#follow-ups")
    for list_id in ("activity", "expiring", "unopened"):
        expect(card.locator(f"#{list_id} > li")).to_have_count(3)
    more = card.get_by_text("Show 4 more")
    expect(more).to_have_count(3)
    hidden = card.locator("details li")
    expect(hidden).to_have_count(3 * 4)
    for index in range(3 * 4):
        expect(hidden.nth(index)).to_be_hidden()
    box = more.first.bounding_box()
    assert box is not None and box["height"] >= 44  # a finger's target

    # The dashboard's figures are no longer 21 entries down: within two screens (1,207 px).
    figures = page.locator("#stat-issued").bounding_box()
    assert figures is not None and figures["y"] < 2 * 844

    more.last.click()  # the unopened list's
    unopened = page.locator("section[aria-labelledby='follow-ups-unopened'] li")
    expect(unopened).to_have_count(EACH)
    for index in range(EACH):
        expect(unopened.nth(index)).to_be_visible()
        expect(unopened.nth(index)).to_contain_text("Issued 7 days ago")
    # 44 px targets, axe-core (it opens every details first), no sideways scroll.
    assert phone_problems(page) == []


def test_a_tracking_id_stays_on_one_line(phone_dashboard: Page) -> None:
    page = phone_dashboard
    for summary in page.locator("#follow-ups summary").all():
        summary.click()
    codes = page.locator("#follow-ups .tracking-id")
    # An ID in each entry of the three lists: the activity's in its sentence, the others first.
    expect(codes).to_have_count(3 * EACH)
    lines = codes.evaluate_all(
        """els => els.map(e => [e.textContent, getComputedStyle(e).whiteSpace,
                                  e.getClientRects().length])"""
    )
    assert all(len(code) == 11 and code[5] == "-" for code, _, _ in lines)
    assert [(style, rects) for _, style, rects in lines] == [("nowrap", 1)] * (3 * EACH)


def test_an_admin_on_a_phone_goes_from_a_leavers_offers_to_handing_them_over(
    browser: Browser, committed: Engine, live_server: str
) -> None:
    settings = get_settings()
    with Session(committed) as session:
        users.create_user(session, "boss@example.com", Role.ADMIN, PASSWORD, actor="tests")
        leaver = users.create_user(session, "gone@example.com", Role.SALES, PASSWORD, actor="t")
        assert leaver.id is not None
        for company in ("Acme Hellas SA", "Beta GmbH"):
            offer = make_offer(session, settings, issued=True, company=company)
            offer.owner_id = leaver.id
            session.add(offer)
        session.commit()
        users.update_user(session, leaver.id, role=Role.SALES, is_active=False, actor="tests")
    page = browser.new_context(**PHONE_390, bypass_csp=True).new_page()
    try:
        page.goto(f"{live_server}/admin/")
        page.get_by_label("E-mail").fill("boss@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()

        card = page.locator("#disabled-owners")
        expect(card).to_contain_text("gone@example.com: 2 open offers")
        assert phone_problems(page) == []
        card.get_by_role("link", name="gone@example.com").click()
        expect(page.get_by_role("link", name="Hand over offers…")).to_be_visible()
    finally:
        page.context.close()
