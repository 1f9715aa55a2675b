"""The 10-character tracking ID is a timestamp anyone can guess: everything it reaches (the
page, its htmx partial, the feed, the calendar file, the lookup, the forms' answers, the mails
a subscriber gets, every error) shows order progress and nothing of the offer itself."""

import email
import re
from datetime import date
from email.policy import default

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from app.config import Settings
from app.formats import hyphenate_tracking_id
from app.notifications import subscriptions
from app.notifications.models import MailOutbox
from app.offers import service as offers_service
from app.offers.models import Offer
from app.tracking import service as tracking_service
from app.tracking.schemas import StageUpdateCreate
from tests.factories import line_data, make_offer

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# What only the full ULID may show: the customer's contact, lines, prices, PO number, notes.
SECRETS = {
    "contact name": "Zoe Quasimodo",
    "e-mail": "zoe.quasimodo@acme-secret.example",
    "phone": "+30 210 5550199",
    "street": "Hidden Lane 77",
    "postcode": "11528",
    "city": "Secretville",
    "VAT id": "EL099887766",
    "company": "Acme Secretive SA",
    "customer reference": "RFQ-HUSH-4711",
    "line": "Turbine Quietus",
    "unit price": "9,876.54",
    "unit price, plain": "9876.54",
    "line net": "29,629.62",
    "notes": "Discount agreed on the phone",
    "terms": "Payment within 17 days",
    "signer": "Ulrich Signwell",
    "PO number": "PO-CLANDESTINE-88",
}


@pytest.fixture
def order(session: Session, settings: Settings) -> Offer:
    return _order(session, settings)


def _order(session: Session, settings: Settings) -> Offer:
    offer = make_offer(
        session,
        settings,
        issued=True,
        customer={
            "company": SECRETS["company"],
            "contact_name": SECRETS["contact name"],
            "email": SECRETS["e-mail"],
            "phone": SECRETS["phone"],
            "address_lines": SECRETS["street"],
            "postcode": SECRETS["postcode"],
            "city": SECRETS["city"],
            "vat_id": SECRETS["VAT id"],
        },
        customer_reference=SECRETS["customer reference"],
        lines=[line_data(description=SECRETS["line"], unit_price="9876.54", quantity="3")],
        notes=SECRETS["notes"],
        terms=SECRETS["terms"],
    )
    offers_service.accept_offer(
        session,
        offer.id,
        signer_name=SECRETS["signer"],
        po_number=SECRETS["PO number"],
        settings=settings,
    )
    tracking_service.activate_offer(session, offer.id, actor="tests", settings=settings)
    update = StageUpdateCreate(
        stage="in_production",
        public_note="Machining started",
        internal_note="Margin is thin on this one",
        expected_delivery_date=date(2999, 6, 1),
    )
    tracking_service.add_stage_update(session, offer.id, update, actor="tests", settings=settings)
    return offer


def _leaks(text: str, offer: Offer) -> list[str]:
    found = [name for name, value in SECRETS.items() if value.lower() in text.lower()]
    if "Margin is thin" in text:
        found.append("internal note")
    if offer.id in text.upper() or offer.id.lower() in text:
        found.append("the full ULID")
    return found


def _text(mail: MailOutbox) -> str:
    """Every header and every part of a queued mail, decoded."""
    message = email.message_from_bytes(mail.message, policy=default)
    parts = [str(value) for value in message.values()]
    parts += [p.get_content() for p in message.walk() if p.get_content_maintype() == "text"]
    return "\n".join(parts)


def _spellings(tracking_id: str) -> list[str]:
    hyphenated = hyphenate_tracking_id(tracking_id)
    return [tracking_id, tracking_id.lower(), hyphenated, hyphenated.lower()]


