"""The tracking page while its database cannot be reached: a clear 503, fast, never a trace."""

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlmodel import Session

from app.auth import service as auth_service
from app.config import Settings
from app.db import (
    PG_CONNECT_TIMEOUT_SECONDS,
    PG_SILENCE_SECONDS,
    get_session,
    get_session_factory,
    make_engine,
    utcnow,
)
from app.tracking import scanrows
from app.tracking.dependencies import get_scan_log
from app.tracking.scanlog import ScanWriter
from app.tracking.spool import ScanSpool
from tests.aio import run_async
from tests.conftest import TEST_DATABASE_URL
from tests.factories import make_offer
from tests.tcpproxy import TcpProxy
from tests.tracking.test_pages import make_order

# Nothing listens on port 9: connecting fails the way it does while PostgreSQL is down.
UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:9/offertrack"


@pytest.fixture
def database_down(app: FastAPI, client: TestClient) -> Iterator[None]:
    engine = make_engine(UNREACHABLE)
    app.dependency_overrides[get_session_factory] = lambda: lambda: Session(engine)
    app.state.page_cache.unavailable_until = 0.0
    yield
    app.state.page_cache.unavailable_until = 0.0
    engine.dispose()


def test_a_valid_code_gets_a_clear_503_at_once(
    client: TestClient, session: Session, settings: Settings, database_down: None
) -> None:
    order = make_order(session, settings)
    started = time.monotonic()

    response = client.get(f"/{order.tracking_id.lower()}")

    assert time.monotonic() - started < 1.0
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert "Status temporarily unavailable" in response.text
    assert f"{order.tracking_id[:5]}-{order.tracking_id[5:]}" in response.text  # the code used
    assert "Traceback" not in response.text


def test_the_api_says_so_in_json(
    api: TestClient, app: FastAPI, session: Session, settings: Settings
) -> None:
    engine = make_engine(UNREACHABLE)

    def unreachable() -> Iterator[Session]:
        with Session(engine) as broken:
            yield broken

    app.dependency_overrides[get_session] = unreachable
    auth_service.verified_keys.forget()  # the key check must ask the database too
    try:
        response = api.get("/api/v1/offers")
    finally:
        engine.dispose()

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "10"
    assert "unavailable" in response.json()["detail"]


