"""The staff dashboard's orders per stage and late orders come from the progress each order
keeps (app/tracking/progress.py): the same numbers as its stage history gives, kept by every
path that changes the history or the stage positions, read from the orders in progress."""

import re
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine
from sqlmodel import Session, col, select

from app.admin import queries
from app.config import get_settings
from app.offers import service as offers_service
from app.offers.models import Offer, OfferStatus
from app.templating import format_date
from app.tracking import progress
from app.tracking import service as tracking_service
from app.tracking import stages as stages_service
from app.tracking.models import OrderStage, StageUpdate
from app.tracking.schemas import StageUpdateCreate
from tests.conftest import TEST_DATABASE_URL
from tests.factories import make_offer
from tests.plans import (
    analyze,
    assert_reads_at_most,
    bulk_insert,
    bulk_offers,
    captured,
    naming,
    rows_read,
)

SETTINGS = get_settings()


def _order(session: Session, company: str) -> Offer:
    offer = make_offer(session, SETTINGS, issued=True, company=company)
    return tracking_service.activate_offer(session, offer.id, actor="tests", settings=SETTINGS)


def _update(session: Session, offer: Offer, stage: str, **fields: object) -> None:
    data = StageUpdateCreate.model_validate({"stage": stage, **fields})
    tracking_service.add_stage_update(session, offer.id, data, actor="tests", settings=SETTINGS)


def _from_history(session: Session) -> tuple[dict[str, int], list[tuple[str, date]]]:
    """What the dashboard must show: every order's progress from its whole history."""
    today = offers_service.today(SETTINGS)
    stages = {s.position: s for s in tracking_service.list_stages(session)}
    progress = _history_progress(session)
    last = max(stages)
    per_stage: dict[str, int] = {}
    for position, _ in progress.values():
        assert position is not None
        per_stage[stages[position].key] = per_stage.get(stages[position].key, 0) + 1
    late = sorted(
        (
            (offer_id, expected)
            for offer_id, (position, expected) in progress.items()
            if expected is not None and expected < today and position != last
        ),
        key=lambda row: (row[1], row[0]),
    )
    return per_stage, late


def _shown(session: Session) -> tuple[dict[str, int], list[tuple[str, date]]]:
    figures = queries.dashboard(session, SETTINGS)
    per_stage = {stage.key: count for stage, count in figures.per_stage if count}
    late = [(offer.id, p.expected_delivery) for offer, p in figures.overdue]
    assert all(p.expected_delivery is not None for _, p in figures.overdue)
    return per_stage, late  # type: ignore[return-value]


def _stored(session: Session) -> dict[str, tuple[int | None, date | None]]:
    session.expire_all()
    rows = session.exec(
        select(Offer.id, col(Offer.stage_position), col(Offer.expected_delivery_date)).where(
            Offer.status == OfferStatus.ORDERED
        )
    ).all()
    return {offer_id: (position, expected) for offer_id, position, expected in rows}


def _history_progress(session: Session) -> dict[str, tuple[int | None, date | None]]:
    """Each order's furthest stage and latest expected delivery, worked out here from every
    stage update it has (the test's own spelling of the rule, not the app's)."""
    positions = {s.key: s.position for s in tracking_service.list_stages(session)}
    updates = session.exec(
        select(StageUpdate)
        .join(Offer, col(Offer.id) == col(StageUpdate.offer_id))
        .where(Offer.status == OfferStatus.ORDERED)
    ).all()
    progress: dict[str, tuple[int | None, date | None]] = {}
    for update in sorted(updates, key=lambda u: (u.happened_at, u.id or 0)):
        position, expected = progress.get(update.offer_id, (None, None))
        progress[update.offer_id] = (
            max(position or 0, positions[update.stage_key]),
            update.expected_delivery_date or expected,
        )
    return progress


