"""Every answered view has its scan row: nothing is fire-and-forget."""

from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from app.config import get_settings
from app.tracking.models import ScanEvent
from tests.factories import make_offer

REQUESTS = 2000
THREADS = 16


@pytest.mark.concurrency
def test_2000_views_from_16_threads_leave_2000_scan_events(
    committed: Engine, live_server: str
) -> None:
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, get_settings(), issued=True)
    url = f"{live_server}/{offer.id}"

    limits = httpx.Limits(max_connections=THREADS)
    with httpx.Client(timeout=30, limits=limits) as client, ThreadPoolExecutor(THREADS) as pool:
        statuses = list(
            pool.map(
                lambda _: client.get(url, headers={"user-agent": "load"}).status_code,
                range(REQUESTS),
            )
        )

    with Session(committed) as session:
        stored = session.exec(
            select(func.count()).select_from(ScanEvent).where(ScanEvent.offer_id == offer.id)
        ).one()
    assert statuses.count(200) == REQUESTS
    assert stored == REQUESTS
