"""Short write transactions: slow work never holds the database, and a database that is busy
or shutting down answers 503 with Retry-After, never 500.

These tests use the server's own sessions (no rolled-back test transaction), on committed data.
"""

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from app.analytics import delivery as webhook_delivery
from app.auth.service import authenticate, create_api_key, verified_keys
from app.config import Settings
from app.db import make_engine, read_only
from app.notifications import delivery as mail_delivery
from app.notifications import subscriptions
from app.offers.pdf import PdfRenderer
from tests.conftest import TEST_DATABASE_URL
from tests.factories import make_offer, offer_data

on_sqlite = pytest.mark.skipif(
    not TEST_DATABASE_URL.startswith("sqlite"), reason="SQLite's one writer"
)
on_postgresql = pytest.mark.skipif(
    not TEST_DATABASE_URL.startswith("postgresql"), reason="a PostgreSQL server's connections"
)


class SlowRenderer:
    """The real renderer, after a pause: a long offer's render, made predictable."""

    def __init__(self, renderer: PdfRenderer, seconds: float) -> None:
        self.renderer = renderer
        self.seconds = seconds
        self.started = threading.Event()

    def render_sync(self, html: str) -> bytes:
        self.started.set()
        time.sleep(self.seconds)
        return self.renderer.render_sync(html)

    async def render(self, html: str) -> bytes:
        self.started.set()
        await asyncio.sleep(self.seconds)
        return await self.renderer.render(html)


@pytest.fixture
def server(app: FastAPI, _running_client: TestClient, committed: Engine) -> Iterator[TestClient]:
    """The app with its real sessions: each request opens and ends its own transactions."""
    app.dependency_overrides.clear()
    _running_client.headers.clear()
    yield _running_client
    _running_client.headers.clear()


@pytest.fixture
def token(committed: Engine) -> str:
    with Session(committed) as session:
        _, token = create_api_key(session, "writes", actor="tests")
    return token


def test_a_write_during_a_slow_draft_render_is_answered_at_once(
    app: FastAPI,
    server: TestClient,
    committed: Engine,
    settings: Settings,
    token: str,
) -> None:
    with Session(committed, expire_on_commit=False) as session:
        draft = make_offer(session, settings)
    renderer = app.state.pdf_renderer
    slow = SlowRenderer(renderer, seconds=3)
    headers = {"Authorization": f"Bearer {token}"}

    # Not monkeypatch: Starlette's State keeps attributes in a dict monkeypatch cannot restore.
    app.state.pdf_renderer = slow
    try:
        with ThreadPoolExecutor(1) as pool:
            pdf = pool.submit(server.get, f"/api/v1/offers/{draft.id}/pdf", headers=headers)
            assert slow.started.wait(30)
            started = time.perf_counter()
            created = server.post("/api/v1/offers", json=offer_data(), headers=headers)
            waited = time.perf_counter() - started
            rendered = pdf.result(timeout=60)
    finally:
        app.state.pdf_renderer = renderer

    assert created.status_code == 201, created.text
    assert rendered.status_code == 200 and rendered.content.startswith(b"%PDF")
    assert waited < 1, f"the write waited {waited:.1f} s for the render"


class HeldRenderer:
    """The real renderer, once the test lets the renders go: until then every PDF request
    waits for it, as behind a renderer busy with long offers."""

    def __init__(self, renderer: PdfRenderer, expected: int) -> None:
        self.renderer = renderer
        self.expected = expected
        self.waiting = 0
        self.all_waiting = threading.Event()
        self.release = threading.Event()

    async def render(self, html: str) -> bytes:
        self.waiting += 1  # on the event loop: no lock needed
        if self.waiting == self.expected:
            self.all_waiting.set()
        while not self.release.is_set():
            await asyncio.sleep(0.02)
        return await self.renderer.render(html)