def test_a_page_seen_a_moment_ago_is_still_served(
    app: FastAPI, client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    assert client.get(f"/{offer.id}").status_code == 200

    engine = make_engine(UNREACHABLE)
    app.dependency_overrides[get_session_factory] = lambda: lambda: Session(engine)
    try:
        response = client.get(f"/{offer.id}")
    finally:
        engine.dispose()

    assert response.status_code == 200
    assert offer.customer_company in response.text


def test_a_cached_page_is_served_even_just_after_another_page_met_the_outage(
    app: FastAPI, client: TestClient, session: Session, settings: Settings, database_down: None
) -> None:
    offer = make_offer(session, settings, issued=True)
    app.dependency_overrides[get_session_factory] = lambda: lambda: nullcontext(session)
    assert client.get(f"/{offer.id}").status_code == 200
    app.state.page_cache.unavailable_until = time.monotonic() + 60  # another page just failed

    assert client.get(f"/{offer.id}").status_code == 200
    assert client.get(f"/{make_offer(session, settings, issued=True).id}").status_code == 503


@pytest.fixture
def blackholed_database() -> Iterator[str]:
    """A PostgreSQL address whose server takes the connection and then never says a word, as
    when a host drops packets: the client waits for its connect timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # the kernel completes the handshakes; nobody ever accepts
        yield f"postgresql+psycopg://postgres@127.0.0.1:{listener.getsockname()[1]}/offertrack"


def _timed_get(client: TestClient, path: str) -> tuple[float, int, str]:
    started = time.monotonic()
    response = client.get(path)
    return time.monotonic() - started, response.status_code, response.text


def test_a_database_that_never_answers_gets_a_503_within_a_second(
    app: FastAPI, client: TestClient, session: Session, settings: Settings, blackholed_database: str
) -> None:
    order = make_order(session, settings)
    engine = make_engine(blackholed_database)
    app.dependency_overrides[get_session_factory] = lambda: lambda: Session(engine)
    app.state.page_cache.unavailable_until = 0.0
    try:
        elapsed, status, text = _timed_get(client, f"/{order.tracking_id}")
        time.sleep(PG_CONNECT_TIMEOUT_SECONDS + 0.5)  # the abandoned load times out meanwhile
    finally:
        app.state.page_cache.unavailable_until = 0.0
        engine.dispose()

    print(f"\n503 from a blackholed database after {elapsed * 1000:.0f} ms")
    assert status == 503
    assert elapsed < 1.0
    assert "Status temporarily unavailable" in text


def test_a_full_connection_pool_gets_a_503_within_a_second(
    app: FastAPI, client: TestClient, session: Session, settings: Settings
) -> None:
    offer = make_offer(session, settings, issued=True)
    engine = make_engine(TEST_DATABASE_URL, pool_size=1, max_overflow=0)
    returned = threading.Semaphore(0)
    event.listen(engine, "checkin", lambda *_: returned.release())
    app.dependency_overrides[get_session_factory] = lambda: lambda: Session(engine)
    app.state.page_cache.unavailable_until = 0.0
    held = engine.connect()  # the pool's only connection, busy elsewhere
    try:
        elapsed, status, text = _timed_get(client, f"/{offer.id}")
    finally:
        held.close()  # the abandoned load gets it now, and ends
        app.state.page_cache.unavailable_until = 0.0
    # Disposing of the pool before the load gave the connection back would leave it open.
    assert returned.acquire(timeout=10) and returned.acquire(timeout=10)
    engine.dispose()

    print(f"\n503 from a full pool after {elapsed * 1000:.0f} ms")
    assert status == 503
    assert elapsed < 1.0
    assert "Status temporarily unavailable" in text


def test_a_scan_for_a_database_that_never_answers_is_spooled_within_a_second(
    app: FastAPI,
    client: TestClient,
    session: Session,
    settings: Settings,
    blackholed_database: str,
    tmp_path: Path,
) -> None:
    # The page itself comes from the page cache; its scan's writer finds no database to
    # connect to and must not hold the visitor for the driver's 2 s connect timeout.
    offer = make_offer(session, settings, issued=True)
    app.dependency_overrides[get_session_factory] = lambda: lambda: nullcontext(session)
    engine = make_engine(blackholed_database)
    spool = ScanSpool(tmp_path / "spool")
    scan_log = ScanWriter(engine, spool=spool)
    app.dependency_overrides[get_scan_log] = lambda: scan_log
    try:
        timings = [_timed_get(client, f"/{offer.id}") for _ in range(3)]
    finally:
        scan_log.close()
        time.sleep(PG_CONNECT_TIMEOUT_SECONDS + 0.5)  # the abandoned attempt gives up meanwhile
        engine.dispose()

    print(f"\npages with a blackholed scan writer: {[round(t * 1000) for t, _, _ in timings]} ms")
    assert [status for _, status, _ in timings] == [200, 200, 200]
    assert all(elapsed < 1.0 for elapsed, _, _ in timings)
    (spooled,) = spool.pending()
    assert spooled.read_text().count(offer.id) == 3


def test_the_scan_writer_gives_up_on_a_database_gone_silent_mid_connection(
    committed: Engine,
) -> None:
    """A partition just after the writer connected: its first statement (once the batch's
    time limits, now the batch itself) waited until the kernel gave up on TCP, some
    fifteen minutes, while every scan meanwhile went to the spool and none was replayed."""
    if committed.dialect.name != "postgresql":
        pytest.skip("a partition needs a database server: the PostgreSQL run (SQLite is a file)")
    proxy = TcpProxy((committed.url.host or "127.0.0.1", committed.url.port or 5432))
    url = committed.url.set(host="127.0.0.1", port=proxy.port)
    engine = make_engine(url.render_as_string(hide_password=False))
    batches = scanrows.PostgresBatches(engine, 1.0)
    row = {"offer_id": None, "occurred_at": utcnow(), "code_form": "full", "channel": "qr"}

    async def partitioned_batch() -> tuple[float, BaseException | None]:
        await batches._connected()
        proxy.silence(drop_packets=True)
        started = time.monotonic()
        batch = asyncio.ensure_future(batches.insert([row]))
        await asyncio.wait({batch}, timeout=30)
        if not batch.done():
            batch.cancel()
            return time.monotonic() - started, None
        return time.monotonic() - started, batch.exception()

    try:
        waited, failure = run_async(partitioned_batch)
    finally:
        proxy.close()
        batches.close()
        engine.dispose()
    print(f"\nthe scan writer gave up on a partitioned database after {waited:.1f} s: {failure!r}")
    assert failure is not None  # then the writer spools the batch, and tries again in 2 s
    assert waited < PG_SILENCE_SECONDS + 3
