"""Test fixtures: one migrated database per run, one rolled-back transaction per test.

The database is SQLite in a temporary directory unless OFFERTRACK_TEST_DATABASE_URL names
another (the PostgreSQL run of .ci/run). Tests never touch the development database.
"""

import atexit
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

_tmp = Path(tempfile.mkdtemp(prefix="offertrack-test-"))
atexit.register(shutil.rmtree, _tmp, ignore_errors=True)
TEST_DATABASE_URL = (
    os.environ.get("OFFERTRACK_TEST_DATABASE_URL") or f"sqlite:///{_tmp / 'test.db'}"
)
os.environ.update(
    OFFERTRACK_ENV="test",
    OFFERTRACK_DATABASE_URL=TEST_DATABASE_URL,
    OFFERTRACK_VAR_DIR=str(_tmp / "var"),
    OFFERTRACK_PUBLIC_BASE_URL="https://track.example.com",
    OFFERTRACK_PDF_WORKERS="1",
    # Webhook tests run their own workers; a server's worker would race them for the outbox.
    OFFERTRACK_WEBHOOK_WORKER="false",
    # Production's cost (64 MiB, 3 passes) per sign-in would make the suite crawl; the
    # algorithm and code path stay the same.
    OFFERTRACK_PASSWORD_HASH_TIME_COST="1",
    OFFERTRACK_PASSWORD_HASH_MEMORY_KIB="1024",
)

import psycopg  # noqa: E402
import pytest  # noqa: E402
from alembic import command  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from app.analytics.router import session_scope  # noqa: E402
from app.auth.service import create_api_key  # noqa: E402
from app.config import Settings, get_settings  # noqa: E402
from app.db import get_engine, get_session, get_session_factory, metadata  # noqa: E402
from app.main import create_app  # noqa: E402
from app.migrations import alembic_config  # noqa: E402
from app.subscribers import wire  # noqa: E402
from app.tracking.dependencies import get_scan_log  # noqa: E402
from app.tracking.ratelimit import MissLimiter  # noqa: E402
from app.tracking.scans import visitor_keys  # noqa: E402
from tests.scanlogs import SessionScanLog  # noqa: E402

# Tests call services directly too, without create_app: the composition root wires first
# (the scan feed publishes ScansCommitted, offers and tracking their events).
wire()

SEEDED_TABLES = {"order_stage"}


def reset_schema(engine: Engine) -> None:
    """Drop everything so the run starts from an empty database, then migrate to head."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        else:
            metadata.drop_all(connection)
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    config = alembic_config()
    config.attributes["configure_logger"] = False
    # Outside a transaction: on SQLite, env.py switches foreign keys off before it begins one.
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        # The scan feed's mark starts before the first scan a test stores (rolled-back tests
        # use up PostgreSQL's ids; a mark at 0 would wait at their gap).
        connection.execute(text("DELETE FROM scan_feed_mark"))
        connection.commit()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def engine() -> Engine:
    engine = get_engine()
    try:
        reset_schema(engine)
    except Exception as exc:  # a configured database that is down fails the run, never skips
        pytest.exit(f"Test database {TEST_DATABASE_URL} is not usable: {exc}", returncode=1)
    return engine


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back; services' commits become savepoints."""
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()


@pytest.fixture
def committed(engine: Engine) -> Iterator[Engine]:
    """For tests that need real commits across connections; empties the data tables afterwards
    (reference data that migrations seed, such as the stage list, stays)."""
    yield engine
    with engine.begin() as connection:
        # The scan feed's mark first, locked until the end: a feed round running in this
        # process (a server's, a live server's) holds it, then writes the rollups.
        if connection.dialect.name == "postgresql":
            connection.execute(text("LOCK TABLE scan_feed_mark"))
        connection.execute(text("DELETE FROM scan_feed_mark"))
        for table in reversed(metadata.sorted_tables):
            if table.name not in SEEDED_TABLES:
                connection.execute(table.delete())


