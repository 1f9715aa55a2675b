"""For procurement: the order's updates as Atom, its expected delivery as iCalendar."""

import xml.etree.ElementTree as ET
from datetime import timedelta

from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlmodel import Session

from app.config import Settings
from app.offers import service as offers_service
from app.offers.models import Offer
from app.tracking import service
from app.tracking.schemas import StageUpdateCreate
from tests.factories import line_data, make_offer

ATOM = "{http://www.w3.org/2005/Atom}"


def _order(session: Session, settings: Settings) -> Offer:
    offer = make_offer(
        session,
        settings,
        issued=True,
        company="Secret Customer AG",
        lines=[line_data(description="Secret Pump", unit_price="98765.43")],
    )
    order = service.activate_offer(session, offer.id, actor="tests", settings=settings)
    service.add_stage_update(
        session,
        order.id,
        StageUpdateCreate(
            stage="Shipped",
            public_note="On its way",
            internal_note="margin 40%",
            carrier="DHL",
            expected_delivery_date=offers_service.today(settings) + timedelta(days=2),
        ),
        actor="tests",
        settings=settings,
    )
    return order


def test_the_tracking_ids_feed_has_the_public_updates_and_nothing_else(
    client: TestClient, session: Session, settings: Settings
) -> None:
    order = _order(session, settings)

    response = client.get(f"/{order.tracking_id}/feed.atom")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(response.content)
    entries = feed.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}title") for e in entries] == ["Shipped", "Order confirmed"]
    assert "On its way" in (entries[0].findtext(f"{ATOM}content") or "")
    for secret in (
        "Secret Customer AG",
        "Secret Pump",
        "98,765",
        "margin 40%",
        "maria@example.com",
        "Maria P.",
        order.id,
    ):
        assert secret not in response.text


def test_the_delivery_date_as_a_calendar_event_linked_from_the_page(
    client: TestClient, session: Session, settings: Settings
) -> None:
    order = _order(session, settings)
    page = client.get(f"/{order.tracking_id}")
    assert f'href="https://track.example.com/{order.tracking_id}/delivery.ics"' in page.text
    assert f"/{order.tracking_id}/feed.atom" in page.text

    response = client.get(f"/{order.tracking_id}/delivery.ics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    [event] = Calendar.from_ical(response.content).walk("VEVENT")
    assert event.decoded("dtstart") == offers_service.today(settings) + timedelta(days=2)
    assert str(event["uid"]).startswith(f"delivery-{order.tracking_id}@")
    assert "Secret" not in response.text


def test_unknown_codes_orders_without_a_date_and_offers_get_a_404(
    client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    undated = service.activate_offer(
        session, make_offer(session, settings, issued=True).id, actor="tests", settings=settings
    )

    assert client.get(f"/{offer.id}/feed.atom").status_code == 404  # an offer, not an order
    assert client.get(f"/{offer.tracking_id}/delivery.ics").status_code == 404
    assert client.get(f"/{undated.tracking_id}/delivery.ics").status_code == 404
    assert client.get("/0000000000/feed.atom").status_code == 404
    assert client.get("/not-a-code!/feed.atom").status_code == 400


def test_a_german_orders_feed_and_calendar_event_read_in_german(
    client: TestClient, session: Session, settings: Settings
) -> None:
    # A German buyer's feed reader listed "Shipped" and "Expected delivery: 2027-01-10", and
    # the calendar entry read "Delivery of order ...".
    order = _order(session, settings)
    order.language = "de"
    session.add(order)
    session.commit()
    due = offers_service.today(settings) + timedelta(days=2)

    feed = ET.fromstring(client.get(f"/{order.tracking_id}/feed.atom").content)
    ical = client.get(f"/{order.tracking_id}/delivery.ics").content
    chosen = ET.fromstring(client.get(f"/{order.tracking_id}/feed.atom?lang=el").content)

    assert feed.get("{http://www.w3.org/XML/1998/namespace}lang") == "de"
    assert (feed.findtext(f"{ATOM}title") or "").startswith("Auftrag ")
    entries = feed.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}title") for e in entries] == ["Versandt", "Auftrag bestätigt"]
    shown = f"{due:%d.%m.%Y}"
    assert f"Voraussichtliche Lieferung: {shown}" in (entries[0].findtext(f"{ATOM}content") or "")
    [event] = Calendar.from_ical(ical).walk("VEVENT")
    assert str(event["summary"]).startswith("Lieferung von Auftrag ")
    assert event["summary"].params["LANGUAGE"] == "de"
    assert "Voraussichtliche Lieferung von Auftrag" in str(event["description"])
    assert chosen.findall(f"{ATOM}entry")[0].findtext(f"{ATOM}title") == "Απεστάλη"


def test_a_calendar_event_in_a_chosen_language_links_to_the_page_in_it(
    client: TestClient, session: Session, settings: Settings
) -> None:
    # The event read in Greek (?lang=el, as the page's link asks once Greek is chosen), but its
    # link opened the order's page in the offer's German: the mails' links keep their language.
    order = _order(session, settings)
    order.language = "de"
    session.add(order)
    session.commit()
    page = client.get(f"/{order.tracking_id}?lang=el").text
    assert f'href="https://track.example.com/{order.tracking_id}/delivery.ics?lang=el"' in page

    [chosen] = Calendar.from_ical(
        client.get(f"/{order.tracking_id}/delivery.ics?lang=el").content
    ).walk("VEVENT")
    [offers] = Calendar.from_ical(client.get(f"/{order.tracking_id}/delivery.ics").content).walk(
        "VEVENT"
    )

    greek_page = f"https://track.example.com/{order.tracking_id}?lang=el"
    assert str(chosen["url"]) == greek_page
    assert str(chosen["description"]).endswith(greek_page)
    assert str(chosen["uid"]) == str(offers["uid"])  # the same event, whatever its language
    german_page = f"https://track.example.com/{order.tracking_id}"
    assert str(offers["url"]) == german_page  # the offer's language needs no ?lang=
    assert client.get(str(chosen["url"]).removeprefix("https://track.example.com")).text.count(
        '<html lang="el"'
    )
