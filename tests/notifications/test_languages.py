"""Customers' mails and the notifications' public pages in the offer's language."""

import re
import time
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from app.audit import AuditLogEntry
from app.auth.service import create_api_key
from app.auth.staff import Role, StaffUser
from app.config import Settings
from app.db import utcnow
from app.notifications import subscriptions
from app.notifications.models import OrderSubscription
from app.offers import service as offers_service
from app.offers.ids import hyphenate_tracking_id
from app.offers.models import Offer
from app.tracking import service as tracking_service
from app.tracking.schemas import StageUpdateCreate
from tests.factories import make_offer
from tests.notifications.conftest import Inbox, body_text, run_worker

pytestmark = pytest.mark.concurrency
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _order(engine: Engine, settings: Settings, language: str) -> Offer:
    with Session(engine, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True, company="Müller GmbH", language=language)
        return tracking_service.activate_offer(session, offer.id, actor="tests", settings=settings)


def _text(mail: EmailMessage) -> str:
    return body_text(mail)


def _html(mail: EmailMessage) -> str:
    return body_text(mail, "html")


def test_a_german_order_gets_its_confirmation_and_updates_in_german(
    web: TestClient, committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    order = _order(committed, settings, "de")
    page = web.get(f"/{order.tracking_id}", headers={"Accept-Language": "de"})
    assert "Benachrichtigungen per E-Mail erhalten" in page.text
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    sent = web.post(
        f"/{order.tracking_id}/subscribe",
        data={"email": "jonas@example.com", "csrf_token": token},
        headers={"Accept-Language": "de"},
    )
    assert "Bitte sehen Sie in Ihr Postfach" in sent.text
    run_worker(committed, mail_settings)

    [confirmation] = inbox.to("jonas@example.com")
    assert confirmation["Subject"].startswith("Bitte bestätigen Sie die Benachrichtigungen")
    assert "jemand, hoffentlich Sie, hat E-Mail-Benachrichtigungen" in _text(confirmation)
    assert '<html lang="de">' in _html(confirmation)
    assert "Confirm" not in _text(confirmation)

    link = re.search(r"https://track\.example\.com/updates/confirm/\S+", _text(confirmation))
    path = urlsplit(link.group(0)).path  # type: ignore[union-attr]
    opened = web.get(path)  # no Accept-Language: the offer's language
    assert "Bestätigen</button>" in opened.text and '<html lang="de"' in opened.text
    token = CSRF.search(opened.text).group(1)  # type: ignore[union-attr]
    confirmed = web.post(path, data={"csrf_token": token})
    assert "Sie erhalten nun E-Mail-Benachrichtigungen" in confirmed.text
    with Session(committed) as session:
        api_key = create_api_key(session, "tests", actor="tests")[1]
    update = {"stage": "In production", "public_note": "Fräsen begonnen"}
    answer = web.post(
        f"/api/v1/orders/{order.tracking_id}/updates",
        json=update,
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert answer.status_code == 201, answer.text
    run_worker(committed, mail_settings)

    [_, news] = inbox.to("jonas@example.com")
    assert "In Produktion" in news["Subject"] and news["Subject"].startswith("Auftrag ")
    assert "es gibt Neuigkeiten zu Ihrem Auftrag" in _text(news)
    assert "Aktueller Stand: In Produktion." in _text(news)
    # the footer's reason sits on its own line, not glued to the company's address
    assert "\nSie erhalten diese E-Mail, weil Sie Benachrichtigungen" in _text(news)
    assert "Abbestellen" in _html(news) and "Unsubscribe" not in _html(news)


def test_an_english_order_still_mails_in_english(
    web: TestClient, committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    order = _order(committed, settings, "en")
    page = web.get(f"/{order.tracking_id}", headers={"Accept-Language": "de"})
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    web.post(
        f"/{order.tracking_id}/subscribe", data={"email": "ann@example.com", "csrf_token": token}
    )
    run_worker(committed, mail_settings)

    [confirmation] = inbox.to("ann@example.com")
    assert confirmation["Subject"].startswith("Confirm updates for order")
    assert "someone, hopefully you" in _text(confirmation)


def test_a_greek_page_shows_the_subscribe_form_in_greek(
    web: TestClient, committed: Engine, settings: Settings
) -> None:
    order = _order(committed, settings, "el")

    text = web.get(f"/{order.tracking_id}", headers={"Accept-Language": "el"}).text

    assert '<html lang="el"' in text
    assert "Ενημερώσεις μέσω e-mail" in text and "Λήψη ενημερώσεων</button>" in text
    assert "Get updates" not in text
    bad = web.post(
        f"/{order.tracking_id}/subscribe?lang=el",
        data={"email": "maria@", "csrf_token": CSRF.search(text).group(1)},  # type: ignore[union-attr]
    )
    assert bad.status_code == 422
    assert "Εισαγάγετε μια έγκυρη διεύθυνση e-mail." in bad.text and 'value="maria@"' in bad.text


def _declined(engine: Engine, settings: Settings, language: str = "en") -> Offer:
    with Session(engine, expire_on_commit=False) as session:
        owner = StaffUser(email="ana@acme.example", role=Role.SALES, password_hash="-")
        session.add(owner)
        session.flush()
        offer = make_offer(session, settings, issued=True, language=language)
        offer.owner_id = owner.id
        session.add(offer)
        session.commit()
        return offers_service.decline_offer(session, offer.id, reason="Too dear", settings=settings)


def test_a_declined_offer_asks_for_a_new_quotation_through_the_form(
    web: TestClient, committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    offer = _declined(committed, settings)
    page = web.get(f"/{offer.id}").text
    assert 'name="topic" value="new_quotation"' in page
    assert "Ask for a new quotation</button>" in page
    assert "mailto:" + settings.company_email + "?subject" not in page

    sent = web.post(
        f"/{offer.id}/question",
        data={
            "email": "maria@example.com",
            "message": "Same again with 10 more units, please.",
            "topic": "new_quotation",
            "csrf_token": CSRF.search(page).group(1),  # type: ignore[union-attr]
        },
    )
    run_worker(committed, mail_settings)

    assert sent.status_code == 200 and "Your request is on its way" in sent.text
    [mail] = [m for m in inbox.to("ana@acme.example") if "new quotation" in m["Subject"]]
    assert mail["Reply-To"] == "maria@example.com"
    assert "Same again with 10 more units" in _text(mail)
    with Session(committed) as session:
        [entry] = session.scalars(
            select(AuditLogEntry).where(col(AuditLogEntry.action) == "offer.new_quotation")
        )
    assert entry.offer_id == offer.id and entry.actor == "customer"


def test_the_new_quotation_form_needs_csrf_and_speaks_the_offers_language(
    web: TestClient, committed: Engine, settings: Settings
) -> None:
    offer = _declined(committed, settings, "de")
    page = web.get(f"/{offer.id}", headers={"Accept-Language": "de"}).text
    assert "Neues Angebot anfragen</button>" in page
    assert "Was soll das neue Angebot umfassen?" in page

    form = {"email": "maria@example.com", "message": "Bitte neu.", "topic": "new_quotation"}
    assert web.post(f"/{offer.id}/question", data=form).status_code == 403
    empty = web.post(
        f"/{offer.id}/question",
        data={**form, "message": " ", "csrf_token": CSRF.search(page).group(1)},  # type: ignore[union-attr]
        headers={"Accept-Language": "de"},
    )
    assert empty.status_code == 422
    assert "Bitte schreiben Sie Ihre Nachricht" in empty.text
    assert 'name="topic" value="new_quotation"' in empty.text


def test_the_way_back_from_a_form_keeps_the_language_the_customer_chose(
    web: TestClient, committed: Engine, settings: Settings
) -> None:
    # An English browser, German picked in the switcher: the answers to the forms come in
    # German, and so must the order's page their "Back" link opens, not the browser's English.
    order = _order(committed, settings, "en")
    page = web.get(f"/{order.id}?lang=de", headers={"Accept-Language": "en"}).text
    token = CSRF.search(page).group(1)  # type: ignore[union-attr]
    answers = [
        web.post(f"/{order.id}/subscribe?lang=de", data={"email": "jonas@", "csrf_token": token}),
        web.post(
            f"/{order.id}/subscribe?lang=de",
            data={"email": "jonas@example.com", "csrf_token": token},
        ),
        web.post(f"/{order.id}/question?lang=de", data={"email": "x@", "csrf_token": token}),
        web.post(
            f"/{order.id}/question?lang=de",
            data={
                "email": "jonas@example.com",
                "message": "Lieferung im Mai?",
                "csrf_token": token,
            },
        ),
    ]

    for answer in answers:
        assert '<html lang="de">' in answer.text
        backs = re.findall(r'<a href="([^"]*)">Zurück zum (?:Auftrag|Angebot)</a>', answer.text)
        assert backs and all(back.endswith(f"/{order.id}?lang=de") for back in backs), backs
        assert '<html lang="de">' in web.get(backs[0]).text


def test_the_confirmation_link_opens_in_the_language_its_mail_is_written_in(
    web: TestClient, committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    # An English offer, German picked in the switcher: the mail is German, and the page its
    # link opens in the same (English) browser must be German too, not the offer's English.
    order = _order(committed, settings, "en")
    web.headers["Accept-Language"] = "en-US,en;q=0.9"
    page = web.get(f"/{order.tracking_id}?lang=de").text
    token = CSRF.search(page).group(1)  # type: ignore[union-attr]
    web.post(
        f"/{order.tracking_id}/subscribe?lang=de",
        data={"email": "jonas@example.com", "csrf_token": token},
    )
    run_worker(committed, mail_settings)

    [confirmation] = inbox.to("jonas@example.com")
    assert confirmation["Subject"].startswith("Bitte bestätigen Sie die Benachrichtigungen")
    link = re.search(r"https://track\.example\.com/updates/confirm/\S+", _text(confirmation))
    assert link
    opened = web.get(link.group(0))
    assert '<html lang="de"' in opened.text and "Bestätigen</button>" in opened.text
    form = re.search(r'<form method="post" action="([^"]+)"', opened.text)
    assert form
    confirmed = web.post(form.group(1), data={"csrf_token": CSRF.search(opened.text).group(1)})  # type: ignore[union-attr]
    assert "Sie erhalten nun E-Mail-Benachrichtigungen" in confirmed.text


def test_a_shipment_mail_names_the_carrier_tracking_number_and_parcel_link(
    web: TestClient, committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    # A German buyer read "Aktueller Stand: Versandt" and had to open the page for the number
    # the goods-in desk asks for.
    order = _order(committed, settings, "de")
    with Session(committed) as session:
        session.add(
            OrderSubscription(offer_id=order.id, email="jonas@example.com", confirmed_at=utcnow())
        )
        session.commit()
        shipped = StageUpdateCreate(
            stage="Shipped",
            public_note="Heute abgeholt",
            carrier="DHL",
            tracking_number="JD014600",
            tracking_link="https://parcels.example.com/track?n=JD014600",
        )
        tracking_service.add_stage_update(
            session, order.id, shipped, actor="tests", settings=settings
        )
    run_worker(committed, mail_settings)

    [news] = inbox.to("jonas@example.com")
    text, html = _text(news).replace("\r\n", "\n"), _html(news)
    assert "\nVersandt mit DHL, Sendungsnummer JD014600.\n" in text
    assert "\nSendung verfolgen: https://parcels.example.com/track?n=JD014600\n" in text
    # A space between the sentence and the link: a mail program showed "JD014600.Sendung".
    assert (
        'Versandt mit DHL, Sendungsnummer JD014600. <a href="https://parcels.example.com/track?n=JD014600"'
        in html
    )
    assert ">Sendung verfolgen</a>" in html

    # The mail program's "Unsubscribe" opens the header's link: in German too, as the mail's
    # own link does (it opened in the browser's language, English here).
    header = news["List-Unsubscribe"].strip("<>")
    assert header.endswith("?lang=de")
    opened = web.get(header, headers={"Accept-Language": "en"})
    assert '<html lang="de"' in opened.text and "Abbestellen</button>" in opened.text


def test_updates_are_written_in_the_language_the_customer_subscribed_in(
    web: TestClient, committed: Engine, settings: Settings, mail_settings: Settings, inbox: Inbox
) -> None:
    # A buyer who reads English subscribed on the (English) page of a Greek order: the
    # confirmation came in English, every update after it in Greek.
    order = _order(committed, settings, "el")
    web.headers["Accept-Language"] = "en-GB,en;q=0.9"
    page = web.get(f"/{order.tracking_id}").text
    assert '<html lang="en"' in page
    token = CSRF.search(page).group(1)  # type: ignore[union-attr]
    web.post(
        f"/{order.tracking_id}/subscribe", data={"email": "anna@example.com", "csrf_token": token}
    )
    with Session(committed) as session:
        for subscription in session.scalars(select(OrderSubscription)):
            subscription.confirmed_at = utcnow()
        # Subscribed before the language was kept: the offer's, as before.
        session.add(
            OrderSubscription(offer_id=order.id, email="eleni@example.com", confirmed_at=utcnow())
        )
        session.commit()
        update = StageUpdateCreate(stage="In production", public_note="Machining started")
        tracking_service.add_stage_update(
            session, order.id, update, actor="tests", settings=settings
        )
    run_worker(committed, mail_settings)

    [confirmation, news] = inbox.to("anna@example.com")
    assert confirmation["Subject"].startswith("Confirm updates for order")
    assert news["Subject"].endswith(": In production")
    assert "there is news about your order" in _text(news)
    assert f"https://track.example.com/{order.tracking_id}?src=mail&lang=en" in _text(news)
    assert '<html lang="en">' in _html(news)
    [greek] = inbox.to("eleni@example.com")
    assert greek["Subject"].endswith(": Σε παραγωγή")
    assert f"https://track.example.com/{order.tracking_id}?src=mail\r\n" in _text(greek)
    # Unsubscribing from the Greek mail in the same English browser: a Greek page, to the end.
    link = re.search(r"https://track\.example\.com/updates/unsubscribe/\S+", _text(greek))
    assert link and link.group(0).endswith("?lang=el")
    opened = web.get(link.group(0))
    assert '<html lang="el"' in opened.text
    # Named: someone following several orders knows which one they stop.
    code = f'<span class="mono">{hyphenate_tracking_id(order.tracking_id)}</span>'
    assert f"για την παραγγελία {code}." in opened.text
    form = re.search(r'<form method="post" action="([^"]+)"', opened.text)
    assert form
    done = web.post(form.group(1)).text
    assert '<html lang="el"' in done and f"για την παραγγελία {code} και" in done
    assert f'href="https://track.example.com/{order.tracking_id}?lang=el"' in done
    assert "για αυτή την παραγγελία" in web.post(form.group(1)).text  # gone: no order to name


def test_a_link_that_no_longer_works_says_why_in_the_page_language(
    web: TestClient, committed: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The mails' links carry ?lang=de. A German reader of an expired confirmation link, or of
    # an unsubscribe link a mail program cut short, got "Seite nicht gefunden": neither why,
    # nor that asking again (or writing to us to stop the mails) was the way out.
    order = _order(committed, settings, "de")
    with Session(committed) as session:
        pending = OrderSubscription(offer_id=order.id, email="jonas@example.com")
        session.add(pending)
        session.commit()
        assert pending.id is not None
        confirm = subscriptions.confirm_token(pending.id, settings)
        unsubscribe = subscriptions.unsubscribe_token(pending.id, settings)
    eight_days_on = int(time.time()) + 8 * 86400
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda _self: eight_days_on)

    expired = web.get(f"/updates/confirm/{confirm}?lang=de")
    cut_short = web.get(f"/updates/unsubscribe/{unsubscribe[:-3]}?lang=de")
    greek = web.get(f"/updates/confirm/{confirm}", headers={"Accept-Language": "el"})

    assert expired.status_code == cut_short.status_code == 404
    assert '<h1 id="error-title">Dieser Link funktioniert nicht mehr</h1>' in expired.text
    assert "(Links gelten 7 Tage)" in expired.text and "erneut an" in expired.text
    assert (
        "unvollständig oder verändert" in cut_short.text and "schreiben Sie uns" in cut_short.text
    )
    assert "ισχύουν για 7 ημέρες" in greek.text
    assert "Seite nicht gefunden" not in expired.text + cut_short.text


def test_an_unsubscribe_link_opened_again_says_the_address_gets_no_updates(
    web: TestClient, committed: Engine, settings: Settings
) -> None:
    # Opened again after unsubscribing, the link showed "Abbestellen" again, as if the address
    # still got the updates: pressing it did nothing, and the reader could not tell.
    order = _order(committed, settings, "de")
    with Session(committed) as session:
        leaving = OrderSubscription(offer_id=order.id, email="jonas@example.com")
        session.add(leaving)
        session.commit()
        assert leaving.id is not None
        path = f"/updates/unsubscribe/{subscriptions.unsubscribe_token(leaving.id, settings)}"
    assert web.post(f"{path}?lang=de").status_code == 200

    again = web.get(f"{path}?lang=el")

    assert again.status_code == 200 and '<html lang="el"' in again.text
    assert "Δεν θα λαμβάνετε πλέον ενημερώσεις για αυτή την παραγγελία" in again.text
    assert "<form" not in again.text.split("<main", 1)[1]  # nothing to press
    assert "<button" not in again.text.split("<main", 1)[1]


def test_opening_an_unsubscribe_link_changes_nothing(
    web: TestClient, committed: Engine, settings: Settings
) -> None:
    order = _order(committed, settings, "de")
    with Session(committed) as session:
        staying = OrderSubscription(offer_id=order.id, email="jonas@example.com")
        session.add(staying)
        session.commit()
        assert staying.id is not None
        path = f"/updates/unsubscribe/{subscriptions.unsubscribe_token(staying.id, settings)}"

    opened = web.get(f"{path}?lang=de")

    assert "Abbestellen" in opened.text
    with Session(committed) as session:
        assert session.scalars(select(OrderSubscription)).all() != []