def _thread_tokens(tokens: int) -> int:
    """Sets how many threads the app's sync endpoints and dependencies may use at once;
    returns the number before."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    before = int(limiter.total_tokens)
    limiter.total_tokens = tokens
    return before


def test_a_write_is_answered_while_more_pdfs_wait_for_a_renderer_than_there_are_threads(
    app: FastAPI,
    server: TestClient,
    committed: Engine,
    settings: Settings,
    token: str,
) -> None:
    threads, queued = 4, 8
    with Session(committed, expire_on_commit=False) as session:
        drafts = [make_offer(session, settings) for _ in range(queued)]
    renderer = app.state.pdf_renderer
    held = HeldRenderer(renderer, expected=queued)
    headers = {"Authorization": f"Bearer {token}"}

    tokens_before = server.portal.call(_thread_tokens, threads)  # type: ignore[union-attr]
    app.state.pdf_renderer = held
    pool = ThreadPoolExecutor(queued + 1)
    try:
        pdfs = [
            pool.submit(server.get, f"/api/v1/offers/{draft.id}/pdf", headers=headers)
            for draft in drafts
        ]
        # More requests wait for a renderer at once than there are threads to hold.
        all_waiting = held.all_waiting.wait(30)
        started = time.perf_counter()
        created = pool.submit(server.post, "/api/v1/offers", json=offer_data(), headers=headers)
        answered = wait([created], timeout=10).done
        waited = time.perf_counter() - started
    finally:
        held.release.set()  # before anything else: a request held by the test holds a thread
        server.portal.call(_thread_tokens, tokens_before)  # type: ignore[union-attr]
        rendered = [pdf.result(timeout=120) for pdf in pdfs]
        pool.shutdown()
        app.state.pdf_renderer = renderer

    assert all_waiting, f"only {held.waiting} of {queued} requests reached the renderer at once"
    assert answered and created.result().status_code == 201
    assert waited < 1, f"the write waited {waited:.1f} s behind the queued PDFs"
    assert [r.status_code for r in rendered] == [200] * queued
    assert all(r.content.startswith(b"%PDF") for r in rendered)


def test_checking_a_recently_used_api_key_leaves_no_transaction_open(
    committed: Engine, token: str
) -> None:
    """A request's session holding a transaction after the key check held SQLite's writer
    lock for the rest of that request (a PDF render, say): every write waited behind it."""
    with Session(committed) as session:
        authenticate(session, token)  # the first use writes last_used_at
    verified_keys.forget()
    with Session(committed) as session:
        caller = authenticate(session, token)  # used a moment ago: nothing to write

        assert caller.name == "writes"
        assert not session.in_transaction()


@contextmanager
def writer_lock_held(engine: Engine) -> Iterator[None]:
    """Another thread holds SQLite's one writer lock (BEGIN IMMEDIATE) for the block."""
    release = threading.Event()
    holding = threading.Event()

    def hold_the_writer_lock() -> None:
        with engine.begin() as connection:
            connection.execute(text("SELECT 1"))
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_writer_lock)
    holder.start()
    try:
        assert holding.wait(10)
        yield
    finally:
        release.set()
        holder.join(30)


@on_sqlite
def test_a_write_that_cannot_get_the_lock_in_time_answers_503(
    server: TestClient, committed: Engine, settings: Settings, token: str
) -> None:
    with writer_lock_held(committed):
        started = time.perf_counter()
        response = server.post(
            "/api/v1/offers", json=offer_data(), headers={"Authorization": f"Bearer {token}"}
        )
        waited = time.perf_counter() - started

    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"].isdigit()
    assert "unavailable" in response.json()["detail"]
    assert settings.write_wait_seconds <= waited < settings.write_wait_seconds + 2


