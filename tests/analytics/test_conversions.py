"""Conversions: offers accepted and ordered, external ones through the API, idempotency."""

from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select
from sqlmodel import Session, col

from app.analytics.models import Campaign, Conversion, Creative, Placement
from app.config import Settings
from app.db import utcnow
from app.offers import service as offers_service
from app.tracking import service as tracking_service
from app.tracking.models import ScanEvent
from tests.factories import make_campaign, make_creative, make_offer, make_placement


@pytest.fixture
def setup(session: Session) -> tuple[Campaign, Placement, Creative]:
    campaign = make_campaign(session, name="Autumn")
    assert campaign.id is not None
    creative = make_creative(session, campaign.id, name="Poster A")
    placement = make_placement(session, campaign.id, slug="autumn-47")
    return campaign, placement, creative


def _scan(session: Session, *, minutes_ago: int, bot: bool = False, **dims: object) -> int:
    row = {
        "occurred_at": utcnow() - timedelta(minutes=minutes_ago),
        "code_form": "full",
        "channel": "qr",
        "device_class": "bot" if bot else "mobile",
        "os_family": "",
        "browser_family": "",
        "referrer_host": "",
        "is_bot": bot,
        "visitor_hash": None,
        **dims,
    }
    result = session.execute(insert(ScanEvent).values(**row).returning(col(ScanEvent.id)))
    return int(result.scalar_one())


def _conversions(session: Session, offer_id: str) -> list[Conversion]:
    query = (
        select(Conversion).where(col(Conversion.offer_id) == offer_id).order_by(col(Conversion.id))
    )
    return list(session.scalars(query))


def test_accepted_and_ordered_offers_are_conversions_worth_their_gross_total(
    client: TestClient,
    session: Session,
    settings: Settings,
    setup: tuple[Campaign, Placement, Creative],
) -> None:
    campaign, placement, creative = setup
    offer = make_offer(
        session,
        settings,
        issued=True,
        campaign_id=campaign.id,
        placement_id=placement.id,
        creative_id=creative.id,
    )
    _scan(session, minutes_ago=90, bot=True, offer_id=offer.id)  # a bot is never a touch
    first = _scan(session, minutes_ago=60, offer_id=offer.id, campaign_id=campaign.id)
    last = _scan(session, minutes_ago=5, offer_id=offer.id, campaign_id=campaign.id)
    offers_service.accept_offer(session, offer.id, signer_name="M", po_number="", settings=settings)
    tracking_service.activate_offer(session, offer.id, actor="test", settings=settings)
    tracking_service.activate_offer(session, offer.id, actor="test", settings=settings)  # again

    accepted, ordered = _conversions(session, offer.id)
    assert (accepted.type, ordered.type) == ("offer_accepted", "order")
    # 2 x 1250.00 net + 24% VAT
    assert accepted.value == ordered.value == Decimal("3100.00")
    assert accepted.currency == "EUR" and accepted.channel == "offer"
    assert (accepted.first_scan_id, accepted.last_scan_id) == (first, last)
    assert accepted.first_campaign_id == campaign.id
    assert 3590 <= (accepted.seconds_to_convert or 0) <= 3610


def test_an_offer_without_scans_is_credited_to_its_campaign(
    session: Session, settings: Settings, setup: tuple[Campaign, Placement, Creative]
) -> None:
    campaign, placement, creative = setup
    offer = make_offer(
        session, settings, issued=True, campaign_id=campaign.id, placement_id=placement.id
    )
    tracking_service.activate_offer(session, offer.id, actor="test", settings=settings)
    (ordered,) = _conversions(session, offer.id)
    assert ordered.first_scan_id is None and ordered.seconds_to_convert is None
    assert (ordered.last_campaign_id, ordered.last_placement_id) == (campaign.id, placement.id)


def _body(**extra: object) -> dict[str, object]:
    return {
        "external_key": "pos-2026-0001",
        "type": "purchase",
        "value": "49.90",
        "currency": "eur",
        "channel": "pos",
        **extra,
    }


