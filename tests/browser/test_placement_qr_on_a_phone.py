"""A placement's page on a 390 px phone: its QR figure stood 12 rem wide at the left of the
card, the 148 px symbol in the top-left corner of a larger box, blank beside and below it. The
symbol now fills its box; on a phone the figure takes the card's width (the code centred, as
large as a scan from the screen wants), and on a desk it stays beside the figures."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine
from sqlmodel import Session

from app.admin import users
from app.auth.staff import Role
from tests.browser.conftest import DESK, PHONE_390, ContextOptions
from tests.browser.staffpages import assert_usable
from tests.factories import make_campaign, make_placement

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
PASSWORD = "correct horse battery"


@pytest.fixture
def placement(committed: Engine) -> int:
    with Session(committed, expire_on_commit=False) as session:
        users.create_user(session, "admin@example.com", Role.ADMIN, PASSWORD, actor="tests")
        campaign = make_campaign(session)
        assert campaign.id is not None
        placement = make_placement(session, campaign.id)
    assert placement.id is not None
    return placement.id


def _signed_in(browser: Browser, live_server: str, options: ContextOptions) -> Iterator[Page]:
    page = browser.new_context(**options, bypass_csp=True).new_page()  # for axe: staffpages
    page.goto(f"{live_server}/admin/")
    page.get_by_label("E-mail").fill("admin@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Orders per stage")).to_be_visible()
    yield page
    page.context.close()


@pytest.fixture
def phone(browser: Browser, live_server: str) -> Iterator[Page]:
    yield from _signed_in(browser, live_server, PHONE_390)


@pytest.fixture
def desk(browser: Browser, live_server: str) -> Iterator[Page]:
    yield from _signed_in(browser, live_server, DESK)


def _boxes(page: Page) -> dict[str, dict[str, float]]:
    """Where the figure, its code (the box and the symbol drawn in it) and the figures are."""
    boxes: dict[str, dict[str, float]] = page.evaluate(
        """() => Object.fromEntries(Object.entries({
             figure: ".qr-figure", box: "#placement-qr svg",
             symbol: "#placement-qr svg path", figures: ".placement-figures",
           }).map(([name, css]) => {
             const r = document.querySelector(css).getBoundingClientRect();
             return [name, {left: r.left, right: r.right, top: r.top, bottom: r.bottom,
                            width: r.width, height: r.height}];
           }))"""
    )
    return boxes


def _no_blank_beside_the_symbol(boxes: dict[str, dict[str, float]]) -> None:
    # The symbol (its white quiet zone included) fills the box the page gives the code.
    for side in ("left", "right", "top", "bottom"):
        assert abs(boxes["symbol"][side] - boxes["box"][side]) <= 1, (side, boxes)


def test_the_qr_figure_fills_a_phones_card_and_sits_beside_the_figures_on_a_desk(
    placement: int, phone: Page, desk: Page, live_server: str
) -> None:
    for page in (phone, desk):
        page.goto(f"{live_server}/admin/analytics/placements/{placement}")
        expect(page.locator("#placement-qr svg")).to_be_visible()
        assert_usable(page, [])
    on_phone, on_desk = _boxes(phone), _boxes(desk)

    for boxes in (on_phone, on_desk):
        _no_blank_beside_the_symbol(boxes)
    # Phone: the figure spans the card above the figures, the code centred in it at a size a
    # scan from the screen wants.
    figure, code = on_phone["figure"], on_phone["box"]
    assert abs(figure["width"] - on_phone["figures"]["width"]) <= 1, on_phone
    assert figure["bottom"] <= on_phone["figures"]["top"]
    assert abs((code["left"] - figure["left"]) - (figure["right"] - code["right"])) <= 1
    assert code["width"] >= 200
    # Desk: beside the figures, as before.
    assert on_desk["figure"]["right"] <= on_desk["figures"]["left"]
    assert on_desk["box"]["width"] >= 150
