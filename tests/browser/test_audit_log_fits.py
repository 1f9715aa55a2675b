"""The audit log's table was wider than its region at 1280 px (a sideways scroll on a desk):
an address in "Who" and an offer's id in "Offer" did not break. Each now may break after
":", "@" or "." and an id at its middle, without squeezing the other columns' words."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine
from sqlmodel import Session

from app import audit
from app.admin import users
from app.auth.staff import Role
from app.config import get_settings
from tests.browser.conftest import DESK, PHONE_390, ContextOptions
from tests.browser.staffpages import assert_usable
from tests.factories import make_campaign, make_offer, make_placement

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
PASSWORD = "correct horse battery"
ADMIN = "procurement.office.thessaloniki-warehouse@voreia-ellada-proionta.example"
SCREENS = {"desk": DESK, "phone": PHONE_390}


@pytest.fixture
def placement(committed: Engine) -> int:
    """An admin with a long address (the audit log's "Who"), whose work fills the log, and a
    placement of a campaign."""
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        users.create_user(session, ADMIN, Role.ADMIN, PASSWORD, actor="tests")
        for _ in range(3):
            offer = make_offer(session, settings, issued=True)
            audit.record(
                session,
                actor=f"staff:{ADMIN}",
                action="offer.send",
                entity_type="offer",
                entity_id=offer.id,
                offer_id=offer.id,
                summary=f"Sent to {ADMIN} with the PDF attached",
            )
            session.commit()
        campaign = make_campaign(session)
        assert campaign.id is not None
        placement = make_placement(session, campaign.id)
    assert placement.id is not None
    return placement.id


@pytest.fixture(params=list(SCREENS))
def staff(request: pytest.FixtureRequest, browser: Browser, live_server: str) -> Iterator[Page]:
    options: ContextOptions = SCREENS[request.param]
    page = browser.new_context(**options, bypass_csp=True).new_page()  # for axe: staffpages
    page.goto(f"{live_server}/admin/")
    page.get_by_label("E-mail").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Orders per stage")).to_be_visible()
    yield page
    page.context.close()


def _regions_wider_than_they_show(page: Page) -> list[str]:
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll("main *")]
             .filter(e => e.scrollWidth > e.clientWidth + 1
                          && ["auto", "scroll"].includes(getComputedStyle(e).overflowX))
             .map(e => `${e.className}: ${e.scrollWidth} > ${e.clientWidth}`)"""
    )
    return found


def test_the_audit_log_fits_its_region_on_a_desk_and_a_phone(
    placement: int, staff: Page, live_server: str
) -> None:
    staff.goto(f"{live_server}/admin/audit-log-entry/list")
    expect(staff.locator("h2", has_text="Audit log")).to_be_visible()

    assert_usable(staff, [])
    assert _regions_wider_than_they_show(staff) == []
    expect(staff.locator("main").get_by_text(f"staff:{ADMIN}").first).to_be_visible()
