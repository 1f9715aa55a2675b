"""Demo data for a newcomer: real offers in several states, made through the services."""

import hashlib
import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import Session, col, select

from app.analytics import campaigns
from app.analytics.models import Campaign
from app.analytics.schemas import CampaignCreate, CreativeCreate, PlacementCreate
from app.config import Settings
from app.db import utcnow
from app.offers import service as offers
from app.offers.ids import hyphenate_tracking_id
from app.offers.models import Offer, OfferStatus
from app.offers.schemas import CustomerIn, LineIn, OfferCreate
from app.offers.service import today
from app.tracking import service as tracking
from app.tracking.models import Channel, CodeForm
from app.tracking.scanrows import insert_scans
from app.tracking.schemas import StageUpdateCreate

# Demo data is written by the CLI; its audit entries say so.
DEMO = "cli:demo"

PUMPS = [
    LineIn(
        description="Centrifugal pump PX-200, stainless",
        quantity=Decimal(2),
        unit="pc",
        unit_price=Decimal("1250.00"),
        vat_rate=Decimal(24),
    ),
    LineIn(
        description="Installation and commissioning",
        quantity=Decimal("6.5"),
        unit="h",
        unit_price=Decimal("85.00"),
        vat_rate=Decimal(24),
    ),
    LineIn(
        description="Maintenance handbook (print)",
        quantity=Decimal(1),
        unit="pc",
        unit_price=Decimal("39.90"),
        discount_percent=Decimal(10),
        vat_rate=Decimal(6),
    ),
]


def _offer(
    company: str,
    contact: str,
    reference: str,
    lines: list[LineIn],
    language: str = "en",
    campaign_id: int | None = None,
) -> OfferCreate:
    return OfferCreate(
        language=language,
        campaign_id=campaign_id,
        customer=CustomerIn(
            company=company,
            contact_name=contact,
            reference=reference,
            email=f"{contact.split()[0].lower()}@example.com",
        ),
        lines=lines,
        terms="Payment 30 days net. Delivery ex works. Prices exclude shipping.",
    )


def load_demo_data(session: Session, *, settings: Settings) -> int:
    """Create each demo offer that is not there yet; return how many were created."""
    _campaign(session)
    existing = set(session.exec(select(Offer.customer_reference)).all())
    steps = {
        "DEMO-1001": _draft,
        "DEMO-1002": _issued,
        "DEMO-1003": _expired,
        "DEMO-1004": _revised,
        "DEMO-1005": _long,
        "DEMO-1006": _ordered,
        "DEMO-1007": _accepted,
    }
    created = 0
    for reference, make in steps.items():
        if reference not in existing:
            make(session, settings, reference)
            created += 1
    return created


def demo_links(session: Session, *, settings: Settings) -> list[tuple[str, str]]:
    """(what it shows, URL) for every demo offer: what a newcomer should open first."""
    found = session.exec(
        select(Offer)
        .where(col(Offer.customer_reference).startswith("DEMO-"))
        .order_by(Offer.customer_reference)
    ).all()
    links = []
    for offer in found:
        status = offer.effective_status(today(settings))
        if status == OfferStatus.DRAFT:
            continue  # drafts are not public: their page is a 404 until they are issued
        links.append(
            (f"{offer.customer_reference} {status}", f"{settings.public_base_url}/{offer.id}")
        )
        if status == OfferStatus.ORDERED:
            links.append(
                (
                    f"{offer.customer_reference} order by tracking ID",
                    f"{settings.public_base_url}/{hyphenate_tracking_id(offer.tracking_id)}",
                )
            )
    return links


def _draft(session: Session, settings: Settings, reference: str) -> Offer:
    data = _offer("Nordwind Logistik GmbH", "Jonas Weber", reference, PUMPS[:2], "de")
    return offers.create_offer(session, data, actor=DEMO, settings=settings)


