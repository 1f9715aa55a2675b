"""The customer's pages in their language, on the seller's letterhead, with no dead ends."""

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from app import i18n
from app.auth.staff import Role, StaffUser
from app.config import Settings, get_settings, settings_dependency
from app.offers import service as offers_service
from app.offers.ids import hyphenate_tracking_id
from app.offers.models import OfferStatus
from app.tracking import router
from app.tracking import service as tracking_service
from tests.factories import line_data, make_offer
from tests.tracking.test_pages import csrf_of, make_order

GERMAN_BROWSER = {"accept-language": "de-DE,de;q=0.9,en;q=0.8"}
ENGLISH_BROWSER = {"accept-language": "en-GB,en;q=0.9"}


def html_lang(html: str) -> str:
    found = re.search(r'<html lang="([a-z]+)"', html)
    assert found
    return found.group(1)


def test_the_page_speaks_the_offers_language(
    client: TestClient, session: Session, settings: Settings
) -> None:
    lines = [line_data(quantity="1500", unit_price="1.5")]
    offer = make_offer(session, settings, issued=True, language="de", lines=lines)

    text = client.get(f"/{offer.id}").text

    assert html_lang(text) == "de"
    assert "Angebot für Acme Hellas SA" in text and "Dieses Angebot annehmen" in text
    assert "2.250,00\xa0€" in text and "1.500" in text  # Babel's German amounts
    assert "Accept this offer" not in text


def test_accept_language_wins_unless_the_visitor_reads_the_offers_language(
    client: TestClient, session: Session, settings: Settings
) -> None:
    greek = make_offer(session, settings, issued=True, language="el")
    german = make_offer(session, settings, issued=True, language="de")

    assert html_lang(client.get(f"/{greek.id}", headers=GERMAN_BROWSER).text) == "de"
    assert html_lang(client.get(f"/{german.id}", headers=GERMAN_BROWSER).text) == "de"
    # Reads English first but German too: the German offer stays German.
    both = {"accept-language": "en-US,en;q=0.9,de;q=0.5"}
    assert html_lang(client.get(f"/{german.id}", headers=both).text) == "de"
    greek_page = client.get(f"/{greek.id}", headers={"accept-language": "fr-FR,fr"}).text
    assert html_lang(greek_page) == "el" and "Αποδοχή αυτής της προσφοράς" in greek_page


def test_the_switcher_is_links_and_its_choice_wins(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True, language="de")

    page = client.get(f"/{offer.id}").text
    for code, name in (("en", "English"), ("de", "Deutsch"), ("el", "Ελληνικά")):
        link = f'<a href="/{offer.id}?lang={code}" hreflang="{code}" lang="{code}"'
        assert link in page and name in page
    chosen = client.get(f"/{offer.id}?lang=el", headers=GERMAN_BROWSER)

    assert html_lang(chosen.text) == "el" and "Η απόφασή σας" in chosen.text
    assert f'action="http://testserver/{offer.id}/accept?lang=el"' in chosen.text.replace(
        "https://track.example.com", "http://testserver"
    )
    assert html_lang(client.get(f"/{offer.id}?lang=xx").text) == "de"  # unknown: ignored


def test_cached_pages_vary_by_language(
    client: TestClient, session: Session, settings: Settings, page_loads: list[int]
) -> None:
    offer = make_offer(session, settings, issued=True, language="el")

    views = [
        client.get(f"/{offer.id}", headers=GERMAN_BROWSER),
        client.get(f"/{offer.id}", headers=ENGLISH_BROWSER),
        client.get(f"/{offer.id}", headers={"accept-language": "de-AT,de;q=0.8,en;q=0.5"}),
        client.get(f"/{offer.id}?lang=el", headers=GERMAN_BROWSER),
        client.get(f"/{offer.id}", headers=ENGLISH_BROWSER),
    ]

    assert [html_lang(v.text) for v in views] == ["de", "en", "de", "el", "en"]
    assert len(page_loads) == 3  # German, English, Greek rendered once each
    assert "Accept-Language" in views[0].headers["Vary"]