def test_external_conversion_is_idempotent_on_its_key(
    api: TestClient, session: Session, setup: tuple[Campaign, Placement, Creative]
) -> None:
    campaign, placement, creative = setup
    scan_id = _scan(
        session,
        minutes_ago=30,
        campaign_id=campaign.id,
        placement_id=placement.id,
        creative_id=creative.id,
    )
    first = api.post("/api/v1/conversions", json=_body(scan_id=scan_id))
    assert first.status_code == 201, first.text
    data = first.json()
    assert data["first_scan_id"] == data["last_scan_id"] == scan_id
    assert data["last_creative_id"] == creative.id and data["value"] == "49.90"
    assert 1790 <= data["seconds_to_convert"] <= 1810

    again = api.post("/api/v1/conversions", json=_body(scan_id=scan_id))
    assert again.status_code == 200 and again.json() == data

    different = api.post("/api/v1/conversions", json=_body(scan_id=scan_id, value="50.00"))
    assert different.status_code == 409
    assert "external_key" in different.json()["detail"]
    count = session.execute(
        select(Conversion).where(col(Conversion.external_key) == "pos-2026-0001")
    )
    assert len(count.all()) == 1


def test_conversion_by_campaign_code_or_offer_code(
    api: TestClient,
    session: Session,
    settings: Settings,
    setup: tuple[Campaign, Placement, Creative],
) -> None:
    campaign, placement, _ = setup
    by_slug = api.post("/api/v1/conversions", json=_body(code="AUTUMN-47"))
    assert by_slug.status_code == 201, by_slug.text
    assert by_slug.json()["first_placement_id"] == placement.id
    assert by_slug.json()["first_scan_id"] is None

    offer = make_offer(session, settings, issued=True)
    scan = _scan(session, minutes_ago=10, offer_id=offer.id)
    by_offer = api.post(
        "/api/v1/conversions", json=_body(external_key="crm-7", code=offer.id.lower())
    )
    assert by_offer.status_code == 201, by_offer.text
    assert by_offer.json()["offer_id"] == offer.id and by_offer.json()["last_scan_id"] == scan


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (_body(scan_id=987654321), ["body", "scan_id"]),
        (_body(code="nope"), ["body", "code"]),
        (_body(), ["body"]),
        (_body(code="x", value="-1"), ["body", "value"]),
        (_body(code="x", currency="EURO"), ["body", "currency"]),
        (_body(code="x", occurred_at="2999-01-01T00:00:00Z"), ["body", "occurred_at"]),
        (_body(code="x", occurred_at="2026-01-01T00:00:00"), ["body", "occurred_at"]),
        (_body(code="x", external_key=""), ["body", "external_key"]),
    ],
)
def test_bad_conversions_are_422_with_the_field(
    api: TestClient, body: dict[str, object], loc: list[str]
) -> None:
    response = api.post("/api/v1/conversions", json=body)
    assert response.status_code == 422, response.text
    assert loc in [e["loc"] for e in response.json()["detail"]]


def test_conversions_need_an_api_key(client: TestClient) -> None:
    assert client.post("/api/v1/conversions", json=_body(code="x")).status_code == 401


def test_offer_api_sets_and_checks_the_campaign(
    api: TestClient, session: Session, setup: tuple[Campaign, Placement, Creative]
) -> None:
    from tests.factories import offer_data

    campaign, placement, creative = setup
    other = make_campaign(session, name="Other")
    created = api.post(
        "/api/v1/offers",
        json=offer_data(
            campaign_id=campaign.id, placement_id=placement.id, creative_id=creative.id
        ),
    )
    assert created.status_code == 201, created.text
    assert created.json()["placement_id"] == placement.id
    offer_id = created.json()["id"]
    mismatch = api.patch(f"/api/v1/offers/{offer_id}", json={"campaign_id": other.id})
    assert mismatch.status_code == 422
    assert mismatch.json()["detail"][0]["loc"] == ["body", "placement_id"]
    cleared = api.patch(
        f"/api/v1/offers/{offer_id}",
        json={"campaign_id": None, "placement_id": None, "creative_id": None},
    )
    assert cleared.status_code == 200 and cleared.json()["campaign_id"] is None