def _days_ago(days: int) -> str:
    """An update's ``happened_at``: one naming a date since past was entered back then."""
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def _mix(session: Session, api: TestClient) -> dict[str, Offer]:
    """Orders at every stage, late and not, delivered, backdated and bulk updates."""
    today = offers_service.today(SETTINGS)
    orders = {name: _order(session, name) for name in ("A", "B", "C", "D", "E", "F", "G")}
    _update(
        session,
        orders["A"],
        "in_production",
        happened_at=_days_ago(4),
        expected_delivery_date=str(today - timedelta(3)),
    )
    _update(
        session,
        orders["B"],
        "Quality check",
        happened_at=_days_ago(8),
        expected_delivery_date=str(today + timedelta(3)),
    )
    # Late, then a later update moves the date into the future: no longer late.
    _update(
        session,
        orders["C"],
        "shipped",
        happened_at=_days_ago(2),
        expected_delivery_date=str(today - timedelta(1)),
    )
    _update(session, orders["C"], "shipped", expected_delivery_date=str(today + timedelta(2)))
    # Delivered after being late: not listed, counted as delivered.
    _update(
        session,
        orders["D"],
        "shipped",
        happened_at=_days_ago(10),
        expected_delivery_date=str(today - timedelta(9)),
    )
    _update(session, orders["D"], "delivered")
    # A backdated update with a date does not replace the later one's date, nor an earlier
    # stage the furthest one.
    _update(
        session,
        orders["E"],
        "ready_for_dispatch",
        happened_at=_days_ago(3),
        expected_delivery_date=str(today - timedelta(2)),
    )
    _update(
        session,
        orders["E"],
        "in_production",
        happened_at=_days_ago(30),
        expected_delivery_date=str(today + timedelta(5)),
    )
    # Through the API, in another spelling of the code.
    response = api.post(
        f"/api/v1/orders/{orders['F'].tracking_id.lower()}/updates",
        json={
            "stage": "Shipped",
            "happened_at": _days_ago(5),
            "expected_delivery_date": str(today - timedelta(4)),
        },
    )
    assert response.status_code == 201, response.text
    # The staff site's bulk update: several orders, one transaction; B's date is replaced.
    bulk = StageUpdateCreate.model_validate(
        {
            "stage": "quality_check",
            "happened_at": _days_ago(7),
            "expected_delivery_date": today - timedelta(6),
        }
    )
    tracking_service.add_stage_updates(
        session, [orders["G"].id, orders["B"].id], bulk, actor="tests", settings=SETTINGS
    )
    return orders


def test_the_dashboard_shows_what_the_stage_history_says(session: Session, api: TestClient) -> None:
    _mix(session, api)

    per_stage, late = _shown(session)

    assert (per_stage, late) == _from_history(session)
    assert per_stage == {
        "in_production": 1,
        "quality_check": 2,
        "ready_for_dispatch": 1,
        "shipped": 2,
        "delivered": 1,
    }
    companies = {o.id: o.customer_company for o in session.exec(select(Offer)).all()}
    assert [companies[offer_id] for offer_id, _ in late] == ["B", "G", "F", "A", "E"]


def test_every_path_that_changes_the_history_or_the_stages_keeps_the_stored_progress(
    session: Session, api: TestClient
) -> None:
    orders = _mix(session, api)
    assert _stored(session) == _history_progress(session)
    assert _stored(session)[orders["G"].id] == (3, offers_service.today(SETTINGS) - timedelta(6))

    # A stage moved past the last one: orders that reached it are now the furthest along.
    stages_service.update_stage(session, "in_production", "In production", 7, actor="tests")
    assert _stored(session) == _history_progress(session)
    assert _stored(session)[orders["A"].id][0] == 7
    per_stage, late = _shown(session)
    assert (per_stage, late) == _from_history(session)

    # And back; a rename alone changes nothing.
    stages_service.update_stage(session, "in_production", "Being made", 2, actor="tests")
    assert _stored(session) == _history_progress(session)
    assert (_shown(session)) == _from_history(session)


Shown = tuple[str | None, str | None]  # current stage, expected delivery, as a page shows them


def _on_tracking_pages(client: TestClient, orders: list[Offer]) -> dict[str, Shown]:
    shown: dict[str, Shown] = {}
    for order in orders:
        page = client.get(f"/{order.tracking_id}").text
        stage = re.search(r"Current stage: <strong>([^<]*)</strong>", page)
        expected = re.search(r"Expected delivery: <strong>([^<]*)</strong>", page)
        shown[order.id] = (stage and stage.group(1), expected and expected.group(1))
    return shown


def _on_the_staff_site(session: Session) -> dict[str, Shown]:
    """Each order's stage and date as the staff site's order list shows them."""
    session.expire_all()
    ids = session.exec(select(Offer.id).where(Offer.status == OfferStatus.ORDERED)).all()
    return {
        offer_id: (p.stage.label, _date(p.expected_delivery))
        for offer_id, p in queries.progress_of(session, list(ids)).items()
    }


def _date(day: date | None) -> str | None:
    return format_date(day) if day else None


def _as_history_says(session: Session) -> dict[str, Shown]:
    labels = {s.position: s.label for s in tracking_service.list_stages(session)}
    return {
        offer_id: (labels[position] if position else None, _date(expected))
        for offer_id, (position, expected) in _history_progress(session).items()
    }


