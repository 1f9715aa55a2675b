"""Every page a customer meets, at 360 px and at 1280 px, in each language: no page scrolls
sideways and axe-core finds no serious or critical violation, no missing landmark or first
heading and no skipped heading level (the checks of the staff pages, tests.browser.staffpages).

Customers are the people OfferTrack is least able to train: whoever holds the paper, on
whatever phone, with whatever screen reader."""

import re

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine
from sqlmodel import Session

from app.config import get_settings
from app.notifications import subscriptions
from app.notifications.models import OrderSubscription
from app.offers import service as offers_service
from app.offers.ids import hyphenate_tracking_id
from app.tracking import service as tracking_service
from app.tracking.schemas import StageUpdateCreate
from tests.browser.conftest import PHONE
from tests.browser.staffpages import problems
from tests.factories import make_offer

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
LANGUAGES = {"Deutsch": "de", "Ελληνικά": "el", "English": "en"}


def _customer_paths(engine: Engine) -> tuple[str, str, list[str]]:
    """The offer to answer, the order to follow, and the other pages by their paths."""
    settings = get_settings()
    with Session(engine, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True, company="Nordwind GmbH")
        accepted = make_offer(session, settings, issued=True, company="Acme Hellas SA")
        offers_service.accept_offer(
            session, accepted.id, signer_name="Maria P.", po_number="PO-7", settings=settings
        )
        declined = make_offer(session, settings, issued=True)
        offers_service.decline_offer(session, declined.id, reason="Too late", settings=settings)
        order = make_offer(session, settings, issued=True)
        tracking_service.activate_offer(session, order.id, actor="tests", settings=settings)
        update = StageUpdateCreate(
            stage="Shipped", public_note="On its way", carrier="DHL", tracking_number="JD0142"
        )
        tracking_service.add_stage_update(
            session, order.id, update, actor="tests", settings=settings
        )
        pending = OrderSubscription(offer_id=order.id, email="a@example.com")
        session.add(pending)
        session.commit()
        assert pending.id is not None
        tokens = (
            subscriptions.confirm_token(pending.id, settings),
            subscriptions.unsubscribe_token(pending.id, settings),
        )
    others = [
        "/",
        f"/{accepted.id}",
        f"/{accepted.id}/accepted",
        f"/{declined.id}",
        f"/{declined.id}/declined",
        f"/{hyphenate_tracking_id(order.tracking_id).lower()}",
        "/01ZZZZZZZZ",  # no such order
        f"/updates/confirm/{tokens[0]}",
        f"/updates/unsubscribe/{tokens[1]}",
        "/updates/unsubscribe/broken",
    ]
    return offer.id, order.id, others


def test_every_customer_page_fits_the_screen_and_passes_axe(
    committed: Engine, live_server: str, screen: Page
) -> None:
    offer, order, others = _customer_paths(committed)
    page, found = screen, []
    for language, code in LANGUAGES.items():
        page.goto(f"{live_server}/{offer}")
        page.get_by_role("link", name=language).click()
        expect(page.locator("html")).to_have_attribute("lang", code)
        found += problems(page)
        for path in (f"/{order}", *others):
            page.goto(f"{live_server}{path}?lang={code}")  # as the language links ask
            expect(page.locator("html")).to_have_attribute("lang", code)
            found += problems(page)
    # A refused acceptance: the page again, its errors beside the fields.
    page.goto(f"{live_server}/{offer}")
    page.get_by_role("button", name="Accept offer").click()
    expect(page.locator("[aria-invalid=true]").first).to_be_visible()
    found += problems(page)
    assert not found, "\n".join(found)


def test_a_question_sent_and_a_subscription_asked_for_pass_axe(
    committed: Engine, live_server: str, browser: Browser
) -> None:
    # On a phone only: each answer counts against this client's five attempts in ten minutes,
    # which the live server's other tests share (tests/browser/test_notifications_flow.py).
    offer, order, _ = _customer_paths(committed)
    context = browser.new_context(**PHONE, bypass_csp=True)  # for axe only: see staffpages
    page, found = context.new_page(), []
    page.goto(f"{live_server}/{offer}")
    page.get_by_role("textbox", name=re.compile("Your e-mail")).first.fill("buyer@example.com")
    page.get_by_role("button", name=re.compile("question", re.I)).first.click()
    page.wait_for_url(f"**/{offer}/question")
    found += problems(page)
    page.goto(f"{live_server}/{order}")
    page.get_by_role("textbox", name=re.compile("e-mail", re.I)).first.fill("buyer@example.com")
    page.get_by_role("button", name=re.compile("updates", re.I)).first.click()
    page.wait_for_url(f"**/{order}/subscribe")
    found += problems(page)
    context.close()
    assert not found, "\n".join(found)
