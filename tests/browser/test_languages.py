"""An offer opened in German and in Greek on a 360 px phone, accepted with the terms checkbox."""

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine
from sqlmodel import Session

from app.config import get_settings
from app.offers.models import Offer, OfferStatus
from tests.factories import line_data, make_offer

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
TERMS = "Payment 30 days net. Delivery ex works Thessaloniki; prices without installation."
WORDS = {
    "de": {
        "decision": "Ihre Entscheidung",
        "name": "Ihr Name",
        "po": "Bestellnummer",
        "accept": "Ich akzeptiere diese Bedingungen",
        "button": "Angebot annehmen",
        "thanks": "Vielen Dank",
        "next": "Wie es weitergeht",
        "amount": "12.345,68\xa0€",
    },
    "el": {
        "decision": "Η απόφασή σας",
        "name": "Το όνομά σας",
        "po": "Αριθμός παραγγελίας",
        "accept": "Αποδέχομαι αυτούς τους όρους",
        "button": "Αποδοχή προσφοράς",
        "thanks": "Σας ευχαριστούμε",
        "next": "Τα επόμενα βήματα",
        "amount": "12.345,68\xa0€",
    },
}


@pytest.mark.parametrize("language", ["de", "el"])
def test_an_offer_in_its_language_fits_a_phone_and_is_accepted_with_the_checkbox(
    committed: Engine, live_server: str, phone: Page, language: str
) -> None:
    settings = get_settings()
    words = WORDS[language]
    lines = [line_data(description="Kreiselpumpe PX-200 mit Edelstahlgehäuse", quantity="1")]
    lines[0]["unit_price"] = "12345.678"
    lines[0]["vat_rate"] = "0"
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(
            session, settings, issued=True, language=language, terms=TERMS, lines=lines
        )

    # The browser asks for English: the offer's own language still wins, as it reads it too.
    phone.set_extra_http_headers({"Accept-Language": f"en-US,en;q=0.9,{language};q=0.8"})
    phone.goto(f"{live_server}/{offer.id}")

    assert phone.locator("html").get_attribute("lang") == language
    expect(phone.get_by_role("heading", name=words["decision"])).to_be_visible()
    expect(phone.get_by_text(TERMS)).to_be_visible()
    expect(phone.locator("tfoot .gross")).to_contain_text(words["amount"])
    _assert_fits_the_screen(phone)

    phone.get_by_label(words["name"]).fill("Μαρία Παπαδοπούλου")
    phone.get_by_label(re.compile(words["po"])).fill("PO-2026-117")
    phone.get_by_role("button", name=words["button"]).click()
    expect(phone.locator("#accept_terms-error")).to_be_visible()  # not without the checkbox
    _assert_fits_the_screen(phone)

    phone.get_by_role("checkbox", name=words["accept"]).check()
    phone.get_by_role("button", name=words["button"]).click()

    expect(phone.get_by_role("heading", name=re.compile(words["thanks"]))).to_be_visible()
    expect(phone.get_by_role("heading", name=words["next"])).to_be_visible()
    assert phone.locator("html").get_attribute("lang") == language
    _assert_fits_the_screen(phone)
    with Session(committed) as session:
        accepted = session.get(Offer, offer.id)
        assert accepted is not None and accepted.status == OfferStatus.ACCEPTED
        assert accepted.accepted_po_number == "PO-2026-117"


def test_the_switcher_changes_the_language_without_javascript(
    committed: Engine, live_server: str, phone: Page
) -> None:
    settings = get_settings()
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True, language="de")

    phone.goto(f"{live_server}/{offer.id}")
    phone.get_by_role("link", name="Ελληνικά").click()

    assert phone.locator("html").get_attribute("lang") == "el"
    expect(phone.get_by_role("heading", name="Η απόφασή σας")).to_be_visible()
    _assert_fits_the_screen(phone)


def _assert_fits_the_screen(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"page is {width}px wide on a 360px screen"
