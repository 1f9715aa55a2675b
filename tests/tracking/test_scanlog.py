"""The group-commit writer: a caller returns only once its row is committed."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from app.config import get_settings
from app.db import utcnow
from app.tracking.models import ScanEvent
from app.tracking.scanlog import GroupCommitScanLog, ScanNotRecorded
from tests.aio import run_async
from tests.factories import make_offer


def _row(offer_id: str) -> dict[str, object]:
    return {
        "offer_id": offer_id,
        "occurred_at": utcnow(),
        "code_form": "full",
        "channel": "qr",
        "device_class": "mobile",
        "os_family": "",
        "browser_family": "",
        "referrer_host": "",
        "is_bot": False,
        "visitor_hash": None,
    }


def _count(engine: Engine, offer_id: str) -> int:
    with Session(engine) as session:
        query = select(func.count()).select_from(ScanEvent).where(ScanEvent.offer_id == offer_id)
        return session.exec(query).one()


@pytest.mark.concurrency
def test_every_write_is_committed_when_it_returns(committed: Engine) -> None:
    with Session(committed, expire_on_commit=False) as session:
        offer_id = make_offer(session, get_settings(), issued=True).id
    scan_log = GroupCommitScanLog(committed)

    def write(_: int) -> int:
        with Session(committed) as session:
            scan_log.write(session, _row(offer_id))
        return _count(committed, offer_id)  # visible to another connection at once

    try:
        with ThreadPoolExecutor(16) as pool:
            seen = list(pool.map(write, range(400)))
    finally:
        scan_log.close()
    assert min(seen) >= 1
    assert _count(committed, offer_id) == 400


@pytest.mark.concurrency
def test_a_bad_row_fails_alone(committed: Engine) -> None:
    with Session(committed, expire_on_commit=False) as session:
        offer_id = make_offer(session, get_settings(), issued=True).id
    scan_log = GroupCommitScanLog(committed)

    def write(offer: str) -> str:
        with Session(committed) as session:
            try:
                scan_log.write(session, _row(offer))
            except ScanNotRecorded:
                return "refused"
        return "ok"

    try:
        with ThreadPoolExecutor(8) as pool:  # an unknown offer breaks its foreign key
            results = list(pool.map(write, [offer_id] * 20 + ["01H0WARY2WHGGRF3K72D299T3T"] * 2))
    finally:
        scan_log.close()
    assert results.count("refused") == 2
    assert _count(committed, offer_id) == 20


@pytest.mark.concurrency
def test_a_caller_with_an_open_transaction_does_not_deadlock_the_writer(committed: Engine) -> None:
    with Session(committed, expire_on_commit=False) as session:
        offer_id = make_offer(session, get_settings(), issued=True).id
    scan_log = GroupCommitScanLog(committed)
    try:
        with Session(committed) as session:
            session.exec(select(ScanEvent)).all()  # on SQLite this holds the writers' lock
            scan_log.write(session, _row(offer_id))  # returns only once the writer committed
    finally:
        scan_log.close()
    assert _count(committed, offer_id) == 1


@pytest.mark.concurrency
def test_record_from_the_event_loop_returns_once_committed(committed: Engine) -> None:
    with Session(committed, expire_on_commit=False) as session:
        offer_id = make_offer(session, get_settings(), issued=True).id
    scan_log = GroupCommitScanLog(committed)

    async def view() -> int:
        await scan_log.record(_row(offer_id))
        return await asyncio.to_thread(_count, committed, offer_id)

    async def many() -> list[int]:
        return await asyncio.gather(*(view() for _ in range(200)))

    try:
        seen = run_async(many)
    finally:
        scan_log.close()
    assert min(seen) >= 1
    assert _count(committed, offer_id) == 200
