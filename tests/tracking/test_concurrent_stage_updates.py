"""Two stage updates of one order at the same moment on PostgreSQL (SQLite has one writer at a
time): both are added, and the second tells of the expected delivery as the first left it; the
same update twice (a double tap) is added once."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest
from sqlalchemy import Engine, event
from sqlmodel import Session, col, select

from app.config import Settings, get_settings
from app.notifications.models import UpdateFanout
from app.offers.models import Offer
from app.tracking import service
from app.tracking.models import StageUpdate
from app.tracking.schemas import StageUpdateCreate
from tests.factories import make_offer

pytestmark = pytest.mark.concurrency
# How long each update waits, after its insert, for the other's: on PostgreSQL both inserts
# happen before either works out the progress, unless the second waits for the first's lock.
OVERLAP_SECONDS = 3


def _add(engine: Engine, order_id: str, both_inserted: threading.Barrier, **fields: object) -> None:
    def after_insert(session: Session, _: object) -> None:
        if any(isinstance(row, StageUpdate) for row in session.new):
            try:
                both_inserted.wait(OVERLAP_SECONDS)
            except threading.BrokenBarrierError:
                pass  # the other update waits for this one's lock: they do not overlap

    with Session(engine) as session:
        event.listen(session, "after_flush", after_insert)
        data = StageUpdateCreate.model_validate(fields)
        service.add_stage_update(
            session, order_id, data, actor="staff:ana@example.com", settings=get_settings()
        )


def test_two_updates_of_one_order_at_once_are_both_added_and_told_once(
    committed: Engine, settings: Settings
) -> None:
    if committed.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the updates cannot overlap")
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True)
        order = service.activate_offer(session, offer.id, actor="tests", settings=settings)
    new_date = date.today() + timedelta(days=9)
    both_inserted = threading.Barrier(2)

    with ThreadPoolExecutor(2) as pool:
        dated = pool.submit(
            _add,
            committed,
            order.id,
            both_inserted,
            stage="shipped",
            expected_delivery_date=new_date,
        )
        noted = pool.submit(
            _add, committed, order.id, both_inserted, stage="shipped", public_note="Packed."
        )
        dated.result(timeout=30)
        noted.result(timeout=30)

    with Session(committed) as session:
        stored = session.get(Offer, order.id)
        assert stored is not None and stored.expected_delivery_date == new_date
        reasons = session.exec(
            select(UpdateFanout.reason)
            .where(UpdateFanout.offer_id == order.id)
            .order_by(col(UpdateFanout.id))
        ).all()
    # One mail about the new date; the other update is about its note (whichever came first).
    assert sorted(reasons) == ["delivery_date", "note"]


def test_the_same_update_twice_at_once_is_added_and_told_once(
    committed: Engine, settings: Settings
) -> None:
    # A double tap whose two requests reach two workers at the same moment: the second waits
    # for the first's lock on the order, then sees its update and adds none.
    if committed.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the updates cannot overlap")
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=True)
        order = service.activate_offer(session, offer.id, actor="tests", settings=settings)
    both_inserted = threading.Barrier(2)
    news = {"stage": "shipped", "public_note": "Packed."}

    with ThreadPoolExecutor(2) as pool:
        sent = [pool.submit(_add, committed, order.id, both_inserted, **news) for _ in range(2)]
        for future in sent:
            future.result(timeout=30)

    with Session(committed) as session:
        shipped = session.exec(
            select(StageUpdate.id).where(
                StageUpdate.offer_id == order.id, StageUpdate.stage_key == "shipped"
            )
        ).all()
        fanouts = session.exec(select(UpdateFanout.id).where(UpdateFanout.offer_id == order.id))
        assert len(shipped) == 1 and len(fanouts.all()) == 1
