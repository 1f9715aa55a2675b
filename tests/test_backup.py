"""offertrack backup: a consistent SQLite copy while the database is being written to."""

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert
from sqlmodel import Session, select
from typer.testing import CliRunner, Result

from app.backup import copy_sqlite
from app.config import get_settings
from app.tracking.models import ScanEvent
from tests.conftest import TEST_DATABASE_URL
from tests.factories import make_offer

runner = CliRunner()
on_sqlite = pytest.mark.skipif(
    not TEST_DATABASE_URL.startswith("sqlite"), reason="SQLite's backup; PostgreSQL has pg_dump"
)


def scan_pair(offer_id: str) -> list[dict[str, object]]:
    row: dict[str, object] = {
        "offer_id": offer_id,
        "occurred_at": datetime.now(UTC),
        "code_form": "full",
        "channel": "web",
        "device_class": "desktop",
    }
    return [row, dict(row)]


def backup(*args: str) -> Result:
    from app.cli import cli

    return runner.invoke(cli, ["backup", *args])


@on_sqlite
@pytest.mark.concurrency
def test_a_backup_taken_during_writes_is_consistent_and_complete(
    committed: Engine, tmp_path: Path
) -> None:
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, get_settings(), issued=True)
    stop = threading.Event()
    committed_pairs = []

    def write() -> None:
        # Two rows per transaction: a copy holding an odd number caught one half-way.
        while not stop.is_set():
            with committed.begin() as connection:
                connection.execute(insert(ScanEvent), scan_pair(offer.id))
            committed_pairs.append(1)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while len(committed_pairs) < 50:
            stop.wait(0.01)
        before = len(committed_pairs)
        result = backup(str(tmp_path / "copy.db"))
        after = len(committed_pairs)
    finally:
        stop.set()
        writer.join(timeout=30)

    assert result.exit_code == 0, result.output
    assert "Backup written" in result.output and "integrity ok" in result.output
    with sqlite3.connect(tmp_path / "copy.db") as copy:
        (rows,) = copy.execute("SELECT count(*) FROM scan_event").fetchone()
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert copy.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
        assert copy.execute("SELECT id FROM offer").fetchall() == [(offer.id,)]
    assert rows % 2 == 0
    assert 2 * before <= rows <= 2 * (after + 1)
    with Session(committed) as session:  # the server's database carried on meanwhile
        live = session.exec(select(func.count()).select_from(ScanEvent)).one()
    assert live == 2 * len(committed_pairs) >= rows
    assert not list(tmp_path.glob("*.partial"))


