"""The public side of campaign analytics: dynamic campaign codes, /c/{slug}."""

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import RedirectResponse

from app.analytics import codes
from app.config import SettingsDep
from app.db import SessionDep
from app.tracking.router import LimiterDep, ScanLogDep, counting_misses, visit_of

router = APIRouter(tags=["campaign codes"], include_in_schema=False)


@router.get("/c/{slug}", name="analytics:code")
def follow_code(
    request: Request,
    slug: str,
    session: SessionDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    scan_log: ScanLogDep,
    accept_language: Annotated[str, Header(max_length=500)] = "",
) -> Response:
    """Send the visitor where the code's routing rules say, with UTM parameters added."""
    with counting_misses(request, limiter, settings):
        url = codes.follow_code(
            session,
            slug[:40],
            visit_of(request, settings),
            accept_language,
            scan_log=scan_log,
            settings=settings,
        )
    # Each scan must reach us: the destination depends on who scans, when and where.
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
