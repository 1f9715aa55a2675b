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

from tests.admin.staffroutes import PASSWORD, demo_data, staff_pages
from tests.browser.conftest import ContextOptions
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


def test_every_staff_page_fits_a_390_px_phone(
    app: FastAPI, committed: Engine, live_server: str, browser: Browser
) -> None:
    pages = staff_pages(app, demo_data(committed), committed)
    page = browser.new_context(**PHONE_390, bypass_csp=True).new_page()  # for axe: staffpages
    found: dict[str, list[str]] = {}
    try:
        page.goto(f"{live_server}{pages[0]}")
        found[pages[0]] = phone_problems(page)
        page.get_by_label("E-mail").fill("admin@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Orders per stage")).to_be_visible()
        for path in pages[1:]:
            response = page.goto(f"{live_server}{path}")
            assert response is not None and response.status == 200, path
            assert "/admin/login" not in page.url, f"{path} sent the admin to sign in"
            found[path] = phone_problems(page)
    finally:
        page.context.close()
    report = [f"{path}: {problem}" for path, problems in found.items() for problem in problems]
    assert not report, "\n".join(report)
