"""Scans while the database is away: spooled to a local file, replayed exactly once."""

import asyncio
import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, func, text
from sqlmodel import Session, select

from app.config import get_settings
from app.tracking.models import ScanEvent
from app.tracking.scanlog import ScanNotRecorded, ScanWriter
from app.tracking.spool import ScanSpool
from tests.aio import run_async
from tests.factories import make_offer
from tests.scanlogs import write as write_scan
from tests.tracking.test_scanlog import _count, _row

pytestmark = pytest.mark.concurrency


@contextmanager
def scan_table_away(engine: Engine) -> Iterator[None]:
    """The database refuses scan rows, as it does when it cannot be reached."""
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE scan_event RENAME TO scan_event_away"))
    try:
        yield
    finally:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE scan_event_away RENAME TO scan_event"))


def _offer(engine: Engine) -> str:
    with Session(engine, expire_on_commit=False) as session:
        return make_offer(session, get_settings(), issued=True).id


def _record(scan_log: ScanWriter, engine: Engine, rows: list[dict[str, object]]) -> None:
    for row in rows:
        with Session(engine) as session:
            write_scan(scan_log, session, row)


def test_scans_during_an_outage_are_spooled_and_replayed_once(
    committed: Engine, tmp_path: Path
) -> None:
    offer_id = _offer(committed)
    spool = ScanSpool(tmp_path)
    scan_log = ScanWriter(committed, spool=spool)
    try:
        with scan_table_away(committed):
            _record(scan_log, committed, [_row(offer_id) for _ in range(30)])  # all answered
        assert _count(committed, offer_id) == 0
        assert sum(len(p.read_bytes().splitlines()) for p in tmp_path.glob("*.jsonl")) == 30

        assert scan_log.write_problem() is not None  # /readyz: 503 while writes fail
        scan_log._away_until = 0  # do not wait for the writer's back-off in a test
        assert scan_log.replay_spool() == 30
        assert scan_log.write_problem() is None  # the replay's commits show writes work again
        assert scan_log.replay_spool() == 0
    finally:
        scan_log.close()
    assert _count(committed, offer_id) == 30
    assert list(tmp_path.glob("*.jsonl")) == []


def test_an_interrupted_replay_adds_no_row_twice(committed: Engine, tmp_path: Path) -> None:
    offer_id = _offer(committed)
    spool = ScanSpool(tmp_path)
    spool.append([_row(offer_id) for _ in range(5)])
    spool.seal()
    (spooled,) = tmp_path.glob("*.jsonl")
    copy = tmp_path / "copy"
    shutil.copy(spooled, copy)

    assert spool.replay(committed) == 5
    copy.rename(spooled)  # as if the process died after the commit, before removing the file
    assert spool.replay(committed) == 0

    assert _count(committed, offer_id) == 5


def test_a_line_cut_short_by_a_crash_is_not_replayed(committed: Engine, tmp_path: Path) -> None:
    offer_id = _offer(committed)
    spool = ScanSpool(tmp_path)
    spool.append([_row(offer_id), _row(offer_id)])
    spool.seal()
    (spooled,) = tmp_path.glob("*.jsonl")
    with spooled.open("ab") as file:
        file.write(b'{"offer_id": "')  # never fsynced whole: no view was answered for it

    assert spool.replay(committed) == 2
    assert _count(committed, offer_id) == 2


def test_a_file_another_process_appends_to_is_left_alone(committed: Engine, tmp_path: Path) -> None:
    offer_id = _offer(committed)
    theirs, ours = ScanSpool(tmp_path), ScanSpool(tmp_path)
    theirs.append([_row(offer_id)])  # their file stays locked while they append to it

    assert ours.replay(committed) == 0
    theirs.seal()  # or their process ends
    assert ours.replay(committed) == 1
    assert _count(committed, offer_id) == 1


def test_without_a_spool_an_outage_is_refused_not_lost(committed: Engine) -> None:
    offer_id = _offer(committed)
    scan_log = ScanWriter(committed)
    try:
        with scan_table_away(committed), pytest.raises(ScanNotRecorded):
            _record(scan_log, committed, [_row(offer_id)])
    finally:
        scan_log.close()


def test_the_spool_keeps_every_field(committed: Engine, tmp_path: Path) -> None:
    offer_id = _offer(committed)
    row = _row(offer_id) | {"visitor_hash": "ab" * 32, "referrer_host": "mail.example.com"}
    spool = ScanSpool(tmp_path)
    spool.append([row])
    spool.seal()
    spool.replay(committed)

    with Session(committed) as session:
        stored = session.exec(select(ScanEvent).where(ScanEvent.offer_id == offer_id)).one()
        assert session.exec(select(func.count()).select_from(ScanEvent)).one() >= 1
    assert stored.occurred_at == row["occurred_at"]
    assert (stored.visitor_hash, stored.referrer_host) == ("ab" * 32, "mail.example.com")
    assert (stored.channel, stored.code_form, stored.device_class) == ("qr", "full", "mobile")


