"""``offertrack restore FILE``: put a backup in place of the database, safely.

SQLite: a server keeps its database file and its ``-wal``/``-shm`` companions open, so a file
put in place under it (or next to a leftover ``-wal`` that SQLite would replay into it)
corrupts the database. Every server process therefore holds a shared lock on
``<database>.lock`` while it runs; a restore takes that lock exclusively or refuses, checks the
backup, moves the current files aside (companions included), puts the backup in place and
checks the result.

PostgreSQL: ``pg_restore`` into an empty database, which the operator creates; a database that
holds tables is refused, since restoring over live data would mix the two.
"""

import fcntl
import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from app.backup import (
    BackupError,
    check_pg_archive,
    check_sqlite,
    copy_sqlite,
    libpq_target,
    new_private_file,
    pg_tool,
    run_pg_tool,
    sqlite_file,
)
from app.config import ConfigError, Settings
from app.db import make_engine
from app.files import make_private_dir

COMPANIONS = ("-wal", "-shm", "-journal")


class RestoreError(BackupError):
    """The restore was refused or failed; the message says why and what is where."""


@dataclass(frozen=True)
class RestoreReport:
    database: str
    revision: str
    set_aside: tuple[Path, ...] = ()


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


class DatabaseInUse:
    """A server's claim on its SQLite database (shared: any number of workers hold it)."""

    def __init__(self, database: Path) -> None:
        self._file: IO[bytes] | None = lock_path(database).open("ab")
        try:
            fcntl.flock(self._file, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release()
            raise ConfigError(
                f"{database} is being restored (`offertrack restore` holds {lock_path(database)});"
                " start the server when it has finished."
            ) from None

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing lets go of the lock
            self._file = None


def claim_database(settings: Settings) -> DatabaseInUse | None:
    """For a process that uses the database for as long as it runs (serve, worker)."""
    if not settings.is_sqlite:
        return None
    database = sqlite_file(settings.database_url)
    make_private_dir(database.parent)  # serve's first start: the data folder, 0700
    return DatabaseInUse(database)


def restore(settings: Settings, backup: Path) -> RestoreReport:
    if settings.is_sqlite:
        return restore_sqlite(backup, sqlite_file(settings.database_url))
    return restore_postgresql(backup, settings.database_url)


def restore_sqlite(backup: Path, database: Path) -> RestoreReport:
    """Put the SQLite backup ``backup`` in place of ``database``; the current files are kept
    beside it, renamed, and listed in the report."""
    if not backup.is_file():
        raise RestoreError(f"there is no backup at {backup}")
    check_sqlite(backup)
    _make_directory(database.parent)
    existed = database.exists()
    owner = database.stat() if existed else database.parent.stat()
    # As private as the database it replaces, a first one as the backup (0600): it holds the
    # customers' personal data, and the umask left it readable by every local user.
    mode = stat.S_IMODE(owner.st_mode) if existed else 0o600
    with lock_path(database).open("ab") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RestoreError(
                f"a server (or `offertrack worker`) is using {database}: stop it, then restore"
            ) from None
        staged = database.with_name(database.name + ".restoring")
        try:
            new_private_file(staged, mode)
            copy_sqlite(backup, staged)
            set_aside = _move_aside(database)
            os.replace(staged, database)
        finally:
            staged.unlink(missing_ok=True)
        _hand_over(owner, database, lock_path(database))
        _sync_directory(database.parent)
        try:
            revision = check_sqlite(database)
        except BackupError as exc:
            kept = ", ".join(map(str, set_aside)) or "nothing"
            detail = f"the restored database failed its check ({exc}); kept: {kept}"
            raise RestoreError(detail) from exc
    return RestoreReport(str(database), revision, set_aside)


def _make_directory(directory: Path) -> None:
    """Create the database's directory where there is none, private (0700, as a first
    database is 0600) and, run as root, owned as the nearest directory above it that exists:
    left to root, it kept the server's own user from writing the database's -wal beside it.
    As root below a directory of root's, whose the database is cannot be told: refuse."""
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    if not missing:
        return
    owner = directory.stat()
    if os.geteuid() == 0 and owner.st_uid == 0:
        raise RestoreError(
            f"{missing[0]} does not exist and {directory} belongs to root, so it is not known "
            "which user the server runs as: create the directory for that user (`install -d "
            f"-m 700 -o offertrack -g offertrack {missing[0]}`), then restore again"
        )
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)
        _hand_over(owner, path)


def _hand_over(owner: os.stat_result, *paths: Path) -> None:
    """Give the restored files to the user whose database they replace. Run as root (the
    operator's natural shell after stopping the service), the restore left root's files where
    the server's own user must write: every write failed, and a new lock file kept the server
    from starting."""
    if os.geteuid() != 0:
        return
    for path in paths:
        os.chown(path, owner.st_uid, owner.st_gid)


def _move_aside(database: Path) -> tuple[Path, ...]:
    # The companions keep their suffixes after the new name, so SQLite opens the set-aside
    # database together with its own -wal (the writes a backup may lack are still in there).
    aside = database.with_name(f"{database.name}.before-restore-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
    moved = []
    for suffix in ("", *COMPANIONS):
        current = Path(f"{database}{suffix}")
        if current.exists():
            target = Path(f"{aside}{suffix}")
            os.replace(current, target)
            moved.append(target)
    return tuple(moved)


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def restore_postgresql(backup: Path, database_url: str) -> RestoreReport:
    """pg_restore the custom-format archive ``backup`` into the empty database at the URL."""
    if not backup.is_file():
        raise RestoreError(f"there is no backup at {backup}")
    pg_restore = pg_tool("pg_restore")
    check_pg_archive(backup)
    engine = make_engine(database_url, poolclass=NullPool)
    try:
        tables = _user_tables(engine)
        if tables:
            raise RestoreError(
                f"the database holds {tables} tables: restore into an empty database "
                "(createdb NAME, point OFFERTRACK_DATABASE_URL at it, run restore again)"
            )
        conninfo, env = libpq_target(database_url)
        args = [pg_restore, "--exit-on-error", "--single-transaction", "--no-owner"]
        run_pg_tool([*args, f"--dbname={conninfo}", str(backup)], env)
        with engine.connect() as connection:
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    return RestoreReport(make_url(database_url).render_as_string(hide_password=True), str(revision))


def _user_tables(engine: Engine) -> int:
    query = text(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
    )
    with engine.connect() as connection:
        return int(connection.execute(query).scalar() or 0)
