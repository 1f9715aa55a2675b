"""``offertrack backup``: a consistent copy of the database, taken while it is in use, and
checked after it was written.

SQLite: the online backup API copies the pages inside one read transaction, so the copy is the
database as of one moment: every transaction committed before it and nothing of one after. In
WAL mode (ours) the server's writers carry on meanwhile; nothing has to stop.

PostgreSQL: ``pg_dump --format=custom`` takes a consistent snapshot the same way; what it wrote
is then read back with ``pg_restore --list``.
"""

import glob
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from app.db import SQLITE_LOCK_TIMEOUT

PG_DUMP_HELP = (
    "This database is PostgreSQL, and pg_dump is not installed here (Debian: apt-get install "
    "postgresql-client, of the server's major version or newer). With it, `offertrack backup` "
    "runs pg_dump --format=custom and checks the archive, and `offertrack restore` runs "
    "pg_restore into an empty database. By hand:\n"
    '  pg_dump --format=custom --file=offertrack-$(date +%F).dump "$DATABASE_URL"\n'
    "For point-in-time recovery use WAL archiving (see PostgreSQL's documentation)."
)
PG_TOOL_SECONDS = 3600


class BackupError(RuntimeError):
    """The backup could not be written; the message says why."""


class PgToolMissing(BackupError):
    """pg_dump or pg_restore is not installed."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    size: int
    check: str  # what was checked after writing, for the operator


def sqlite_file(database_url: str) -> Path:
    database = make_url(database_url).database
    if not database or database == ":memory:":
        raise BackupError("the database is not a file, so there is nothing to back up")
    return Path(database)


def backup_target(path: str) -> Path:
    """PATH as typed: one ending in a slash names a directory, which must exist; else a
    nightly job given a directory that was never made would keep writing one plain file."""
    target = Path(path)
    if path.endswith(os.sep) and not target.is_dir():
        raise BackupError(f"there is no directory {target}: create it first")
    return target


# The name a directory's backup gets: only these does ``prune`` delete.
DATED = re.compile(r"offertrack-\d{8}T\d{6}Z\.(db|dump)")


def prune(directory: Path, keep: int, written: Path) -> list[Path]:
    """Delete all but the newest ``keep`` dated backups in ``directory``; returns them. A
    file of another name there (one kept by hand) is not ours to delete, nor is ``written``,
    the backup just made, whatever its name sorts after: one named later (while the clock was
    wrong, or by a backup started later that finished first) must not have it deleted."""
    dated = sorted(path for path in directory.iterdir() if DATED.fullmatch(path.name))
    gone = [path for path in dated[:-keep] if path != written]
    for path in gone:
        path.unlink()
    return gone


def _target_file(target: Path, suffix: str, *, overwrite: bool) -> Path:
    if target.is_dir():
        target = target / f"offertrack-{datetime.now(UTC):%Y%m%dT%H%M%SZ}{suffix}"
    elif not target.parent.is_dir():
        raise BackupError(f"there is no directory {target.parent}: create it first")
    if target.exists() and not overwrite:
        raise BackupError(f"{target} exists; pass --overwrite to replace it")
    return target


def _partial(target: Path) -> Path:
    """Where a backup is written until checked: a name of its own, since two backups started
    in the same second (a nightly job and an operator's) share ``target``, and each deleted
    the other's copy while it was being written."""
    return target.with_name(f"{target.name}.{secrets.token_hex(4)}.partial")


def new_private_file(path: Path, mode: int = 0o600) -> None:
    """An empty ``path`` that only its owner may read (or ``mode``, whatever the umask): a
    backup holds the customers' personal data, and the default umask left it readable by
    every local user. SQLite and pg_dump write into it and keep its mode."""
    path.unlink(missing_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    os.chmod(path, mode)


def backup_sqlite(source: Path, target: Path, *, overwrite: bool = False) -> BackupReport:
    """Copy ``source`` to ``target`` (a file, or a directory to put a dated file in)."""
    if not source.is_file():
        raise BackupError(f"there is no database at {source}")
    target = _target_file(target, ".db", overwrite=overwrite)
    partial = _partial(target)
    try:
        new_private_file(partial)
        copy_sqlite(source, partial)
        revision = check_sqlite(partial)  # read back from disk, by a new connection
        os.replace(partial, target)  # a backup file is either complete and checked, or absent
    finally:
        partial.unlink(missing_ok=True)
    return BackupReport(target, target.stat().st_size, f"integrity ok, schema {revision}")


def copy_sqlite(source: Path, destination: Path) -> None:
    """A self-contained, integrity-checked copy of ``source`` (its -wal included), on disk."""
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


def check_sqlite(path: Path) -> str:
    """The schema revision of the OfferTrack database in ``path``, after a full integrity
    check (every page, every index); BackupError if it fails either."""
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"{path} cannot be opened as SQLite: {exc}") from exc
    try:
        try:
            (verdict,) = connection.execute("PRAGMA integrity_check").fetchone()
        except sqlite3.Error as exc:
            verdict = str(exc)
        if verdict != "ok":
            raise BackupError(f"{path} failed SQLite's integrity check: {verdict}")
        try:
            rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        except sqlite3.Error as exc:
            raise BackupError(f"{path} is not an OfferTrack database: {exc}") from exc
    finally:
        connection.close()
    if len(rows) != 1:
        raise BackupError(f"{path} has no schema revision: not an OfferTrack database")
    return str(rows[0][0])


def pg_tool(name: str) -> str:
    """The path of PostgreSQL's ``name`` (pg_dump, pg_restore): on PATH (Debian's wrapper picks
    the right version), else the newest under /usr/lib/postgresql."""
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise PgToolMissing(PG_DUMP_HELP)
    return found


def libpq_target(database_url: str) -> tuple[str, dict[str, str]]:
    """The URL for libpq's tools, and their environment: the password goes in PGPASSWORD, never
    on a command line that every user of the machine can read."""
    url = make_url(database_url)
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def run_pg_tool(args: list[str], env: dict[str, str]) -> str:
    try:
        done = subprocess.run(
            args, env=env, capture_output=True, text=True, timeout=PG_TOOL_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BackupError(f"{Path(args[0]).name} did not finish in {PG_TOOL_SECONDS} s") from exc
    if done.returncode != 0:
        detail = done.stderr.strip() or f"exit status {done.returncode}"
        raise BackupError(f"{Path(args[0]).name} failed: {detail}")
    return done.stdout


def check_pg_archive(path: Path) -> int:
    """How many items the custom-format archive ``path`` holds, read back with pg_restore;
    BackupError unless it is readable and holds OfferTrack's tables' data."""
    listing = run_pg_tool([pg_tool("pg_restore"), "--list", str(path)], dict(os.environ))
    items = [line for line in listing.splitlines() if line and not line.startswith(";")]
    if not any("TABLE DATA" in line and " alembic_version " in line for line in items):
        raise BackupError(f"{path} holds no OfferTrack database (no alembic_version data)")
    return len(items)


def backup_postgresql(database_url: str, target: Path, *, overwrite: bool = False) -> BackupReport:
    """pg_dump the database into ``target`` (a file, or a directory for a dated one)."""
    pg_dump = pg_tool("pg_dump")
    target = _target_file(target, ".dump", overwrite=overwrite)
    partial = _partial(target)
    conninfo, env = libpq_target(database_url)
    try:
        new_private_file(partial)
        run_pg_tool([pg_dump, "--format=custom", f"--file={partial}", conninfo], env)
        items = check_pg_archive(partial)
        with partial.open("rb") as file:
            os.fsync(file.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return BackupReport(target, target.stat().st_size, f"archive readable, {items} items")