def _issued(session: Session, settings: Settings, reference: str) -> Offer:
    # In Greek: the demo shows an offer in its customer's language (the switcher offers others).
    data = _offer(
        "Acme Hellas SA", "Maria Papadopoulou", reference, PUMPS, "el", _campaign_id(session)
    )
    offer = offers.create_offer(session, data, actor=DEMO, settings=settings)
    return _scanned(session, offers.issue_offer(session, offer.id, actor=DEMO, settings=settings))


def _expired(session: Session, settings: Settings, reference: str) -> Offer:
    data = _offer("Brightwater Foods Ltd", "Sam Okafor", reference, PUMPS[1:])
    offer = offers.issue_offer(
        session,
        offers.create_offer(session, data, actor=DEMO, settings=settings).id,
        actor=DEMO,
        settings=settings,
    )
    # Back-date it as if it had been issued long ago, so the demo shows an expired offer.
    offer.valid_until = offers.today(settings) - timedelta(days=3)
    session.add(offer)
    session.commit()
    return offer


def _revised(session: Session, settings: Settings, reference: str) -> Offer:
    data = _offer("Kowalski Maszyny Sp. z o.o.", "Anna Kowalska", reference, PUMPS[:1])
    first = offers.issue_offer(
        session,
        offers.create_offer(session, data, actor=DEMO, settings=settings).id,
        actor=DEMO,
        settings=settings,
    )
    revision = offers.revise_offer(session, first.id, actor=DEMO, settings=settings)
    return offers.issue_offer(session, revision.id, actor=DEMO, settings=settings)


def _long(session: Session, settings: Settings, reference: str) -> Offer:
    lines = [
        LineIn(
            description=f"Spare part kit {n:02d}: seals, bearings and fasteners",
            quantity=Decimal(n % 5 + 1),
            unit="set",
            unit_price=Decimal("17.35") * n,
            vat_rate=Decimal(24) if n % 3 else Decimal(13),
        )
        for n in range(1, 41)
    ]
    data = _offer("Iberia Agua SL", "Lucía García", reference, lines)
    return offers.issue_offer(
        session,
        offers.create_offer(session, data, actor=DEMO, settings=settings).id,
        actor=DEMO,
        settings=settings,
    )


def _ordered(session: Session, settings: Settings, reference: str) -> Offer:
    data = _offer("Helvetia Mühlen AG", "Urs Meier", reference, PUMPS, "en", _campaign_id(session))
    offer = offers.issue_offer(
        session,
        offers.create_offer(session, data, actor=DEMO, settings=settings).id,
        actor=DEMO,
        settings=settings,
    )
    _scanned(session, offer)
    tracking.activate_offer(session, offer.id, actor=DEMO, settings=settings)
    for stage, note in (
        ("In production", "Machining of the pump housings has started."),
        ("Quality check", "Pressure test passed."),
    ):
        update = StageUpdateCreate(
            stage=stage,
            public_note=note,
            expected_delivery_date=today(settings) + timedelta(days=9),
        )
        tracking.add_stage_update(session, offer.id, update, actor=DEMO, settings=settings)
    return offer


def _accepted(session: Session, settings: Settings, reference: str) -> Offer:
    data = _offer(
        "Lumière Énergie SAS", "Claire Dubois", reference, PUMPS[1:], "en", _campaign_id(session)
    )
    offer = offers.issue_offer(
        session,
        offers.create_offer(session, data, actor=DEMO, settings=settings).id,
        actor=DEMO,
        settings=settings,
    )
    _scanned(session, offer)
    return offers.accept_offer(
        session, offer.id, signer_name="Claire Dubois", po_number="PO-4711", settings=settings
    )


# A trade fair campaign with a month of scans, so that the campaign dashboard has something
# to show; the rollups follow once the scan feed has run (``offertrack demo`` runs it).
CAMPAIGN = "Trade fair 2026 (demo)"
_DEVICES = [("mobile", "iOS", "Mobile Safari"), ("mobile", "Android", "Chrome Mobile")] * 4 + [
    ("desktop", "Windows", "Edge"),
    ("tablet", "iPadOS", "Mobile Safari"),
]


