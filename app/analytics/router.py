"""The public side of campaign analytics: dynamic campaign codes, /c/{slug}.

The redirect is the busiest path we serve and does little work of its own, so it is a plain
Starlette route: FastAPI's per-request dependency solving and validation would cost more than
the routing itself. Its two collaborators, the scan log and the session, are still looked up
through ``app.dependency_overrides`` so tests replace them as for any route.
"""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.analytics import codes
from app.config import get_settings
from app.db import get_engine
from app.observability import LabelledRoute
from app.requestguard import is_head
from app.tracking.dependencies import counting_misses, get_scan_log, visit_of
from app.tracking.ratelimit import MissLimiter
from app.tracking.scanlog import ScanLog, ScanNotRecorded
from app.web import overridable

SessionScope = Callable[[], AbstractContextManager[Session]]


@contextmanager
def _new_session() -> Iterator[Session]:
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session


def session_scope() -> SessionScope:
    """How the redirect opens a session (inside its worker thread, when it needs one)."""
    return _new_session


def _scan_log(request: Request) -> ScanLog:
    scan_log: ScanLog = overridable(request, get_scan_log, request.app.state.scan_log)
    return scan_log


def _session_scope(request: Request) -> SessionScope:
    return overridable(request, session_scope, _new_session)


async def _record(scan_log: ScanLog, redirect: codes.Redirect) -> None:
    """Wait for the scan's commit (or its place in the spool, or in memory while neither can
    take it) without holding a thread."""
    try:
        await scan_log.record(redirect.scan, hold=True)
    except (ScanNotRecorded, SQLAlchemyError):
        # The visitor still gets where the code leads; a lost campaign scan costs a count,
        # a failed redirect costs the customer.
        codes.log.warning(
            "campaign scan for placement %s not recorded", redirect.scan.get("placement_id")
        )


async def follow_code(request: Request) -> Response:
    """Send the visitor where the code's routing rules say, with UTM parameters added.

    Routing runs on the event loop from memory; only loading rules or the day's visitor key
    (a worker thread) and the scan's commit (awaited) wait for the database.
    """
    settings = get_settings()
    limiter: MissLimiter = request.app.state.miss_limiter
    table: codes.RoutingTable = request.app.state.routing_table
    slug = str(request.path_params["slug"])[:40]
    accept_language = request.headers.get("accept-language", "")[:500]
    visit = visit_of(request, settings)
    scan_log, open_session = _scan_log(request), _session_scope(request)

    def load_and_plan() -> codes.Redirect:
        with open_session() as session:
            return codes.redirect_with_database(
                session, table, slug, visit, accept_language, settings
            )

    with counting_misses(request, limiter, settings):
        redirect = codes.redirect_from_memory(table, slug, visit, accept_language, settings)
        if redirect is None:
            redirect = await run_in_threadpool(load_and_plan)
    if not is_head(request):  # a HEAD (a link checker, a preview) is nobody scanning
        await _record(scan_log, redirect)
    # Each scan must reach us: the destination depends on who scans, when and where.
    return Response(status_code=302, headers=_redirect_headers(redirect.url))


@lru_cache(maxsize=4096)
def _redirect_headers(url: str) -> dict[str, str]:
    """What RedirectResponse sets, its quoting of the URL included, once per destination (a
    code has few): quoting it anew cost every redirect a few microseconds."""
    location = quote(url, safe=":/%#?=@[]!$&'()*+,;")
    return {"location": location, "cache-control": "no-store"}


def routes() -> list[Any]:
    return [LabelledRoute("/c/{slug}", follow_code, methods=["GET"], name="analytics:code")]
