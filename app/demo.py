"""Demo data for a newcomer: real offers in several states, made through the services."""

from datetime import timedelta
from decimal import Decimal

from sqlmodel import Session, col, select

from app.config import Settings
from app.offers import service as offers
from app.offers.ids import hyphenate_tracking_id
from app.offers.models import Offer, OfferStatus
from app.offers.schemas import CustomerIn, LineIn, OfferCreate
from app.offers.service import today
from app.tracking import service as tracking
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
    company: str, contact: str, reference: str, lines: list[LineIn], language: str = "en"
) -> OfferCreate:
    return OfferCreate(
        language=language,
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
    data = _offer("Acme Hellas SA", "Maria Papadopoulou", reference, PUMPS, "el")
    offer = offers.create_offer(session, data, actor=DEMO, settings=settings)
    return offers.issue_offer(session, offer.id, actor=DEMO, settings=settings)


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
    data = _offer("Helvetia Mühlen AG", "Urs Meier", reference, PUMPS)
    offer = offers.issue_offer(
        session,
        offers.create_offer(session, data, actor=DEMO, settings=settings).id,
        actor=DEMO,
        settings=settings,
    )
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
    data = _offer("Lumière Énergie SAS", "Claire Dubois", reference, PUMPS[1:])
    offer = offers.issue_offer(
        session,
        offers.create_offer(session, data, actor=DEMO, settings=settings).id,
        actor=DEMO,
        settings=settings,
    )
    return offers.accept_offer(
        session, offer.id, signer_name="Claire Dubois", po_number="PO-4711", settings=settings
    )
