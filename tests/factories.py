"""Small keyword-only factories for test data, built through the real services."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from app.analytics import campaigns, scanfeed
from app.analytics.models import Campaign, Creative, Placement
from app.analytics.schemas import CampaignCreate, CreativeCreate, PlacementCreate
from app.config import Settings, get_settings
from app.db import utcnow
from app.offers import service
from app.offers.models import Offer
from app.offers.schemas import OfferCreate
from app.subscribers import wire
from app.tracking.scanrows import insert_scans

# The use cases these factories call publish events: wired in whichever process imports this
# (the test run, or a process a test starts).
wire()


def line_data(
    *,
    description: str = "Pump PX-200",
    quantity: str = "2",
    unit_price: str = "1250.00",
    vat_rate: str = "24",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "description": description,
        "quantity": quantity,
        "unit_price": unit_price,
        "vat_rate": vat_rate,
        **extra,
    }


def offer_data(
    *,
    company: str = "Acme Hellas SA",
    lines: list[dict[str, Any]] | None = None,
    valid_until: date | str | None = "2999-12-31",
    **extra: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "customer": {"company": company, "contact_name": "Maria P.", "email": "maria@example.com"},
        "currency": "EUR",
        "lines": [line_data()] if lines is None else lines,
        **extra,
    }
    if valid_until is not None:
        data["valid_until"] = str(valid_until)
    return data


def make_offer(session: Session, settings: Settings, *, issued: bool = False, **data: Any) -> Offer:
    offer = service.create_offer(
        session, OfferCreate.model_validate(offer_data(**data)), actor="tests", settings=settings
    )
    if issued:
        offer = service.issue_offer(session, offer.id, actor="tests", settings=settings)
    return offer


def make_campaign(session: Session, *, name: str = "Spring fair", **data: Any) -> Campaign:
    return campaigns.create_campaign(
        session, CampaignCreate.model_validate({"name": name, **data}), actor="test"
    )


def make_creative(session: Session, campaign_id: int, *, name: str = "Blue poster") -> Creative:
    return campaigns.create_creative(session, campaign_id, CreativeCreate(name=name), actor="test")


def make_placement(
    session: Session,
    campaign_id: int,
    *,
    name: str = "Store 47, table tent",
    fallback_url: str = "https://shop.example.com/spring",
    **data: Any,
) -> Placement:
    payload = {"name": name, "fallback_url": fallback_url, **data}
    return campaigns.create_placement(
        session, campaign_id, PlacementCreate.model_validate(payload), actor="test"
    )


def committed_scan(
    engine: Engine,
    offer: Offer,
    *,
    at: datetime | None = None,
    is_bot: bool = False,
    channel: str = "qr",
    device_class: str = "mobile",
) -> None:
    """A committed scan of ``offer``, derived by the scan feed as every server does it (staff
    alerts, rollups, webhook events)."""
    row = {
        "offer_id": offer.id,
        "occurred_at": at or utcnow(),
        "code_form": "full",
        "channel": channel,
        "device_class": "bot" if is_bot else device_class,
        "os_family": "Android",
        "browser_family": "Chrome",
        "referrer_host": "",
        "is_bot": is_bot,
        "visitor_hash": "a".ljust(64, "0"),
    }
    with engine.begin() as connection:
        insert_scans(connection, [row])
    scanfeed.catch_up(engine, get_settings().zone)
