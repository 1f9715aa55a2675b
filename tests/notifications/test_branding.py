"""Every mail on the seller's letterhead: logo inline (no remote image), accent colour, name
and address; the offer's mail to the customer in the offer's language."""

from datetime import date
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from app.config import STATIC_DIR, Settings
from app.notifications import offer_mail
from app.notifications.templates import render_mail
from tests.factories import make_offer
from tests.notifications.conftest import Inbox, body_text, run_worker

pytestmark = pytest.mark.concurrency
ACCENT = "#7a1f5c"


@pytest.fixture
def branded(mail_settings: Settings) -> Settings:
    return mail_settings.model_copy(
        update={
            "company_name": "Tectra Hellas AE",
            "company_address": "Leoforos Kifisias 12\n15125 Marousi\nGreece",
            "company_logo": "favicon.svg",
            "accent_color": ACCENT,
        }
    )


def _send(engine: Engine, app: Any, settings: Settings, language: str) -> str:
    with Session(engine, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True, company="Müller GmbH", language=language)
        draft = offer_mail.draft_mail(offer, settings)
        offer_mail.send_offer(
            session,
            offer.id,
            draft,
            renderer=app.state.pdf_renderer,
            actor="staff:ana@example.com",
            settings=settings,
        )
    return offer.id


def _part(mail: EmailMessage, subtype: str) -> str:
    return body_text(mail, subtype)


def test_the_offer_mail_is_branded_with_an_inline_logo_and_the_pdf_attached(
    web: Any, app: Any, committed: Engine, branded: Settings, inbox: Inbox
) -> None:
    offer_id = _send(committed, app, branded, "en")
    run_worker(committed, branded)

    [mail] = inbox.messages
    assert mail.get_content_type() == "multipart/mixed"
    [body, pdf] = list(mail.iter_parts())
    assert body.get_content_type() == "multipart/alternative"
    text, related = list(body.iter_parts())
    assert text.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, logo = list(related.iter_parts())
    html = html_part.get_content()
    # The logo travels inside the mail, referenced by its Content-ID: nothing is fetched.
    assert logo["Content-ID"] == "<company-logo@offertrack>"
    assert 'src="cid:company-logo@offertrack"' in html
    assert logo.get_content() == (STATIC_DIR / "favicon.svg").read_bytes()
    assert "http" not in html.split("<img", 1)[1].split(">", 1)[0]
    assert "Tectra Hellas AE" in html and ACCENT in html and "15125 Marousi" in html
    assert "Tectra Hellas AE" in text.get_content() and "15125 Marousi" in text.get_content()
    assert f"/{offer_id}" in html and f"/{offer_id}" in text.get_content()
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_content().startswith(b"%PDF")
    assert "powered by OfferTrack" in html


def test_a_german_offer_is_sent_in_german(
    web: Any, app: Any, committed: Engine, branded: Settings, inbox: Inbox
) -> None:
    _send(committed, app, branded, "de")
    run_worker(committed, branded)

    [mail] = inbox.messages
    assert mail["Subject"].startswith("Angebot ") and "von Tectra Hellas AE" in mail["Subject"]
    text, html = _part(mail, "plain"), _part(mail, "html")
    assert "Guten Tag Maria P.," in text and "anbei erhalten Sie unser Angebot" in text
    assert "Mit freundlichen Grüßen\r\nTectra Hellas AE" in text  # SMTP line ends
    assert "Ihr Angebot online, immer auf dem neuesten Stand:" in text
    assert '<html lang="de">' in html and "Das Angebot ist dieser E-Mail als PDF" in html
    assert "Your offer" not in text + html and "Kind regards" not in text


def test_the_greek_draft_is_greek_and_an_english_one_english(branded: Settings) -> None:
    class Offer:
        tracking_id = "01H0WARY2W"
        customer_contact_name = ""
        customer_company = "Acme"
        customer_email = "maria@example.com"
        language = "el"

    greek = offer_mail.draft_mail(Offer(), branded)  # type: ignore[arg-type]
    Offer.language = "en"
    english = offer_mail.draft_mail(Offer(), branded)  # type: ignore[arg-type]

    assert greek.subject == "Προσφορά 01H0W-ARY2W από Tectra Hellas AE"
    assert greek.message.startswith("Χαίρετε,\n\nσας αποστέλλουμε")
    assert english.subject == "Offer 01H0W-ARY2W from Tectra Hellas AE"
    assert english.message.startswith("Hello,\n\nplease find attached our offer 01H0W-ARY2W")


def test_the_powered_by_line_goes_with_its_setting_and_no_logo_means_no_image(
    branded: Settings,
) -> None:
    plain = branded.model_copy(update={"powered_by": False, "company_logo": None})
    context = {"tracking_id": "01H0WARY2W", "confirm_url": "https://track.example.com/c"}

    mail = render_mail("subscription_confirm", context, settings=plain, lang="de")

    assert "OfferTrack" not in mail.text + mail.html
    assert "<img" not in mail.html and ACCENT in mail.html


def test_staff_alerts_stay_english_branded_and_format_dates_like_the_rest(
    branded: Settings,
) -> None:
    context = {
        "kind": "expiring",
        "tracking_id": "01H0WARY2W",
        "company": "Müller GmbH",
        "recipient_name": "Ana",
        "staff_url": "https://track.example.com/admin/offer/details/x",
        "preferences_url": "https://track.example.com/admin/alerts/",
        "valid_until": date(2027, 1, 5),
        "days_left": 3,
    }

    mail = render_mail("staff_alert", context, settings=branded)

    assert (
        mail.subject == "Offer 01H0W-ARY2W for Müller GmbH expires in 3 days, without an answer yet"
    )
    assert "It is valid until Jan 5, 2027." in mail.text  # Babel's English medium date
    assert '<html lang="en">' in mail.html and ACCENT in mail.html
    assert 'src="cid:company-logo@offertrack"' in mail.html and "Tectra Hellas AE" in mail.html
