"""A customer's "Ask a question" and "Get updates by e-mail" sent with mistakes, on a phone:
the form comes back with every mistake beside its field at once, focused on the first one to
correct (where a screen reader reads its error), with what was typed still in it; as the
offer's accept and decline forms do. And "Refresh" on an order's timeline keeps the focus.

A server of its own for the forms: each answer taken spends this client's budget of the public
forms (five in ten minutes), which the shared live server's other tests need, and each refused
one the cap on refused forms (twenty). The tests here send two of the one and three of the
other."""

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine
from sqlmodel import Session

from app.auth.service import create_api_key
from app.config import get_settings
from app.tracking import service as tracking_service
from tests.browser.conftest import PHONE_390
from tests.browser.staffpages import problems
from tests.conftest import _free_port, serving
from tests.factories import make_offer

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]


@pytest.fixture(scope="module")
def own_server(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "OFFERTRACK_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "OFFERTRACK_SCAN_FEED": "false",
    }
    log = Path(tmp_path_factory.mktemp("form-errors")) / "server.log"
    with serving(env, port, log) as base_url:
        yield base_url


@pytest.fixture
def german_phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(**PHONE_390, locale="de-DE", bypass_csp=True)  # axe: staffpages
    yield context.new_page()
    context.close()


def _focused(page: Page) -> str:
    return str(page.evaluate("document.activeElement.id"))


def test_a_question_with_two_mistakes_shows_both_and_focuses_the_first(
    committed: Engine, own_server: str, german_phone: Page
) -> None:
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True)
    page = german_phone
    page.goto(f"{own_server}/{offer.id}")
    asking = page.get_by_role("region", name="Eine Frage stellen")
    asking.get_by_label("Ihre E-Mail-Adresse").fill("einkauf@example")  # no domain ending
    asking.get_by_role("button", name="Frage senden").click()  # and no question written

    # Both mistakes at once: before, only the address was named, and the empty question only
    # after the customer had corrected it and sent the form a second time.
    expect(page.locator("#email-error")).to_contain_text("gültige E-Mail-Adresse")
    expect(page.locator("#message-error")).to_be_visible()
    assert _focused(page) == "question-email"  # before: the page's body, the error unread
    expect(page.get_by_label("Ihre E-Mail-Adresse")).to_have_value("einkauf@example")
    assert problems(page) == []

    page.get_by_label("Ihre E-Mail-Adresse").fill("einkauf@example.de")
    page.get_by_role("button", name="Frage senden").click()  # the question still empty
    expect(page.locator("#message-error")).to_be_visible()
    expect(page.locator("#email-error")).to_have_count(0)
    assert _focused(page) == "question-message"


def test_a_refused_address_for_updates_is_focused_and_the_one_sent_to_shown(
    committed: Engine, own_server: str, german_phone: Page
) -> None:
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        order = make_offer(session, settings, issued=True)
        tracking_service.activate_offer(session, order.id, actor="tests", settings=settings)
    page = german_phone
    page.goto(f"{own_server}/{order.tracking_id}")
    page.get_by_label("Ihre E-Mail-Adresse").fill("einkauf@")
    page.get_by_role("button", name="Benachrichtigungen erhalten").click()

    expect(page.locator("#email-error")).to_be_visible()
    assert _focused(page) == "subscribe-email"
    expect(page.get_by_label("Ihre E-Mail-Adresse")).to_have_value("einkauf@")

    page.get_by_label("Ihre E-Mail-Adresse").fill("einkauf@gmial.com")
    page.get_by_role("button", name="Benachrichtigungen erhalten").click()
    expect(page.get_by_role("heading", name="Bitte sehen Sie in Ihr Postfach")).to_be_visible()
    # The address the mail went to, to spot a typo before waiting for it.
    expect(page.locator(".sent-copy dd")).to_have_text("einkauf@gmial.com")