def test_a_cached_page_never_carries_another_visitors_query(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True, language="de")

    first = client.get(f"/{offer.id}?utm_source=newsletter-anna&src=pdf")
    second = client.get(f"/{offer.id}")  # the same cache entry

    for page in (first.text, second.text):
        assert "newsletter-anna" not in page and "src=pdf" not in page
        assert f'<a href="/{offer.id}?lang=el" hreflang="el"' in page


def test_the_order_timeline_and_its_htmx_fragment_are_translated(
    client: TestClient, session: Session, settings: Settings
) -> None:
    order = make_order(session, settings)

    page = client.get(f"/{order.tracking_id}?lang=de").text
    fragment = client.get(f"/{order.tracking_id}?lang=el", headers={"HX-Request": "true"}).text

    assert "Auftragsstatus" in page and "Auftrag bestätigt" in page
    assert fragment.lstrip().startswith('<section id="timeline"')
    assert "Πορεία παραγγελίας" in fragment and "?lang=el" in fragment


def test_accepting_needs_the_terms_checkbox_and_keeps_what_was_typed(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True, terms="Payment 30 days net.")
    page = client.get(f"/{offer.id}").text
    assert "Payment 30 days net." in page and "I accept these terms" in page

    data = {"signer_name": "Maria P.", "po_number": "PO-9", "csrf_token": csrf_of(page)}
    refused = client.post(f"/{offer.id}/accept", data=data)

    assert refused.status_code == 422
    assert "Please confirm that you accept the terms." in refused.text
    assert 'value="Maria P."' in refused.text and 'value="PO-9"' in refused.text
    session.refresh(offer)
    assert offer.status == OfferStatus.ISSUED


def test_after_accepting_a_confirmation_says_what_happens_next(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True, language="de")
    token = csrf_of(client.get(f"/{offer.id}").text)
    data = {"signer_name": "Maria P.", "po_number": "PO-9", "csrf_token": token}

    response = client.post(f"/{offer.id}/accept", data=data | {"accept_terms": "yes"})

    assert response.url.path == f"/{offer.id}/accepted"
    text = response.text
    assert "Vielen Dank" in text and "Wie es weitergeht" in text
    assert "Maria P." in text and "PO-9" in text
    page = client.get(f"/{offer.id}").text
    assert "Maria P." in page and "Bestellnr. PO-9" in page


def test_the_confirmation_page_of_an_open_offer_leads_back_to_it(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)

    response = client.get(f"/{offer.id}/accepted", follow_redirects=False)

    assert response.status_code == 303 and response.headers["location"].endswith(f"/{offer.id}")


@pytest.mark.parametrize("status", ["declined", "expired", "superseded"])
def test_closed_offers_offer_to_ask_for_a_new_quotation(
    client: TestClient, session: Session, settings: Settings, status: str
) -> None:
    offer = make_offer(session, settings, issued=True)
    if status == "declined":
        offers_service.decline_offer(session, offer.id, reason="Too dear", settings=settings)
    elif status == "superseded":
        offers_service.revise_offer(session, offer.id, actor="tests", settings=settings)
    else:
        offer.valid_until = offers_service.today(settings).replace(year=2000)
        session.add(offer)
        session.commit()

    text = client.get(f"/{offer.id}").text

    # A form that reaches the owner through the question mail, not a mailto: link.
    assert "Ask for a new quotation</button>" in text
    assert f'/{offer.id}/question" novalidate' in text
    assert 'name="topic" value="new_quotation"' in text
    assert "mailto:" + settings.company_email + "?subject" not in text


