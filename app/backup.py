"""``offertrack backup``: a consistent copy of the SQLite database, taken while it is in use.

SQLite's online backup API copies the pages inside one read transaction, so the copy is the
database as of one moment: every transaction committed before it and nothing of one after.
In WAL mode (ours) the server's writers carry on meanwhile; nothing has to stop.
"""

import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from app.db import SQLITE_LOCK_TIMEOUT

PG_DUMP_HELP = (
    "This database is PostgreSQL: back it up with PostgreSQL's own tools, which take a "
    "consistent snapshot while the server runs, e.g.\n"
    '  pg_dump --format=custom --file=offertrack-$(date +%F).dump "$DATABASE_URL"\n'
    "and restore with pg_restore --clean --dbname=... offertrack-YYYY-MM-DD.dump. "
    "For point-in-time recovery use WAL archiving (see PostgreSQL's documentation)."
)


class BackupError(RuntimeError):
    """The backup could not be written; the message says why."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    size: int


def sqlite_file(database_url: str) -> Path:
    database = make_url(database_url).database
    if not database or database == ":memory:":
        raise BackupError("the database is not a file, so there is nothing to back up")
    return Path(database)


def backup_sqlite(source: Path, target: Path, *, overwrite: bool = False) -> BackupReport:
    """Copy ``source`` to ``target`` (a file, or a directory to put a dated file in)."""
    if not source.is_file():
        raise BackupError(f"there is no database at {source}")
    if target.is_dir():
        target = target / f"offertrack-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.db"
    if target.exists() and not overwrite:
        raise BackupError(f"{target} exists; pass --overwrite to replace it")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        _copy(source, partial)
        os.replace(partial, target)  # a backup file is either complete or absent
    finally:
        partial.unlink(missing_ok=True)
    return BackupReport(target, target.stat().st_size)


def _copy(source: Path, destination: Path) -> None:
    reader = sqlite3.connect(source, timeout=SQLITE_LOCK_TIMEOUT)
    copy = sqlite3.connect(destination)
    try:
        reader.backup(copy)  # all pages in one step: one snapshot, never restarted by writers
        # A self-contained file: no -wal or -shm companion needed to open the copy.
        copy.execute("PRAGMA journal_mode=DELETE")
        (verdict,) = copy.execute("PRAGMA integrity_check").fetchone()
        if verdict != "ok":
            raise BackupError(f"the copy failed its integrity check: {verdict}")
        copy.commit()
    finally:
        copy.close()
        reader.close()
    with destination.open("rb") as file:
        os.fsync(file.fileno())
