"""offertrack restore: a backup put back in place, round trip on SQLite and PostgreSQL."""

import fcntl
import os
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session
from typer.testing import CliRunner, Result

from app.backup import PgToolMissing, pg_tool
from app.config import ConfigError, get_settings
from app.restore import DatabaseInUse, lock_path
from tests.conftest import TEST_DATABASE_URL
from tests.factories import make_offer

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
on_sqlite = pytest.mark.skipif(
    not TEST_DATABASE_URL.startswith("sqlite"), reason="SQLite's files; PostgreSQL has its own"
)
run_as_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root can give a file to another user"
)
SERVER_USER = 65534  # nobody, as the service's own user
on_postgresql = pytest.mark.skipif(
    not TEST_DATABASE_URL.startswith("postgresql"), reason="pg_dump and pg_restore"
)


def cli(*args: str) -> Result:
    from app.cli import cli

    return runner.invoke(cli, list(args))


def offertrack(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed command, run as an operator would, against ``database_url``."""
    env = {**os.environ, "OFFERTRACK_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def write_then_die(database: Path, company: str) -> None:
    """A server writes and is killed: its last writes are only in the -wal it leaves behind."""
    script = (
        "import os, sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('PRAGMA journal_mode=WAL')\n"
        "db.execute('PRAGMA wal_autocheckpoint=0')\n"
        "db.execute('UPDATE offer SET customer_company = ?', (sys.argv[2],))\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(database), company], check=True)


def companies(database: Path) -> list[str]:
    with sqlite3.connect(database) as connection:
        return [row[0] for row in connection.execute("SELECT customer_company FROM offer")]


@on_sqlite
def test_a_sqlite_backup_restores_over_a_database_with_a_leftover_wal(
    committed: Engine, tmp_path: Path
) -> None:
    with Session(committed, expire_on_commit=False) as session:
        make_offer(session, get_settings(), company="At backup time")
    backup = tmp_path / "backup.db"
    assert cli("backup", str(backup)).exit_code == 0
    live = tmp_path / "var" / "offertrack.db"
    live.parent.mkdir()
    live.write_bytes(backup.read_bytes())
    write_then_die(live, "Written after the backup")
    assert Path(f"{live}-wal").stat().st_size > 0  # as after the server was killed

    result = offertrack(f"sqlite:///{live}", "restore", str(backup))

    assert result.returncode == 0, result.stderr
    assert "Restored" in result.stdout
    with sqlite3.connect(live) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert connection.execute("SELECT count(*) FROM scan_event").fetchone() == (0,)
    assert companies(live) == ["At backup time"]
    (aside,) = tmp_path.glob("var/offertrack.db.before-restore-*[0-9]Z")
    assert Path(f"{aside}-wal").exists()  # moved with its database, not replayed into the new
    assert companies(aside) == ["Written after the backup"]
    assert str(aside) in result.stdout


@on_sqlite
@run_as_root
def test_a_restore_run_as_root_leaves_the_database_to_the_servers_user(
    committed: Engine, tmp_path: Path
) -> None:
    backup = tmp_path / "backup.db"
    assert cli("backup", str(backup)).exit_code == 0
    live = tmp_path / "var" / "offertrack.db"
    live.parent.mkdir()
    live.write_bytes(backup.read_bytes())
    for path in (live.parent, live):
        os.chown(path, SERVER_USER, SERVER_USER)

    result = offertrack(f"sqlite:///{live}", "restore", str(backup))

    assert result.returncode == 0, result.stderr
    for path in (live, lock_path(live)):
        assert (path.stat().st_uid, path.stat().st_gid) == (SERVER_USER, SERVER_USER), path


def as_user(uid: int, *args: str) -> subprocess.CompletedProcess[str]:
    """The system's Python run as ``uid`` (the venv's may live where that user cannot read)."""
    return subprocess.run(
        ["/usr/bin/python3", *args],
        user=uid,
        group=uid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@on_sqlite
@run_as_root
@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="the system's Python")
def test_a_restore_as_root_into_a_new_directory_leaves_it_to_the_user_of_the_one_above(
    committed: Engine,
) -> None:
    """The data directory is the service user's; the database goes into a directory below it
    that does not exist yet. Created by root, it was root's: the server, as its own user, could
    read the restored database but not write its -wal beside it, and every save failed."""
    with Session(committed, expire_on_commit=False) as session:
        make_offer(session, get_settings(), company="Restored")
    with tempfile.TemporaryDirectory() as scratch:
        Path(scratch).chmod(0o755)  # pytest's tmp_path is root's alone: nobody gets past it
        backup = Path(scratch) / "backup.db"
        assert cli("backup", str(backup)).exit_code == 0
        data = Path(scratch) / "var-lib-offertrack"
        data.mkdir(mode=0o750)
        os.chown(data, SERVER_USER, SERVER_USER)
        live = data / "db" / "sqlite" / "offertrack.db"

        result = offertrack(f"sqlite:///{live}", "restore", str(backup))

        assert result.returncode == 0, result.stderr
        for path in (data / "db", live.parent, live, lock_path(live)):
            assert (path.stat().st_uid, path.stat().st_gid) == (SERVER_USER, SERVER_USER), path
        assert [p.stat().st_mode & 0o777 for p in (data / "db", live.parent)] == [0o700, 0o700]
        write = (
            "import sqlite3, sys\n"
            "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "db.execute('PRAGMA journal_mode=WAL')\n"
            "db.execute(\"UPDATE offer SET customer_company = 'Saved by the server'\")\n"
        )
        saved = as_user(SERVER_USER, "-c", write, str(live))
        assert saved.returncode == 0, saved.stderr
        assert companies(live) == ["Saved by the server"]


@on_sqlite
@run_as_root
def test_a_restore_as_root_into_a_new_directory_below_roots_is_refused(
    committed: Engine, tmp_path: Path
) -> None:
    backup = tmp_path / "backup.db"
    assert cli("backup", str(backup)).exit_code == 0
    live = tmp_path / "new" / "offertrack.db"  # tmp_path is root's: whose is the database?

    result = offertrack(f"sqlite:///{live}", "restore", str(backup))

    assert result.returncode == 1
    assert f"{live.parent} does not exist" in result.stderr
    assert f"install -d -m 700 -o offertrack -g offertrack {live.parent}" in result.stderr
    assert not live.parent.exists()


@on_sqlite
def test_a_restored_database_is_as_private_as_the_one_it_replaces(
    committed: Engine, tmp_path: Path
) -> None:
    """The backup is readable by its owner only; the restore wrote the database anew, readable
    by every local user (the umask's 0644), with the customers' names and addresses in it."""
    backup = tmp_path / "backup.db"
    assert cli("backup", str(backup)).exit_code == 0
    live = tmp_path / "var" / "offertrack.db"
    live.parent.mkdir()
    live.write_bytes(backup.read_bytes())
    live.chmod(0o640)  # the server's user, and its group (a backup job, say)
    fresh = tmp_path / "new" / "offertrack.db"  # a database restored where there was none
    fresh.parent.mkdir()  # run as root, a new one below a directory of root's is refused

    for database in (live, fresh):
        result = offertrack(f"sqlite:///{database}", "restore", str(backup))

        assert result.returncode == 0, result.stderr
    assert live.stat().st_mode & 0o777 == 0o640
    assert fresh.stat().st_mode & 0o777 == 0o600


@on_sqlite
@pytest.mark.usefixtures("_running_client")  # the test server: the app's lifespan is running
def test_restore_is_refused_while_a_server_uses_the_database(
    committed: Engine, tmp_path: Path
) -> None:
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, get_settings())
    backup = tmp_path / "backup.db"
    assert cli("backup", str(backup)).exit_code == 0
    database = Path(make_url(TEST_DATABASE_URL).database or "")

    result = cli("restore", str(backup))

    assert result.exit_code == 1
    assert "is using" in result.output and "stop it" in result.output
    assert not list(database.parent.glob("*.before-restore-*"))
    with Session(committed) as session:
        assert session.execute(text("SELECT id FROM offer")).scalars().all() == [offer.id]


@on_sqlite
def test_a_server_does_not_start_while_a_restore_runs(tmp_path: Path) -> None:
    database = tmp_path / "offertrack.db"
    with lock_path(database).open("ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ConfigError, match="being restored"):
            DatabaseInUse(database)
    DatabaseInUse(database).release()


@on_sqlite
def test_a_damaged_backup_is_refused_and_nothing_is_moved(
    committed: Engine, tmp_path: Path
) -> None:
    backup = tmp_path / "backup.db"
    assert cli("backup", str(backup)).exit_code == 0
    with backup.open("r+b") as file:
        file.seek(4096)
        file.write(b"\xff" * 4096)
    live = tmp_path / "live.db"
    live.write_bytes(b"the current database")

    result = offertrack(f"sqlite:///{live}", "restore", str(backup))

    assert result.returncode == 1
    assert "integrity check" in result.stderr
    assert live.read_bytes() == b"the current database"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.db", "live.db"]


@pytest.fixture
def pg_tools() -> None:
    try:
        pg_tool("pg_dump")
        pg_tool("pg_restore")
    except PgToolMissing:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("pg_dump/pg_restore are not installed (apt-get install postgresql-client)")


@pytest.fixture
def scratch_database(engine: Engine) -> Iterator[str]:
    """An empty database beside the test database, named after it (CI's is `test`)."""
    url = make_url(TEST_DATABASE_URL)
    name = f"{url.database}_restore"
    admin = create_engine(
        url.set(drivername="postgresql+psycopg"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@on_postgresql
def test_a_postgresql_backup_restores_into_an_empty_database(
    pg_tools: None, committed: Engine, scratch_database: str, tmp_path: Path
) -> None:
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, get_settings(), company="Kept by pg_dump")
    with committed.connect() as connection:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()

    written = cli("backup", str(tmp_path))
    (dump,) = tmp_path.glob("offertrack-*.dump")
    restored = offertrack(scratch_database, "restore", str(dump))

    assert written.exit_code == 0, written.output
    assert "archive readable" in written.output
    assert restored.returncode == 0, restored.stderr
    assert f"schema {revision}" in restored.stdout
    copy = create_engine(make_url(scratch_database), poolclass=NullPool)
    try:
        with copy.connect() as connection:
            rows = connection.execute(text("SELECT id, customer_company FROM offer")).all()
            stages = connection.execute(text("SELECT count(*) FROM order_stage")).scalar()
    finally:
        copy.dispose()
    assert [tuple(row) for row in rows] == [(offer.id, "Kept by pg_dump")]
    assert stages  # the seeded reference data came along


@on_postgresql
def test_a_postgresql_restore_into_a_database_with_tables_is_refused(
    pg_tools: None, committed: Engine, tmp_path: Path
) -> None:
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, get_settings())
    dump = tmp_path / "copy.dump"
    assert cli("backup", str(dump)).exit_code == 0

    result = cli("restore", str(dump))  # into the test database itself

    assert result.exit_code == 1
    assert "restore into an empty database" in result.output
    with Session(committed) as session:
        assert session.execute(text("SELECT id FROM offer")).scalars().all() == [offer.id]