def test_the_contact_block_names_the_owner_or_else_the_company(
    client: TestClient, session: Session, settings: Settings
) -> None:
    owner = StaffUser(
        email="eleni@tectra.gr",
        full_name="Eleni K.",
        phone="+30 210 1234567",
        role=Role.SALES,
        password_hash="x",
    )
    session.add(owner)
    session.commit()
    owned = make_offer(session, settings, issued=True)
    owned.owner_id = owner.id
    session.add(owned)
    session.commit()
    unowned = make_offer(session, settings, issued=True)

    owned_page = client.get(f"/{owned.id}").text
    unowned_page = client.get(f"/{unowned.id}").text
    home = client.get("/").text

    assert "Eleni K." in owned_page and "mailto:eleni@tectra.gr" in owned_page
    assert "tel:+302101234567" in owned_page
    for page in (unowned_page, home):
        assert f"mailto:{settings.company_email}" in page and "Eleni K." not in page


def test_the_short_code_page_names_the_company_never_the_owner(
    client: TestClient, session: Session, settings: Settings
) -> None:
    owner = StaffUser(
        email="eleni@tectra.gr", full_name="Eleni K.", role=Role.SALES, password_hash="x"
    )
    session.add(owner)
    session.commit()
    order = make_order(session, settings)
    order.owner_id = owner.id
    session.add(order)
    session.commit()

    text = client.get(f"/{order.tracking_id}").text

    assert "Eleni K." not in text and "eleni@tectra.gr" not in text
    assert f"mailto:{settings.company_email}" in text


