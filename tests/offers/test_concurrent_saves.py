"""Two saves of one draft at the same moment, both from the version their editors opened: on
PostgreSQL the second waits for the first's row lock, then sees the version the first wrote and
is refused. (SQLite has one writer at a time: there the second begins after the first ends.)"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, event, text
from sqlmodel import Session

from app.config import Settings
from app.offers import service
from app.offers.models import Offer
from app.offers.schemas import OfferUpdate
from app.versions import Expected, StaleEdit, version_of
from tests.factories import make_offer

pytestmark = pytest.mark.concurrency
WAIT_SECONDS = 10


def _wait_until_a_transaction_waits_for_a_lock(engine: Engine) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    with engine.connect() as watcher:
        while time.monotonic() < deadline:
            waiting: int = watcher.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            if waiting:
                return
            watcher.rollback()  # the statistics views keep one snapshot per transaction
            time.sleep(0.02)
    raise AssertionError("the second save never waited for the first's row lock")


def _save(
    engine: Engine,
    offer_id: str,
    notes: str,
    actor: str,
    *,
    read: Expected,
    settings: Settings,
    holding: threading.Event | None = None,
) -> None:
    """Save ``notes`` as the editor that read ``read``; with ``holding``, set it once the row is
    locked and keep the lock until another transaction waits for it."""
    with Session(engine) as session:
        if holding is not None:

            def hold(_: Session) -> None:
                holding.set()
                _wait_until_a_transaction_waits_for_a_lock(engine)

            event.listen(session, "before_commit", hold, once=True)
        service.update_offer(
            session,
            offer_id,
            OfferUpdate(notes=notes),
            actor=actor,
            settings=settings,
            expected=read,
        )


def test_of_two_saves_at_once_from_one_version_the_second_is_refused(
    committed: Engine, settings: Settings
) -> None:
    if committed.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the saves cannot overlap")
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, settings)
    read = Expected.from_form(version_of(offer.updated_at))
    assert read is not None

    holding = threading.Event()
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(
            _save,
            committed,
            offer.id,
            "First",
            "staff:ana@example.com",
            read=read,
            settings=settings,
            holding=holding,
        )
        assert holding.wait(WAIT_SECONDS), "the first save never locked the row"
        second = pool.submit(
            _save,
            committed,
            offer.id,
            "Second",
            "staff:ben@example.com",
            read=read,
            settings=settings,
        )
        first.result(timeout=30)
        with pytest.raises(StaleEdit) as refused:
            second.result(timeout=30)

    assert refused.value.changed_by == "staff:ana@example.com"
    with Session(committed) as session:
        stored = session.get(Offer, offer.id)
        assert stored is not None and stored.notes == "First"