@on_sqlite
def test_a_backup_never_overwrites_unless_asked(engine: Engine, tmp_path: Path) -> None:
    target = tmp_path / "copy.db"
    target.write_text("yesterday's backup")

    refused = backup(str(target))
    assert refused.exit_code == 1
    assert "exists" in refused.output and target.read_text() == "yesterday's backup"

    replaced = backup(str(target), "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert target.read_bytes().startswith(b"SQLite format 3")


@on_sqlite
def test_a_directory_gets_a_dated_file(engine: Engine, tmp_path: Path) -> None:
    result = backup(str(tmp_path))

    assert result.exit_code == 0, result.output
    (written,) = tmp_path.glob("offertrack-*.db")
    assert written.name[11:19].isdigit()


def test_a_directory_that_does_not_exist_is_refused_rather_than_written_as_a_file(
    engine: Engine, tmp_path: Path
) -> None:
    missing = tmp_path / "nightly"
    for path in (f"{missing}/", str(missing / "copy.db")):
        result = backup(path)

        assert result.exit_code == 1, result.output
        assert f"there is no directory {missing}: create it first" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(TEST_DATABASE_URL.startswith("sqlite"), reason="the PostgreSQL answer")
def test_on_postgresql_without_pg_dump_it_explains_and_fails(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.backup.shutil.which", lambda name: None)
    monkeypatch.setattr("app.backup.glob.glob", lambda pattern: [])

    result = backup(str(tmp_path / "copy.dump"))

    assert result.exit_code == 2
    assert "pg_dump" in result.output and "apt-get install postgresql-client" in result.output
    assert not (tmp_path / "copy.dump").exists()


@on_sqlite
def test_a_backup_that_does_not_read_back_is_reported(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_copy = copy_sqlite

    def damaged_on_disk(source: Path, destination: Path) -> None:
        real_copy(source, destination)
        with destination.open("r+b") as file:  # the pages' headers, as a failing disk would
            page_size = int.from_bytes(file.read(18)[16:18])
            for page in range(1, destination.stat().st_size // page_size):
                file.seek(page * page_size)
                file.write(b"\xff" * 12)

    monkeypatch.setattr("app.backup.copy_sqlite", damaged_on_disk)

    result = backup(str(tmp_path / "copy.db"))

    assert result.exit_code == 1
    assert "Backup failed" in result.output and "integrity check" in result.output
    assert not list(tmp_path.iterdir())


def test_a_backup_is_readable_by_its_owner_only(engine: Engine, tmp_path: Path) -> None:
    # It holds the customers' names, addresses and e-mail addresses.
    result = backup(str(tmp_path))

    assert result.exit_code == 0, result.output
    (written,) = tmp_path.glob("offertrack-*")
    assert written.stat().st_mode & 0o777 == 0o600


def _dated(directory: Path, *stamps: str, suffix: str = ".db") -> list[Path]:
    paths = [directory / f"offertrack-{stamp}{suffix}" for stamp in stamps]
    for path in paths:
        path.write_text("an older night's backup")
    return paths


def test_keep_leaves_the_newest_dated_backups_and_nothing_else_is_touched(
    engine: Engine, tmp_path: Path
) -> None:
    """A nightly job with --keep 3 does not fill the disk, nor keep customers' data longer
    than the recovery needs; files it did not name are not its to delete."""
    stamps = ("20261201T020000Z", "20261202T020000Z", "20261203T020000Z")
    oldest, older, old = _dated(tmp_path, *stamps)
    (other_dump,) = _dated(tmp_path, "20261130T020000Z", suffix=".dump")  # before a move to PG
    mine = [tmp_path / "offertrack-before-upgrade.db", tmp_path / "notes.txt"]
    for path in mine:
        path.write_text("kept by hand")

    result = backup(str(tmp_path), "--keep", "3")

    assert result.exit_code == 0, result.output
    assert "Removed 2 older backups" in result.output
    new = set(tmp_path.glob("offertrack-2*")) - {oldest, older, old, other_dump}
    assert len(new) == 1
    assert set(tmp_path.iterdir()) == {older, old, *new, *mine}
    assert not oldest.exists() and not other_dump.exists()


def test_keep_needs_a_directory_and_a_failed_backup_removes_nothing(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (old,) = _dated(tmp_path, "20261201T020000Z")
    refused = backup(str(tmp_path / "copy.db"), "--keep", "1")
    assert refused.exit_code == 2
    assert "--keep" in refused.output and "directory" in refused.output
    assert list(tmp_path.iterdir()) == [old]

    def failing(*args: object, **kwargs: object) -> None:
        from app.backup import BackupError

        raise BackupError("the disk is full")

    monkeypatch.setattr("app.backup.copy_sqlite", failing)
    monkeypatch.setattr("app.backup.run_pg_tool", failing)
    failed = backup(str(tmp_path), "--keep", "1")
    assert failed.exit_code == 1
    assert list(tmp_path.iterdir()) == [old]  # the last good backup stays


def test_keep_never_deletes_the_backup_it_has_just_written(engine: Engine, tmp_path: Path) -> None:
    """A backup named later than now (written while the clock was wrong) sorts after tonight's:
    --keep 1 deleted the backup just written and checked, leaving only the stray one."""
    (stray,) = _dated(tmp_path, "20991231T235959Z")

    result = backup(str(tmp_path), "--keep", "1")

    assert result.exit_code == 0, result.output
    (written,) = set(tmp_path.glob("offertrack-2*")) - {stray}
    assert written.stat().st_size > 0
    assert stray.exists()  # named the newest: the next nights' backups go, tonight's stays


@pytest.mark.skipif(TEST_DATABASE_URL.startswith("postgresql"), reason="SQLite's backup")
def test_two_backups_in_the_same_second_each_write_their_own_copy(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The nightly job and an operator's backup into the same directory in the same second:
    both wrote the same "<name>.partial", each deleting the other's while it was written, so
    one failed (or renamed the other's half-written copy as its own checked backup)."""
    import app.backup as module

    source = module.sqlite_file(get_settings().database_url)
    real_copy = module.copy_sqlite
    second: list[module.BackupReport] = []
    started = threading.Event()

    def copy_then_another_backup_starts(source_: Path, destination: Path) -> None:
        real_copy(source_, destination)
        if not started.is_set():  # the other backup, started and finished meanwhile
            started.set()
            second.append(module.backup_sqlite(source, tmp_path, overwrite=True))

    class SameSecond(datetime):
        @classmethod
        def now(cls, tz: object = None) -> "SameSecond":
            return cls(2026, 12, 8, 2, 0, 0, tzinfo=UTC)

    monkeypatch.setattr(module, "copy_sqlite", copy_then_another_backup_starts)
    monkeypatch.setattr(module, "datetime", SameSecond)

    first = module.backup_sqlite(source, tmp_path, overwrite=True)

    assert module.check_sqlite(first.path) and module.check_sqlite(second[0].path)
    assert not list(tmp_path.glob("*.partial"))
