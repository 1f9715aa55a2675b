"""A customer's phone: ask for e-mail updates about an order, confirm them, ask a question."""

import email
import re
from email.message import EmailMessage
from email.policy import default

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from app.config import get_settings
from app.notifications.models import MailOutbox, OrderSubscription
from app.tracking import service as tracking_service
from tests.factories import make_offer

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]


def _confirmations(engine: Engine) -> list[OrderSubscription]:
    with Session(engine) as session:
        return list(session.scalars(select(OrderSubscription)))


def _queued(engine: Engine, category: str) -> EmailMessage:
    with Session(engine) as session:
        [raw] = session.scalars(
            select(col(MailOutbox.message)).where(col(MailOutbox.category) == category)
        )
    message = email.message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)
    return message


def test_subscribe_confirm_with_the_button_then_ask_a_question(
    committed: Engine, live_server: str, phone: Page
) -> None:
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        order = make_offer(session, settings, issued=True, company="Acme Hellas SA")
        tracking_service.activate_offer(session, order.id, actor="tests", settings=settings)
        offer = make_offer(session, settings, issued=True, company="Nordwind GmbH")

    page = phone.goto(f"{live_server}/{order.tracking_id}")
    assert page is not None and page.status == 200, page and page.text()
    updates = phone.get_by_role("region", name="Get updates by e-mail")
    updates.get_by_label("Your e-mail address").fill("maria@example")
    updates.get_by_role("button", name="Get updates").click()
    field = phone.get_by_label("Your e-mail address")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(phone.locator("#email-error")).to_contain_text("valid e-mail address")
    field.fill("maria@example.com")
    phone.get_by_role("button", name="Get updates").click()
    expect(phone.get_by_role("heading", name="Check your inbox")).to_be_visible()

    text = _queued(committed, "subscription.confirm").get_body(("plain",))
    assert text is not None
    link = re.search(rf"{re.escape(live_server)}/updates/confirm/\S+", text.get_content())
    assert link, text.get_content()
    phone.goto(link.group(0))  # what a mail scanner does too
    expect(phone.get_by_role("heading", name="Confirm e-mail updates")).to_be_visible()
    assert [s.confirmed_at for s in _confirmations(committed)] == [None]
    phone.get_by_role("button", name="Confirm").click()
    expect(phone.get_by_role("heading", name="You will get e-mail updates")).to_be_visible()
    assert _confirmations(committed)[0].confirmed_at is not None

    phone.goto(f"{live_server}/{offer.id}")
    asking = phone.get_by_role("region", name="Ask a question")
    asking.get_by_label("Your e-mail address").fill("maria@example.com")
    asking.get_by_label("Your question").fill("Can you deliver in May?")
    asking.get_by_role("button", name="Send question").click()
    expect(phone.get_by_role("heading", name="Your question is on its way")).to_be_visible()
    question = _queued(committed, "alert.question")
    assert question["Reply-To"] == "maria@example.com"