def test_a_failed_append_leaves_none_of_its_rows(
    committed: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk fails the append: its views answer 503, so none of its rows may be replayed
    (a phantom scan), even those that reached the file before the disk filled."""
    offer_id = _offer(committed)
    spool = ScanSpool(tmp_path)
    spool.append([_row(offer_id)])

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)  # the spool's os
    with pytest.raises(OSError, match="No space left"):
        spool.append([_row(offer_id), _row(offer_id)])
    monkeypatch.undo()
    spool.append([_row(offer_id)])  # the same file goes on
    spool.seal()

    assert spool.replay(committed) == 2
    assert _count(committed, offer_id) == 2


def test_campaign_scans_nothing_can_take_are_held_in_memory_up_to_a_bound(
    committed: Engine,
) -> None:
    """Neither database nor spool (here: none) takes the rows: a campaign redirect's scans
    wait in memory and are stored once the database answers; past the bound they are dropped
    and counted, never silently."""
    offer_id = _offer(committed)
    scan_log = ScanWriter(committed, hold_limit=3)

    async def redirects(count: int) -> None:
        await asyncio.gather(*(scan_log.record(_row(offer_id), hold=True) for _ in range(count)))

    dropped_before = REGISTRY.get_sample_value("offertrack_scans_dropped_total") or 0.0
    try:
        with scan_table_away(committed):
            run_async(lambda: redirects(5))  # all answered
            assert scan_log.write_problem() is not None  # /readyz: 503
        dropped = REGISTRY.get_sample_value("offertrack_scans_dropped_total") or 0.0
        assert scan_log.flush_held() == 3
        assert scan_log.write_problem() is None
    finally:
        scan_log.close()
    assert dropped - dropped_before == 2
    assert _count(committed, offer_id) == 3


def test_rows_the_database_refuses_are_set_aside_and_the_rest_replayed(
    committed: Engine, tmp_path: Path
) -> None:
    """A spooled row the database will never take (written during an outage by a bug, or by
    an older version, or a line damaged on disk) must not hold up the rows around it, nor the
    files after it, for ever: it goes to a file of its own, kept for the operator, and counted."""
    offer_id = _offer(committed)
    first, second = ScanSpool(tmp_path), ScanSpool(tmp_path)
    first.append([_row(offer_id), _row(offer_id) | {"code_form": None}, _row(offer_id)])
    first.seal()
    with next(tmp_path.glob("scans-*.jsonl")).open("ab") as file:
        file.write(b'{"offer_id": 12, "not a scan": true}\n')  # no time: from another version
    second.append([_row(offer_id)])
    second.seal()
    refused_before = REGISTRY.get_sample_value("offertrack_scans_refused_total") or 0.0

    assert first.replay(committed) == 3
    assert first.replay(committed) == 0  # and never again

    assert _count(committed, offer_id) == 3
    assert list(tmp_path.glob("scans-*.jsonl")) == []
    (refused,) = tmp_path.glob("refused-*")
    assert [line.count(b'"code_form":null') for line in refused.read_bytes().splitlines()] == [1, 0]
    assert refused.stat().st_mode & 0o077 == 0  # visitors' hashes: the owner's alone
    counted = REGISTRY.get_sample_value("offertrack_scans_refused_total") or 0.0
    assert counted - refused_before == 2

    # The operator mends what can be mended and moves it back under a new name (README).
    line = refused.read_bytes().splitlines(keepends=True)[0]
    mended = line.replace(b'"code_form":null', b'"code_form":"full"')
    (tmp_path / "scans-mended-1.jsonl").write_bytes(mended)
    refused.unlink()
    assert first.replay(committed) == 1
    assert _count(committed, offer_id) == 4


def test_a_line_with_a_number_too_big_for_the_database_is_set_aside(
    committed: Engine, tmp_path: Path
) -> None:
    """A damaged line's id beyond 64 bits: SQLite's driver refuses it with an OverflowError
    (PostgreSQL with a DataError), which held up the file and every file after it for ever."""
    offer_id = _offer(committed)
    spool = ScanSpool(tmp_path)
    spool.append([_row(offer_id), _row(offer_id) | {"placement_id": 2**70}, _row(offer_id)])
    spool.seal()

    assert spool.replay(committed) == 2

    assert list(tmp_path.glob("scans-*.jsonl")) == []
    (refused,) = tmp_path.glob("refused-*")
    assert str(2**70).encode() in refused.read_bytes()


def test_a_damaged_line_nested_past_the_parsers_depth_is_set_aside(
    committed: Engine, tmp_path: Path
) -> None:
    offer_id = _offer(committed)
    spool = ScanSpool(tmp_path)
    spool.append([_row(offer_id)])
    spool.seal()
    with next(tmp_path.glob("scans-*.jsonl")).open("ab") as file:
        file.write(b"[" * 100_000 + b"]" * 100_000 + b"\n")

    assert spool.replay(committed) == 1
    assert list(tmp_path.glob("scans-*.jsonl")) == []
    (refused,) = tmp_path.glob("refused-*")
    assert refused.read_bytes().startswith(b"[[[")