def test_every_answer_by_tracking_id_shows_progress_only(
    client: TestClient, order: Offer, session: Session, settings: Settings
) -> None:
    answers = {}
    for code in _spellings(order.tracking_id):
        answers[f"/{code}"] = client.get(f"/{code}")
        answers[f"/{code} (htmx)"] = client.get(f"/{code}", headers={"HX-Request": "true"})
        answers[f"/{code}/feed.atom"] = client.get(f"/{code}/feed.atom")
        answers[f"/{code}/delivery.ics"] = client.get(f"/{code}/delivery.ics")
        for tail in ("pdf", "accepted"):
            answers[f"/{code}/{tail}"] = client.get(f"/{code}/{tail}")
        answers[f"/lookup?code={code}"] = client.get("/lookup", params={"code": code})
    for tail in ("0" * 16, "Z" * 16, order.id[10:].lower()[:15] + "0"):  # a ULID made up
        made_up = f"{order.tracking_id}-{tail}"
        answers[f"/{made_up}"] = client.get(f"/{made_up}")
        assert answers[f"/{made_up}"].status_code == 404
    assert answers[f"/{order.tracking_id}"].status_code == 200
    assert "Machining started" in answers[f"/{order.tracking_id}"].text
    assert answers[f"/{order.tracking_id}/feed.atom"].status_code == 200
    assert answers[f"/{order.tracking_id}/delivery.ics"].status_code == 200
    assert answers[f"/{order.tracking_id}/pdf"].status_code == 404

    leaks = {path: _leaks(r.text, order) for path, r in answers.items() if _leaks(r.text, order)}
    assert leaks == {}
    # The same search finds them on the page of the full ULID, the key to the offer.
    full = _leaks(client.get(f"/{order.id}").text, order)
    assert {"company", "line", "line net", "PO number", "signer", "terms", "notes"} <= set(full)


def test_the_forms_by_tracking_id_answer_without_the_offer(
    client: TestClient, order: Offer, session: Session, settings: Settings
) -> None:
    page = client.get(f"/{order.tracking_id}")
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    answers = {}
    for action, data in (
        ("subscribe", {"email": "new.reader@example.com"}),
        ("subscribe", {"email": "not an address"}),
        ("question", {"email": "q@example.com", "message": "What does it cost?"}),
        ("accept", {"signer_name": "Mallory", "accept_terms": "yes"}),
        ("decline", {"reason": "too dear"}),
    ):
        response = client.post(f"/{order.tracking_id}/{action}", data={**data, "csrf_token": token})
        answers[f"{action} {data}"] = response
    assert answers["subscribe {'email': 'new.reader@example.com'}"].status_code == 200
    assert all(r.status_code == 404 for k, r in answers.items() if not k.startswith("subscribe"))

    leaks = {path: _leaks(r.text, order) for path, r in answers.items() if _leaks(r.text, order)}
    assert leaks == {}


@pytest.mark.concurrency
def test_a_subscriber_by_tracking_id_gets_mails_without_the_offer(
    web: TestClient, committed: Engine, settings: Settings
) -> None:
    with Session(committed, expire_on_commit=False) as session:
        order = _order(session, settings)
    page = web.get(f"/{order.tracking_id}")
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    reader = {"email": "guesser@example.com", "csrf_token": token}
    assert web.post(f"/{order.tracking_id}/subscribe", data=reader).status_code == 200
    [confirmation] = _mails(committed)
    link = re.search(r"/updates/confirm/[\w.-]+", _text(confirmation))
    assert link is not None
    opened = web.get(link.group(0))
    token = CSRF.search(opened.text).group(1)  # type: ignore[union-attr]
    confirmed = web.post(link.group(0), data={"csrf_token": token})
    assert confirmed.status_code == 200
    with Session(committed) as session:
        update = StageUpdateCreate(stage="shipped", public_note="On its way")
        tracking_service.add_stage_update(
            session, order.tracking_id, update, actor="tests", settings=settings
        )
    subscriptions.fan_out(committed, settings)

    mails = _mails(committed)
    assert len(mails) == 2
    texts = {m.subject: _text(m) for m in mails}
    texts |= {"confirm page": opened.text, "confirmed page": confirmed.text}
    leaks = {subject: _leaks(text, order) for subject, text in texts.items() if _leaks(text, order)}
    assert leaks == {}


def _mails(engine: Engine) -> list[MailOutbox]:
    with Session(engine) as session:
        query = select(MailOutbox).where(MailOutbox.recipient == "guesser@example.com")
        return list(session.exec(query.order_by(MailOutbox.id)))  # type: ignore[arg-type]
