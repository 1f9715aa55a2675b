"""The Content-Security-Policy as a browser enforces it: nothing of ours is blocked."""

import httpx2 as httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect
from sqlalchemy import Engine
from sqlmodel import Session

from app.auth.service import create_api_key
from app.config import get_settings
from app.tracking import service as tracking_service
from tests.factories import make_offer

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]

# Added before any script of the page runs; DevTools-injected, so the CSP does not apply to it.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


def test_tracking_pages_break_no_csp_rule_and_htmx_still_swaps(
    committed: Engine, live_server: str, phone: Page
) -> None:
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        order = make_offer(session, settings, issued=True)
        tracking_service.activate_offer(session, order.id, actor="tests", settings=settings)
        offer = make_offer(session, settings, issued=True)
        _, token = create_api_key(session, "csp-test", actor="tests")
    console: list[str] = []
    phone.on("console", lambda message: console.append(_describe(message)))
    phone.add_init_script(RECORD_VIOLATIONS)

    response = phone.goto(f"{live_server}/{order.id}")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(phone.locator(".current-stage")).to_contain_text("Order confirmed")
    assert phone.evaluate("typeof htmx") == "object"  # htmx.min.js loaded under the policy
    phone.evaluate("window.__sameDocument = true")
    added = httpx.post(
        f"{live_server}/api/v1/orders/{order.tracking_id}/updates",
        json={"stage": "Shipped", "public_note": "On its way"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert added.status_code == 201
    phone.get_by_role("link", name="Refresh").click()

    expect(phone.locator(".current-stage")).to_contain_text("Shipped")
    assert phone.evaluate("window.__sameDocument") is True  # htmx swapped, no reload
    assert phone.evaluate("document.querySelectorAll('style').length") == 0
    violations = phone.evaluate("window.__violations")

    phone.goto(f"{live_server}/{offer.id}")
    phone.goto(f"{live_server}/")
    violations += phone.evaluate("window.__violations")

    assert violations == []
    assert not [line for line in console if "Content Security Policy" in line], console


def _describe(message: ConsoleMessage) -> str:
    return f"{message.type}: {message.text}"


def test_the_api_docs_work_with_no_request_to_another_site(live_server: str, phone: Page) -> None:
    elsewhere: list[str] = []
    phone.on(
        "request",
        lambda request: (
            None if request.url.startswith(live_server) else elsewhere.append(request.url)
        ),
    )
    phone.add_init_script(RECORD_VIOLATIONS)

    phone.goto(f"{live_server}/docs")

    expect(phone.locator(".swagger-ui .info .title")).to_contain_text("OfferTrack")
    expect(phone.locator(".opblock-tag-section").first).to_be_visible()
    assert elsewhere == []
    assert phone.evaluate("window.__violations") == []