def _campaign(session: Session) -> None:
    if session.exec(select(Campaign).where(Campaign.name == CAMPAIGN)).first() is not None:
        return
    campaign = campaigns.create_campaign(session, CampaignCreate(name=CAMPAIGN), actor=DEMO)
    assert campaign.id is not None
    blue, green = (
        campaigns.create_creative(session, campaign.id, CreativeCreate(name=name), actor=DEMO)
        for name in ("Blue flyer", "Green flyer")
    )
    flyer = PlacementCreate.model_validate(
        {
            "name": "Hall 4, stand flyer",
            "fallback_url": "https://www.example.com/pumps",
            "split_mode": "thompson",
            "rules": [
                {
                    "name": "A/B: flyer colour",
                    "destinations": [
                        {"url": "https://www.example.com/pumps?v=blue", "creative_id": blue.id},
                        {"url": "https://www.example.com/pumps?v=green", "creative_id": green.id},
                    ],
                }
            ],
        }
    )
    catalogue = PlacementCreate(
        name="Catalogue, page 12", fallback_url="https://www.example.com/catalogue"
    )
    arms = [
        (campaigns.create_placement(session, campaign.id, flyer, actor=DEMO), (blue.id, green.id)),
        (campaigns.create_placement(session, campaign.id, catalogue, actor=DEMO), (None,)),
    ]
    rows = list(_month_of_scans(campaign.id, [(p.id, creatives) for p, creatives in arms]))
    insert_scans(session.connection(), rows)
    session.commit()


def _month_of_scans(
    campaign_id: int, placements: list[tuple[int | None, tuple[int | None, ...]]]
) -> Any:
    """Scans of the campaign's codes over the last 30 days: more on weekdays, the green flyer
    doing better, now and then a crawler. Seeded, so every demo looks the same."""
    rng = random.Random(2026)
    now = utcnow()
    for days_ago in range(30, -1, -1):
        day = now - timedelta(days=days_ago)
        visitors = [hashlib.sha256(f"{days_ago}:{n}".encode()).hexdigest() for n in range(40)]
        for _ in range(rng.randint(6, 14) if day.weekday() < 5 else rng.randint(1, 4)):
            placement_id, creatives = rng.choices(placements, weights=(3, 1))[0]
            device, os_family, browser = rng.choice(_DEVICES)
            bot = rng.random() < 0.04
            yield {
                "occurred_at": min(now, day.replace(hour=rng.randint(8, 18))),
                "code_form": CodeForm.CAMPAIGN,
                "channel": Channel.QR,
                "device_class": "bot" if bot else device,
                "os_family": "" if bot else os_family,
                "browser_family": "" if bot else browser,
                "is_bot": bot,
                "visitor_hash": None if bot else rng.choice(visitors),
                "campaign_id": campaign_id,
                "placement_id": placement_id,
                "creative_id": rng.choices(creatives, weights=(2, 3)[: len(creatives)])[0],
            }


def _campaign_id(session: Session) -> int | None:
    return session.exec(select(Campaign.id).where(Campaign.name == CAMPAIGN)).first()


def _scanned(session: Session, offer: Offer) -> Offer:
    """The customer scans the printed offer twice, before answering: the conversion is the
    campaign's, and sales see the scan among their follow-ups."""
    visitor = hashlib.sha256(offer.id.encode()).hexdigest()
    scan = {"offer_id": offer.id, "code_form": CodeForm.FULL, "channel": Channel.QR}
    device = {"device_class": "mobile", "os_family": "iOS", "browser_family": "Mobile Safari"}
    rows = [
        {
            **scan,
            **device,
            "occurred_at": utcnow(),
            "visitor_hash": visitor,
            "campaign_id": offer.campaign_id,
        }
        for _ in range(2)
    ]
    insert_scans(session.connection(), rows)
    session.commit()
    return offer
