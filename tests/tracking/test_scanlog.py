"""The group-commit writer: a caller returns only once its row is committed."""

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from app.config import get_settings
from app.db import utcnow
from app.tracking.models import ScanEvent
from app.tracking.scanlog import GroupCommitScanLog, ScanNotRecorded
from app.tracking.scanrows import _insert_hooks, insert_scans, on_scans_inserted
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


def test_hooks_get_each_rows_own_id_and_the_columns_a_row_left_out(session: Session) -> None:
    # The scan.created webhook names each scan by the id handed to the hooks: a batch whose ids
    # came back in another order would send one scan's id with another scan's fields.
    offer = make_offer(session, get_settings(), issued=True)
    rows = [{**_row(offer.id), "referrer_host": f"host-{n}.example"} for n in range(40)]
    del rows[0]["os_family"], rows[0]["visitor_hash"]  # the model's defaults fill them in
    seen: list[tuple[list[dict[str, object]], list[int]]] = []

    def hook(connection: object, batch: Sequence[dict[str, Any]], ids: Sequence[int]) -> None:
        seen.append((list(batch), list(ids)))

    on_scans_inserted(hook)
    try:
        insert_scans(session.connection(), rows)
    finally:
        _insert_hooks.remove(hook)

    ((batch, ids),) = seen
    stored = {scan.id: scan for scan in session.exec(select(ScanEvent)).all()}
    assert [stored[i].referrer_host for i in ids] == [row["referrer_host"] for row in batch]
    assert (stored[ids[0]].os_family, stored[ids[0]].visitor_hash) == ("", None)