def test_refresh_on_the_timeline_keeps_the_focus(
    committed: Engine, own_server: str, german_phone: Page
) -> None:
    # A screen reader or keyboard user pressing "Aktualisieren" was put back at the page's top:
    # the timeline, the button in it, is swapped in place.
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        order = make_offer(session, settings, issued=True)
        tracking_service.activate_offer(session, order.id, actor="tests", settings=settings)
    page = german_phone
    page.goto(f"{own_server}/{order.tracking_id}")
    page.locator("#timeline").evaluate("e => { e.dataset.before = 'yes'; }")
    page.get_by_role("link", name="Aktualisieren").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("!document.querySelector('#timeline').dataset.before")  # swapped

    expect(page.get_by_role("link", name="Aktualisieren")).to_be_focused()
    assert page.url.endswith(order.tracking_id)  # in place, not a page load


def test_the_page_after_a_question_shows_what_was_sent_and_where_the_answer_goes(
    committed: Engine, own_server: str, german_phone: Page
) -> None:
    # "Your question is on its way" named neither the address nor the question: a buyer who
    # typed gmial.com learned it only from days without an answer.
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True)
    page = german_phone
    page.goto(f"{own_server}/{offer.id}")
    page.get_by_label("Ihre E-Mail-Adresse").fill("einkauf@gmial.com")
    page.get_by_label("Ihre Frage").fill("Liefern Sie auch in 316L?\nUnd bis wann?")
    page.get_by_role("button", name="Frage senden").click()

    expect(page.get_by_role("heading", name="Ihre Frage ist unterwegs")).to_be_visible()
    sent = page.locator(".sent-copy")
    expect(sent.locator("dd").first).to_have_text("einkauf@gmial.com")
    # As typed, on two lines.
    assert sent.locator("dd").nth(1).inner_text() == "Liefern Sie auch in 316L?\nUnd bis wann?"
    assert problems(page) == []


def test_a_code_typed_wrong_comes_back_focused_and_described_by_what_is_wrong(
    own_server: str, german_phone: Page
) -> None:
    # The field came back unmarked and unfocused: a screen reader user heard the error only by
    # searching the page for it, then had to find the field again.
    page = german_phone
    page.goto(f"{own_server}/")
    page.get_by_label("Tracking-Code").fill("01m99 ss76")  # one character short
    page.get_by_label("Tracking-Code").press("Enter")

    field = page.get_by_role("textbox", name="Tracking-Code")
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_accessible_description(re.compile("Er hat 9 Zeichen"))
    expect(field).to_have_value("01m99 ss76")
    assert problems(page) == []


def test_a_new_stage_is_announced_once_by_a_live_region_outside_the_timeline(
    committed: Engine, own_server: str, german_phone: Page
) -> None:
    # The "Current stage" line was a live region inside the part htmx replaces: a region that
    # is swapped in is new, so a screen reader announced nothing when the stage changed.
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        order = make_offer(session, settings, issued=True)
        tracking_service.activate_offer(session, order.id, actor="tests", settings=settings)
        _, token = create_api_key(session, "stage-news", actor="tests")
    page = german_phone
    page.goto(f"{own_server}/{order.tracking_id}")
    news = page.locator("#stage-news")
    expect(news).to_have_attribute("aria-live", "polite")
    assert news.evaluate("e => e.closest('#timeline')") is None  # outside the swapped part
    news.evaluate(
        "e => { window.__newsChanges = 0;"
        " new MutationObserver(() => { window.__newsChanges += 1; })"
        ".observe(e, {childList: true, characterData: true, subtree: true}); }"
    )

    _refresh(page)  # nothing changed
    assert page.evaluate("window.__newsChanges") == 0
    expect(news).to_have_text("")

    response = httpx.post(
        f"{own_server}/api/v1/orders/{order.tracking_id}/updates",
        json={"stage": "In production"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201
    _refresh(page)
    expect(news).to_have_text("Aktueller Stand: In Produktion")
    changes = page.evaluate("window.__newsChanges")

    _refresh(page)  # the 30-second refresh again, with nothing new: nothing said again
    assert page.evaluate("window.__newsChanges") == changes
    expect(news).to_have_text("Aktueller Stand: In Produktion")
    expect(page.get_by_role("link", name="Aktualisieren")).to_be_focused()
    assert problems(page) == []


def _refresh(page: Page) -> None:
    page.locator("#timeline").evaluate("e => { e.dataset.before = 'yes'; }")
    page.get_by_role("link", name="Aktualisieren").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("!document.querySelector('#timeline').dataset.before")