def test_the_tracking_page_and_the_staff_site_show_one_progress(
    session: Session, api: TestClient
) -> None:
    """The customer's page and the staff's dashboard and order list show the same stage and
    date for orders at every stage, also once staff moved a stage after updates were posted
    (the pages seen before the move are not served again)."""
    orders = _mix(session, api) | {"H": _order(session, "Just ordered")}
    backdated = orders["E"]  # at "Ready for dispatch", and "In production" long before

    def assert_one_progress() -> dict[str, Shown]:
        on_pages = _on_tracking_pages(api, list(orders.values()))
        assert on_pages == _on_the_staff_site(session) == _as_history_says(session)
        per_stage, late = _shown(session)
        assert per_stage == dict(Counter(stage.key for stage in _stages(session, on_pages)))
        assert (per_stage, late) == _from_history(session)
        return on_pages

    shown = assert_one_progress()
    assert shown[backdated.id][0] == "Ready for dispatch"
    assert shown[orders["H"].id] == ("Order confirmed", None)

    stages_service.update_stage(session, "in_production", "In production", 7, actor="tests")
    assert assert_one_progress()[backdated.id][0] == "In production"

    stages_service.update_stage(session, "in_production", "Being made", 2, actor="tests")
    assert assert_one_progress()[backdated.id][0] == "Ready for dispatch"


def _stages(session: Session, shown: dict[str, Shown]) -> list[OrderStage]:
    by_label = {s.label: s for s in tracking_service.list_stages(session)}
    return [by_label[label] for label, _ in shown.values() if label]


def _delivered(connection: Connection, count: int) -> None:
    """``count`` orders delivered long ago, each with three stage updates."""
    at = datetime(2025, 1, 1, tzinfo=UTC)
    progress = {"stage_position": "6", "expected_delivery_date": ":valid_until"}
    ordered = {"status": "'ordered'", "ordered_at": ":at", "customer_company": "'Old AG'"}
    bulk_offers(connection, count, "Z", at=at, valid_until=at.date(), **ordered, **progress)
    for stage in ("confirmed", "shipped", "delivered"):
        bulk_insert(
            connection,
            "stage_update",
            count,
            {
                "offer_id": "'Z' || n",
                "stage_key": f"'{stage}'",
                "happened_at": ":at",
                "public_note": "''",
                "internal_note": "''",
                "expected_delivery_date": ":day",
                "carrier": "''",
                "tracking_number": "''",
                "tracking_link": "''",
                "created_by": "''",
                "created_at": ":at",
            },
            at=at,
            day=at.date(),
        )


def test_the_dashboards_stages_and_late_orders_read_the_orders_in_progress(
    session: Session,
) -> None:
    """Every view worked out every order's stage from every stage update there ever was:
    60,000 rows here for 20,000 delivered orders, and more with each order delivered."""
    today = offers_service.today(SETTINGS)
    connection = session.connection()
    _delivered(connection, 20_000)
    late = _order(session, "Late GmbH")
    _update(
        session,
        late,
        "shipped",
        happened_at=_days_ago(2),
        expected_delivery_date=str(today - timedelta(1)),
    )
    _order(session, "New SA")

    with captured(connection.engine) as statements:
        figures = queries.dashboard(session, SETTINGS)

    counts = {stage.key: count for stage, count in figures.per_stage}
    assert (counts["confirmed"], counts["shipped"], counts["delivered"]) == (1, 1, 20_000)
    assert [offer.customer_company for offer, _ in figures.overdue] == ["Late GmbH"]
    assert naming(statements, "stage_update") == []  # 60,000 rows read twice before
    # The delivered orders are counted from the index (an index-only count, no order row);
    # every other statement reads the orders in progress.
    in_progress = [s for s in naming(statements, "offer") if "stage_position =" not in s[0]]
    for analysed in (False, True):
        if analysed:
            analyze(connection, "offer")
        assert_reads_at_most(connection, in_progress, "offer", 1_000)
    delivered = [s for s in naming(statements, "offer") if "stage_position =" in s[0]]
    assert len(delivered) == 1
    assert rows_read(connection, delivered[0], "offer") <= 30_000


@pytest.mark.skipif(
    not TEST_DATABASE_URL.startswith("postgresql"), reason="PostgreSQL's concurrent writers"
)
def test_two_updates_of_one_order_at_once_both_count(committed: Engine) -> None:
    """Each transaction works the progress out from the history it sees: the second one to
    write must see the first one's update, or it stores a history without it."""
    today = offers_service.today(SETTINGS)
    with Session(committed, expire_on_commit=False) as session:
        order = _order(session, "Busy AG")
    first = Session(committed)
    first.add(StageUpdate(offer_id=order.id, stage_key="shipped", expected_delivery_date=today))
    progress.refresh(first, [order.id])

    def second() -> None:
        with Session(committed) as session:
            later = today + timedelta(days=3)
            _update(session, order, "in_production", expected_delivery_date=str(later))

    writer = threading.Thread(target=second)
    writer.start()
    time.sleep(0.5)  # the second one waits for the order's row
    first.commit()
    first.close()
    writer.join(10)

    with Session(committed) as session:
        stored = session.get(Offer, order.id)
        assert stored is not None
        assert (stored.stage_position, stored.expected_delivery_date) == (
            5,
            today + timedelta(days=3),
        )
