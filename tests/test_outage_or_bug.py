"""A database error is an outage (503 with Retry-After: try again) only when the database is
away, locked or out of room; SQL it cannot run is a bug (a logged 500), although SQLite, and
psycopg for a few, report both as OperationalError. The errors here are the databases' own."""

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from app.db import WriterBusy, get_session, is_outage

# SQL each database refuses as OperationalError although nothing is wrong with the database.
BAD_SQL = {
    "sqlite": "SELECT no_such_column FROM order_stage",  # "no such column"
    "postgresql": "SELECT concat(" + ", ".join(["1"] * 101) + ")",  # 54023 too many arguments
}

KEY = {"Authorization": "Bearer ot_x"}  # any: looking it up opens the failing session


def _bug_of(engine: Engine) -> OperationalError:
    """The database's own error for SQL it cannot run. On SQLite through a plain engine of
    its own: the app's engine first queues for the writer lock a test's transaction holds."""
    if engine.dialect.name == "sqlite":
        plain = create_engine(engine.url)
        try:
            return _error_of(plain, BAD_SQL["sqlite"])
        finally:
            plain.dispose()
    return _error_of(engine, BAD_SQL["postgresql"])


def _error_of(engine: Engine, sql: str) -> OperationalError:
    with engine.connect() as connection, pytest.raises(OperationalError) as raised:
        connection.execute(text(sql))
    return raised.value


@contextmanager
def _locked(engine: Engine, scratch: Path) -> Iterator[Callable[[], OperationalError]]:
    """The error a second transaction gets while a first holds the lock it waits for (on
    SQLite in a file of its own: a test's rolled-back transaction holds the suite's lock)."""
    if engine.dialect.name == "sqlite":
        path = str(scratch / "locked.db")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("CREATE TABLE IF NOT EXISTS order_stage (key TEXT)")
        holder.execute("BEGIN IMMEDIATE")
        try:
            waiter = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
            yield lambda: _error_of(waiter, "DELETE FROM order_stage WHERE key = 'none'")
            waiter.dispose()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    with engine.connect() as locking:
        locking.execute(text("LOCK TABLE order_stage IN ACCESS EXCLUSIVE MODE"))
        yield lambda: _error_of(engine, "SET lock_timeout = '50ms'; SELECT 1 FROM order_stage")
        locking.rollback()


def test_sql_the_database_cannot_run_is_a_bug_not_an_outage(engine: Engine) -> None:
    error = _bug_of(engine)

    assert not is_outage(error)
    assert "no such column" in str(error) or "more than 100 arguments" in str(error)


def test_a_lock_waited_for_past_its_time_is_an_outage(engine: Engine, tmp_path: Path) -> None:
    with _locked(engine, tmp_path) as locked_error:
        error = locked_error()

    assert is_outage(error)
    assert "locked" in str(error) or "lock timeout" in str(error)


def test_a_database_that_cannot_be_reached_or_opened_is_an_outage(
    engine: Engine, tmp_path: Path
) -> None:
    if engine.dialect.name == "sqlite":
        away = create_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")  # cannot open
    else:
        away = create_engine(
            engine.url.set(port=1), connect_args={"connect_timeout": 2}
        )  # refused: no SQLSTATE
    with pytest.raises(OperationalError) as raised:
        away.connect()

    assert is_outage(raised.value)
    assert is_outage(WriterBusy(5.0))  # our own wait for SQLite's writer lock, given up


def test_a_statement_cancelled_by_its_timeout_is_an_outage(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no statement timeout")
    error = _error_of(engine, "SET statement_timeout = '10ms'; SELECT pg_sleep(1)")

    assert is_outage(error)  # 57014


@pytest.fixture
def failing(app: FastAPI, client: TestClient) -> Callable[[Exception], TestClient]:
    """A client whose requests meet ``error`` wherever a route opens a session."""

    def fail_with(error: Exception) -> TestClient:
        def broken() -> None:
            raise error

        app.dependency_overrides[get_session] = broken
        return TestClient(app, base_url=str(client.base_url), raise_server_exceptions=False)

    return fail_with


def test_a_bug_reported_as_operational_error_is_a_logged_500_on_every_site(
    engine: Engine, failing: Callable[[Exception], TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        api = failing(_bug_of(engine)).get("/api/v1/customers", headers=KEY)
        page = failing(_bug_of(engine)).get("/updates/confirm/x")

    assert (api.status_code, page.status_code) == (500, 500)
    assert "Retry-After" not in api.headers
    assert "unexpected error" in api.json()["detail"]
    assert "Something went wrong" in page.text
    logged = [record.getMessage() for record in caplog.records]
    assert "unhandled error on GET /api/v1/customers" in logged
    assert "unhandled error on GET /updates/confirm/x" in logged


def test_a_lock_waited_for_past_its_time_is_still_a_503_with_retry_after(
    engine: Engine, failing: Callable[[Exception], TestClient], tmp_path: Path
) -> None:
    with _locked(engine, tmp_path) as locked_error:
        browser = failing(locked_error())
    answer = browser.get("/api/v1/customers", headers=KEY)

    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "10"
