"""Probes for the orchestrator and the load balancer, and the Prometheus scrape endpoint.

``/healthz``: the process answers (liveness; never touches the database, so a database outage
does not get healthy workers restarted). ``/readyz``: the database answers, its schema is
at the migrations' head and scan events are being committed (readiness; 503 otherwise,
within ``readiness_timeout_seconds``).
"""

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.pool import NullPool

from app.config import Settings
from app.db import READ_ONLY, make_engine
from app.metrics import exposition
from app.migrations import alembic_config

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Readiness:
    ready: bool
    detail: str


def migration_heads() -> frozenset[str]:
    from alembic.script import ScriptDirectory  # when first needed: it slows every start

    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def _probe_engine(settings: Settings) -> Engine:
    # A connection of its own per probe (NullPool): a probe never waits behind page views for
    # a pooled connection, and a dead server is noticed at once rather than at the next use.
    if settings.is_sqlite:
        return make_engine(settings.database_url, poolclass=NullPool)
    seconds = max(1, round(settings.readiness_timeout_seconds))
    options = f"-c statement_timeout={seconds * 1000}"
    connect_args = {"connect_timeout": seconds, "options": options}
    return make_engine(settings.database_url, poolclass=NullPool, connect_args=connect_args)


class ReadinessCheck:
    """At most one probe at a time: a hung database must not pile up probe threads."""

    def __init__(
        self, settings: Settings, write_problem: Callable[[], str | None] = lambda: None
    ) -> None:
        self.timeout = settings.readiness_timeout_seconds
        self._write_problem = write_problem
        self._engine = _probe_engine(settings)
        # Read beside the server's start, not in its way (importing Alembic takes a while).
        self._heads: frozenset[str] | None = None
        threading.Thread(target=self._expected_heads, name="migration-heads", daemon=True).start()
        self._running: asyncio.Future[Readiness] | None = None

    async def check(self) -> Readiness:
        # Reads can succeed while writes fail (a full disk, a table locked for long): the
        # scan writer's recent commits tell.
        if (problem := self._write_problem()) is not None:
            return Readiness(False, problem)
        if self._running is not None and not self._running.done():
            return Readiness(False, "the previous readiness probe has not finished yet")
        self._running = asyncio.ensure_future(asyncio.to_thread(self._probe))
        try:
            return await asyncio.wait_for(asyncio.shield(self._running), self.timeout)
        except TimeoutError:
            return Readiness(False, f"the database did not answer within {self.timeout:g} s")

    def probe(self) -> Readiness:
        """One probe, here and now, without a deadline (``offertrack check-config``)."""
        return self._probe()

    def _probe(self) -> Readiness:
        try:
            with self._engine.connect() as connection:
                connection = connection.execution_options(**{READ_ONLY: True})
                versions = _schema_versions(connection)
        except Exception as exc:
            log.warning("readiness probe failed: %s", exc)
            return Readiness(False, f"the database is not reachable ({type(exc).__name__})")
        heads = self._expected_heads()
        if versions != heads:
            return Readiness(
                False,
                f"the database schema is at {', '.join(sorted(versions)) or 'no revision'}, "
                f"the code expects {', '.join(sorted(heads))}: run `offertrack migrate`",
            )
        return Readiness(True, "ok")

    def _expected_heads(self) -> frozenset[str]:
        if self._heads is None:
            self._heads = migration_heads()
        return self._heads

    def close(self) -> None:
        self._engine.dispose()


def schema_revisions(settings: Settings) -> frozenset[str] | None:
    """The revisions the database is at (none: it was never migrated), or None when it does
    not answer: `serve` starts then, and answers 503 until it does."""
    if settings.is_sqlite and not _sqlite_file_exists(settings.database_url):
        return frozenset()  # connecting would make an empty file (or fail: no directory)
    engine = _probe_engine(settings)
    try:
        with engine.connect() as connection:
            return _schema_versions(connection.execution_options(**{READ_ONLY: True}))
    except Exception as exc:
        log.debug("schema revisions not read: %s", exc)
        return None
    finally:
        engine.dispose()


def _sqlite_file_exists(database_url: str) -> bool:
    from sqlalchemy.engine import make_url

    database = make_url(database_url).database
    return not database or database == ":memory:" or Path(database).exists()


def _schema_versions(connection: Connection) -> frozenset[str]:
    """The revisions the database is at; none when it was never migrated."""
    connection.execute(text("SELECT 1"))  # unreachable: raises here
    try:
        rows = connection.execute(text("SELECT version_num FROM alembic_version"))
    except ProgrammingError:  # PostgreSQL: no such table
        return frozenset()
    except OperationalError as exc:  # SQLite says "no such table" this way
        if "no such table" not in str(exc):
            raise
        return frozenset()
    return frozenset(rows.scalars())


@router.get("/healthz", name="ops:healthz")
async def healthz() -> Response:
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


@router.get("/readyz", name="ops:readyz")
async def readyz(request: Request) -> Response:
    check: ReadinessCheck = request.app.state.readiness
    result = await check.check()
    body = {"status": "ok" if result.ready else "unavailable", "detail": result.detail}
    headers = {"Cache-Control": "no-store"}
    if not result.ready:
        headers["Retry-After"] = "5"
    return JSONResponse(body, status_code=200 if result.ready else 503, headers=headers)


@router.get("/metrics", name="ops:metrics")
async def metrics() -> Response:
    content, media_type = exposition()
    return Response(content, media_type=media_type, headers={"Cache-Control": "no-store"})
