"""A customer's phone: scan, watch the timeline update in place, accept an offer."""

import re
from pathlib import Path

import httpx2 as httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine
from sqlmodel import Session

from app.auth.service import create_api_key
from app.config import get_settings
from app.tracking import service as tracking_service
from tests.factories import make_offer

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
SCREENSHOTS = Path(__file__).parent / "screenshots"


def test_scan_watch_progress_then_accept(committed: Engine, live_server: str, phone: Page) -> None:
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        order = make_offer(session, settings, issued=True, company="Acme Hellas SA")
        tracking_service.activate_offer(session, order.id, actor="tests", settings=settings)
        offer = make_offer(session, settings, issued=True, company="Nordwind GmbH")
        _, token = create_api_key(session, "browser-test", actor="tests")
    requested: list[str] = []
    phone.on("request", lambda request: requested.append(request.url))

    phone.goto(f"{live_server}/{order.id}")
    expect(phone.get_by_role("heading", name="Order progress")).to_be_visible()
    expect(phone.locator(".current-stage")).to_contain_text("Order confirmed")
    phone.evaluate("window.__sameDocument = true")

    response = httpx.post(
        f"{live_server}/api/v1/orders/{order.tracking_id}/updates",
        json={"stage": "In production", "public_note": "Machining started"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201
    phone.get_by_role("link", name="Refresh").click()

    expect(phone.locator(".current-stage")).to_contain_text("In production")
    expect(phone.get_by_text("Machining started")).to_be_visible()
    assert phone.evaluate("window.__sameDocument") is True  # swapped in place, no reload
    _assert_fits_the_screen(phone)
    SCREENSHOTS.mkdir(exist_ok=True)
    phone.screenshot(path=str(SCREENSHOTS / "order.png"), full_page=True)

    phone.goto(f"{live_server}/{offer.id}")
    phone.get_by_label("Your name").fill("Maria Papadopoulou")
    phone.get_by_label(re.compile("Purchase order number")).fill("PO-2026-117")
    phone.get_by_role("checkbox", name="I accept this offer and its conditions").check()
    phone.get_by_role("button", name="Accept offer").click()

    expect(phone.get_by_role("heading", name=re.compile("Thank you"))).to_be_visible()
    phone.get_by_role("link", name="Back to the offer").click()
    expect(phone.locator(".status")).to_have_text("Accepted")
    expect(phone.get_by_text("by Maria Papadopoulou, PO PO-2026-117")).to_be_visible()
    phone.screenshot(path=str(SCREENSHOTS / "accepted.png"), full_page=True)
    assert all(url.startswith(live_server) for url in requested), "third-party request made"


def _assert_fits_the_screen(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"page is {width}px wide on a 360px screen"
