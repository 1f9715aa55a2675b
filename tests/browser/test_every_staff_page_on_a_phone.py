"""Every staff page on a 390 x 844 phone, signed in as an admin on demo-like data (lists and
tables not empty): the page does not scroll sideways, no table is wider than its container
unless it sits in a labelled, focusable scroll region (WCAG 2.1.1 and 4.1.2: a region a
keyboard can scroll and a screen reader can name), every link and button in the main content
is a 44 px target or has 44 px of room around it (WCAG 2.5.5, with 2.5.8's spacing rule at
44 px), axe-core reports no violation at all, best practices included, and the page's first
heading or card sits under the top bar without a gap (a list's card sat 76 px below it, under
an empty page header).

The pages come from the app's routes (tests.admin.staffroutes), as in the every-page test at
360 px; one browser context and one page walk them all, with every <details> opened so the
tables folded inside are measured too.
"""

from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine

from tests.admin.staffroutes import PASSWORD, Ids, demo_data, staff_pages
from tests.browser.conftest import DESK, ContextOptions
from tests.browser.staffpages import AXE_SOURCE

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
PHONE_390: ContextOptions = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
TAP = 44
# The most room above a page's first heading or card (the shell's margin on a phone is 16 px).
GAP = 24

MEASURE = (Path(__file__).parent / "phone_checks.js").read_text()
RUN_AXE = """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
  .map(v => `axe ${v.id} (${v.impact}): `
            + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", "))"""


def phone_problems(page: Page) -> list[str]:
    """What is wrong with the page shown, at the phone's width."""
    page.wait_for_load_state("load")
    found: list[str] = page.evaluate(MEASURE, [TAP, GAP])
    page.evaluate(AXE_SOURCE + "\n;0")
    violations: list[str] = page.evaluate(RUN_AXE)
    return found + violations


def _sign_in(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/admin/login")
    page.get_by_label("E-mail").fill("admin@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Orders per stage")).to_be_visible()


def test_every_staff_page_fits_a_390_px_phone(
    app: FastAPI, committed: Engine, live_server: str, browser: Browser
) -> None:
    pages = staff_pages(app, demo_data(committed), committed)
    page = browser.new_context(**PHONE_390, bypass_csp=True).new_page()  # for axe: staffpages
    found: dict[str, list[str]] = {}
    try:
        page.goto(f"{live_server}{pages[0]}")
        found[pages[0]] = phone_problems(page)
        _sign_in(page, live_server)
        for path in pages[1:]:
            response = page.goto(f"{live_server}{path}")
            assert response is not None and response.status == 200, path
            assert "/admin/login" not in page.url, f"{path} sent the admin to sign in"
            found[path] = phone_problems(page)
    finally:
        page.context.close()
    report = [f"{path}: {problem}" for path, problems in found.items() for problem in problems]
    assert not report, "\n".join(report)


def _tables(ids: Ids) -> list[tuple[str, str, str, str]]:
    """Page, table, and two of its columns: the row's title and a value read under it."""
    return [
        ("/admin/terms-templates", "table", "Name", "Text"),
        ("/admin/analytics/campaigns", "table", "Name", "Dates"),
        ("/admin/analytics/webhooks", "table", "URL", "State"),
        (f"/admin/analytics/campaigns/{ids.campaign}", "table >> nth=0", "Placement", "Fallback"),
        (f"/admin/analytics/campaigns/{ids.campaign}", "table >> nth=1", "Creative", "utm_content"),
        (f"/admin/analytics/placements/{ids.placement}", "#placement-totals", "Scans", "Revenue"),
        (f"/admin/offer/details/{ids.issued}", "#offer-lines", "Description", "Net"),
        (f"/admin/order/details/{ids.order}", "#stage-updates", "When", "Public note"),
        ("/admin/settings", "table", "Variable", "Value"),
    ]


def test_tables_read_row_by_row_are_cards_on_a_phone_and_tables_at_1280_px(
    committed: Engine, live_server: str, browser: Browser
) -> None:
    ids = demo_data(committed)
    for options, phone in ((PHONE_390, True), (DESK, False)):
        page = browser.new_context(**options).new_page()
        _sign_in(page, live_server)
        for path, table, title, value in _tables(ids):
            page.goto(f"{live_server}{path}")
            rows = page.locator("main").locator(table).locator("tbody tr")
            first, other = (rows.first.locator(f'td[data-label="{c}"]') for c in (title, value))
            heads = page.locator("main").locator(table).locator("thead")
            header = heads.get_by_role("columnheader", name=value, exact=True)
            expect(first).to_be_visible()  # each value carries its column's name
            expect(other).to_be_visible()
            a, b = first.bounding_box(), other.bounding_box()
            assert a and b, (path, table)
            if phone:  # the value under its column's name, under the row's title, on screen
                shown = other.evaluate("e => getComputedStyle(e, '::before').content")
                assert shown == f'"{value}"', (path, shown)
                assert b["y"] >= a["y"] + a["height"] and b["x"] + b["width"] <= 390, (path, b)
                box = header.bounding_box()  # the header row's name only for screen readers
                assert box is None or box["width"] <= 1, (path, box)
            else:  # one line per row under the header row, no label before the value
                expect(header).to_be_visible()
                assert abs(a["y"] - b["y"]) < a["height"], (path, a, b)
                shown = other.evaluate("e => getComputedStyle(e, '::before').content")
                assert shown == "none", (path, shown)
        page.context.close()