@pytest.fixture(scope="session")
def app(engine: Engine) -> FastAPI:
    # Its scan feed off, as the live server's: tests derive the scans they commit themselves
    # (scanfeed.catch_up) and count what a round derives, which a feed running beside them
    # every 0.2 s would take from them at random.
    return create_app(get_settings().model_copy(update={"scan_feed": False}))


@pytest.fixture(scope="session")
def _running_client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="https://track.example.com") as client:
        yield client


@pytest.fixture
def client(app: FastAPI, _running_client: TestClient, session: Session) -> Iterator[TestClient]:
    app.dependency_overrides[get_session] = lambda: session
    app.dependency_overrides[session_scope] = lambda: lambda: nullcontext(session)
    # The group-commit writer has its own connection; inside a rolled-back test transaction
    # the view's own session commits (the live-server tests exercise the real writer).
    app.dependency_overrides[get_session_factory] = lambda: lambda: nullcontext(session)
    app.dependency_overrides[get_scan_log] = lambda: SessionScanLog(session)
    app.state.miss_limiter = MissLimiter(get_settings().miss_limit_per_minute)
    visitor_keys.forget()
    app.state.page_cache.clear()  # a rolled-back test leaves no trace in the data; nor may it here
    app.state.routing_table.forget()  # codes loaded by another test's rolled-back transaction
    _running_client.headers.clear()
    _running_client.cookies.clear()
    try:
        yield _running_client
    finally:
        app.dependency_overrides.clear()


@pytest.fixture
def api_token(session: Session) -> str:
    _, token = create_api_key(session, "tests", actor="tests")
    return token


@pytest.fixture
def api(client: TestClient, api_token: str) -> TestClient:
    client.headers["Authorization"] = f"Bearer {api_token}"
    return client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(engine: Engine) -> Iterator[str]:
    """OfferTrack served by uvicorn in its own process, on the test database."""
    port = _free_port()
    # Its scan feed off: tests derive the scans they commit themselves (scanfeed.catch_up), and
    # count what a round derives; another process's feed would take their rounds at random.
    env = {
        **os.environ,
        "OFFERTRACK_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "OFFERTRACK_SCAN_FEED": "false",
    }
    with serving(env, port, _tmp / "server.log") as base_url:
        yield base_url


ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def serving(env: dict[str, str], port: int, log_path: Path, *options: str) -> Iterator[str]:
    """``offertrack serve`` on ``port`` in a process of its own, with ``env``, its output in
    ``log_path``; yields its base URL once it answers, and stops it after."""
    base_url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), *options]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_up(base_url, process, log_path)
            yield base_url
        finally:
            process.terminate()
            process.wait(timeout=30)


def _wait_until_up(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(base_url + "/robots.txt", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start within 60 s")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A disk of its own, 24 MB, to fill (a tmpfs: mounting one needs root, as CI runs)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte; delete the file returned to free it again."""
    filler = disk / "filler"
    # Unbuffered: a buffered file keeps what the full disk refused and tries again, and
    # fails, when it is closed.
    with filler.open("wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 65536)
        except OSError:
            pass
    return filler


@pytest.fixture
def database_away(committed: Engine) -> Iterator[None]:
    """From here on no connection to the database can be made, as when its server is gone or
    its disk has failed: the open ones are closed, new ones fail as the driver fails them."""
    original = committed.pool
    away = original.recreate()
    driver_error = (
        sqlite3.OperationalError if committed.dialect.name == "sqlite" else psycopg.OperationalError
    )

    def refuse() -> None:
        raise driver_error("could not connect: the database is away (test)")

    away._creator = refuse  # type: ignore[assignment]
    original.dispose()
    committed.pool = away
    yield
    committed.pool = original


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """The URL of a Redis that takes connections and never answers, as a host that hangs or a
    network that drops the replies: the kernel completes the handshakes, nobody reads."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    # Closing it resets the connections waiting on it: a request still stuck on one ends.