@on_sqlite
def test_a_write_waits_in_a_queue_that_moves_longer_than_behind_a_stuck_holder(
    tmp_path: Path,
) -> None:
    """Forty writers at once on a loaded machine are a queue, not an outage: a write behind
    short transactions that add up to more than the wait still gets its turn."""
    engine = make_engine(f"sqlite:///{tmp_path / 'queue.db'}", write_wait_seconds=0.5)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    holders_done = threading.Event()

    def short_holders() -> None:
        for n in range(6):  # 6 x 0.2 s: more than twice the 0.5 s wait, never stuck
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
                if n == 0:
                    first_holding.set()
                time.sleep(0.2)
        holders_done.set()

    first_holding = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(short_holders)
        assert first_holding.wait(10)
        with engine.begin() as connection:  # queues behind the holders' transactions
            connection.execute(text("INSERT INTO t VALUES (99)"))
        assert holders_done.wait(10)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 7

    release = threading.Event()
    holding = threading.Event()

    def stuck_holder() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (0)"))
            holding.set()
            release.wait(10)

    with ThreadPoolExecutor(1) as pool:
        pool.submit(stuck_holder)
        assert holding.wait(10)
        started = time.perf_counter()
        with pytest.raises(OperationalError, match="database is locked"):
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO t VALUES (100)"))
        waited = time.perf_counter() - started
        release.set()
    assert 0.5 <= waited < 2
    engine.dispose()


@on_sqlite
def test_idle_workers_polls_never_take_the_writer_lock(
    committed: Engine, settings: Settings
) -> None:
    """An empty mail, webhook or fan-out queue is polled every second by every worker: on
    SQLite those polls must not take the one writer's lock that scans and requests queue for.
    With the lock held elsewhere, they answer "nothing to do" at once."""
    with writer_lock_held(committed):
        started = time.perf_counter()
        assert mail_delivery.claim(committed, settings) == []
        assert webhook_delivery.claim(committed, settings) == []
        assert subscriptions.fan_out(committed, settings) == 0
        waited = time.perf_counter() - started
    assert waited < 1


@contextmanager
def backend_killed_at(engine: Engine, table: str) -> Iterator[list[int]]:
    """PostgreSQL ends the server connection that is about to read ``table`` (once), as it does
    to every connection when it shuts down; yields the ended backends' pids."""
    killed: list[int] = []
    admin_url = make_url(TEST_DATABASE_URL).set(drivername="postgresql+psycopg")

    def kill(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if killed or f"FROM {table}" not in statement:
            return
        pid = connection.connection.dbapi_connection.info.backend_pid
        killed.append(pid)
        admin = create_engine(admin_url, poolclass=NullPool)
        with admin.connect() as other:
            # Waits (up to 5 s) until the backend is gone, so the statement meets a dead one.
            other.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
        admin.dispose()

    event.listen(engine, "before_cursor_execute", kill)
    try:
        yield killed
    finally:
        event.remove(engine, "before_cursor_execute", kill)


@on_postgresql
@pytest.mark.parametrize(
    ("path", "json"), [("/api/v1/offers/{id}/pdf", True), ("/{id}/pdf", False)]
)
def test_postgresql_ending_a_connection_mid_request_answers_503(
    server: TestClient,
    committed: Engine,
    settings: Settings,
    token: str,
    path: str,
    json: bool,
) -> None:
    with Session(committed, expire_on_commit=False) as session:
        offer = make_offer(session, settings, issued=not json)
    url = path.format(id=offer.id)

    with backend_killed_at(committed, "offer") as killed:
        response = server.get(url, headers={"Authorization": f"Bearer {token}"})

    assert killed, "the request never read the offer"
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"].isdigit()
    if json:
        assert "unavailable" in response.json()["detail"]
    else:
        assert response.headers["content-type"].startswith("text/html")
        assert "unavailable" in response.text
    assert server.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200


@on_postgresql
def test_read_only_reports_the_error_that_ended_it(committed: Engine) -> None:
    with Session(committed) as session:
        with backend_killed_at(committed, "offer"), pytest.raises(OperationalError) as raised:
            with read_only(session):
                session.execute(text("SELECT count(*) FROM offer"))

        assert "terminat" in str(raised.value) or "closed" in str(raised.value)
        assert not session.in_transaction()
        assert session.execute(text("SELECT 1")).scalar() == 1
