"""Every staff page, at 360 px and at 1280 px, signed in as an admin on demo-like data: no page
scrolls sideways and axe-core finds no serious or critical violation.

The pages are not listed by hand (tests.admin.staffroutes derives them from the staff site's
routes and sqladmin's views): a new route that is neither visited nor named in NOT_PAGES fails
the test, so no page is forgotten.
"""

import pytest
from fastapi import FastAPI
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from tests.admin.staffroutes import PASSWORD, TWO_FACTOR_USER, demo_data, staff_pages
from tests.browser.staffpages import problems

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]


def test_every_staff_page_fits_the_screen_and_passes_axe(
    app: FastAPI, committed: Engine, live_server: str, screen: Page
) -> None:
    ids = demo_data(committed)
    pages = staff_pages(app, ids, committed)
    page, found = screen, []
    page.goto(f"{live_server}{pages[0]}")
    found += problems(page)
    page.get_by_label("E-mail").fill("admin@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Orders per stage")).to_be_visible()
    for path in pages[1:]:
        response = page.goto(f"{live_server}{path}")
        assert response is not None and response.status == 200, (path, response and response.status)
        assert response.headers["content-type"].startswith("text/html"), path
        assert "/admin/login" not in page.url, f"{path} sent the admin to sign in"
        found += problems(page)
    page.context.clear_cookies()  # signed out: now the user whose sign-in needs a code
    page.goto(f"{live_server}/admin/login")
    page.get_by_label("E-mail").fill(TWO_FACTOR_USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/login/2fa")
    found += problems(page)
    assert not found, "\n".join(found)
    for must in ("/admin/account", f"/admin/analytics/placements/{ids.placement}"):
        assert must in pages, must  # the derivation found the pages named in the task