def test_every_public_page_carries_the_sellers_brand(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    pages = [client.get("/"), client.get(f"/{offer.id}"), client.get("/lookup?code=UUUU")]
    pages.append(client.get("/no/such/page"))

    for page in pages:
        assert '<a class="brand" href="https://track.example.com/">' in page.text
        assert f"<span>{settings.company_name}</span>" in page.text
        assert 'rel="icon" href="https://track.example.com/static/favicon.svg"' in page.text
        assert "/brand.css" in page.text and "powered by OfferTrack" in page.text
        assert "<title>OfferTrack" not in page.text
    css = client.get("/brand.css")
    assert css.headers["content-type"].startswith("text/css")
    assert css.text == f":root {{ --brand: {settings.accent_color}; }}\n"


def test_settings_remove_powered_by_and_set_the_colour_and_logo(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    branded = get_settings().model_copy(
        update={"powered_by": False, "accent_color": "#7a1f5c", "company_logo": "favicon.svg"}
    )
    from app.templating import templates

    monkeypatch.setitem(templates.env.globals, "get_settings", lambda: branded)
    app = client.app
    assert isinstance(app, FastAPI)
    app.dependency_overrides[settings_dependency] = lambda: branded
    try:
        home = client.get("/").text
        css = client.get("/brand.css").text
    finally:
        app.dependency_overrides.pop(settings_dependency)

    assert "powered by" not in home and 'class="brand-logo"' in home
    assert "#7a1f5c" in css


def test_a_code_with_impossible_letters_gets_plain_words_and_keeps_what_was_typed(
    client: TestClient,
) -> None:
    typed = client.get("/lookup", params={"code": "01H0W-ARYUW"})
    opened = client.get("/not-a-code-at-all")
    german = client.get("/lookup", params={"code": "XYZ!", "lang": "de"})

    assert typed.status_code == 400
    assert "That doesn't look like a tracking code: 01H0W-ARYUW" in typed.text
    assert 'value="01H0W-ARYUW"' in typed.text
    assert opened.status_code in (400, 404) and 'value="not-a-code-at-all"' in opened.text
    assert "Das sieht nicht nach einem Tracking-Code aus: XYZ!" in german.text
    assert html_lang(german.text) == "de"
    # The switcher keeps what was typed; the entry form keeps the language chosen.
    assert 'href="/lookup?code=XYZ%21&amp;lang=el"' in german.text
    assert '<input type="hidden" name="lang" value="de">' in german.text


def test_an_unknown_code_keeps_what_was_typed(client: TestClient) -> None:
    response = client.get("/lookup", params={"code": "01H0W-ARY2W"}, follow_redirects=True)

    assert response.status_code == 404
    assert 'value="01H0WARY2W"' in response.text or 'value="01H0W-ARY2W"' in response.text


def test_error_pages_speak_the_visitors_language(client: TestClient) -> None:
    english = client.get("/no/such/page")
    greek = client.get("/no/such/page", headers={"accept-language": "el"})
    fragment = client.get("/no/such/page?lang=de", headers={"HX-Request": "true"})

    assert english.status_code == greek.status_code == 404
    assert html_lang(greek.text) == "el" and "Η σελίδα δεν βρέθηκε" in greek.text
    assert "Not found" in english.text
    assert "Seite nicht gefunden" in fragment.text and "<html" not in fragment.text


def test_the_switcher_on_an_answered_form_leads_to_the_offer_page(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    token = csrf_of(client.get(f"/{offer.id}").text)

    refused = client.post(f"/{offer.id}/accept", data={"signer_name": "M", "csrf_token": token})

    assert refused.status_code == 422
    assert f'<a href="/{offer.id}?lang=de" hreflang="de"' in refused.text


def test_long_accept_language_headers_are_read_but_not_kept(
    client: TestClient, session: Session, settings: Settings
) -> None:
    """The parsed headers are cached for the next views; a client sending long headers, each
    different, must not have them kept (a server takes a header of megabytes)."""
    order = make_order(session, settings)
    caches = (i18n._accepted_languages, router._cached_accepted_languages)
    for cache in caches:
        cache.cache_clear()

    for n in range(300):
        header = f"el;q=0.5, {'x' * 2_000}{n}, de;q=0.9"
        page = client.get(f"/{order.tracking_id}", headers={"accept-language": header})
        assert html_lang(page.text) == "de"  # still read in full

    assert [cache.cache_info().currsize for cache in caches] == [0, 0]


def test_an_order_opens_with_a_first_note_in_the_offers_language(
    client: TestClient, session: Session, settings: Settings
) -> None:
    # A German buyer following the order by its tracking ID read "Auftrag bestätigt" over the
    # English "We have received your order.", and so did the feed.
    german = make_offer(session, settings, issued=True, language="de")
    tracking_service.activate_offer(session, german.id, actor="tests", settings=settings)
    greek = make_offer(session, settings, issued=True, language="el")
    tracking_service.activate_offer(session, greek.id, actor="tests", settings=settings)

    by_tracking_id = client.get(f"/{hyphenate_tracking_id(german.tracking_id).lower()}").text
    feed = client.get(f"/{german.id}/feed.atom").text
    greek_page = client.get(f"/{greek.id}").text

    assert "Wir haben Ihre Bestellung erhalten." in by_tracking_id
    assert "Wir haben Ihre Bestellung erhalten." in feed
    assert "Λάβαμε την παραγγελία σας." in greek_page
    assert all("We have received" not in text for text in (by_tracking_id, feed, greek_page))


def test_each_line_shows_its_unit_price_and_discount_as_the_pdf_does(
    client: TestClient, session: Session, settings: Settings
) -> None:
    """A buyer checks each line's net against the PDF: 3.5 h at 89.995 less 10 % is 283.48."""
    lines = [
        line_data(description="Service hours", quantity="3.5", unit_price="89.995"),
        line_data(description="Freight", quantity="1", unit_price="120", vat_rate="7"),
    ]
    lines[0]["discount_percent"] = "10"
    offer = make_offer(session, settings, issued=True, language="de", lines=lines)

    german = client.get(f"/{offer.id}").text
    english = client.get(f"/{offer.id}?lang=en").text

    service_row, freight_row = re.findall(
        r"<tr><td>(?:Service hours|Freight).*?</tr>", german, re.S
    )
    assert "Einzelpreis 89,995\xa0€" in service_row and "Rabatt 10\xa0%" in service_row
    assert "283,48\xa0€" in service_row
    assert "Einzelpreis 120,00\xa0€" in freight_row and "Rabatt" not in freight_row
    assert "Unit price €89.995" in english and "Discount 10%" in english
