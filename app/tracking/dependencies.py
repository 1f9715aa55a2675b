"""Route helpers of the tracking package, shared by its pages and the campaign redirect
(analytics), which never import another package's router."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.tracking import service
from app.tracking.codes import InvalidCode
from app.tracking.ratelimit import MissLimiter
from app.tracking.scanlog import ScanLog
from app.tracking.scans import Visit
from app.web import client_address, client_key


async def get_miss_limiter(request: Request) -> MissLimiter:
    limiter: MissLimiter = request.app.state.miss_limiter
    return limiter


LimiterDep = Annotated[MissLimiter, Depends(get_miss_limiter)]


async def get_scan_log(request: Request) -> ScanLog:
    scan_log: ScanLog = request.app.state.scan_log
    return scan_log


@contextmanager
def counting_misses(request: Request, limiter: MissLimiter, settings: Settings) -> Iterator[None]:
    """Count a failed lookup against the client; past the limit it becomes a 429."""
    try:
        yield
    except (InvalidCode, service.CodeNotFound):
        client = client_key(request, settings)
        limiter.check(client)
        limiter.record_miss(client)
        raise


def visit_of(request: Request, settings: Settings) -> Visit:
    headers = request.headers
    return Visit(
        client_ip=client_address(request, settings),
        user_agent=headers.get("user-agent", ""),
        referrer=headers.get("referer", ""),
        do_not_track=headers.get("dnt") == "1" or headers.get("sec-gpc") == "1",
        # Parsing the query string costs more than all of the rest: most views have none.
        marker=request.query_params.get("src", "") if request.scope["query_string"] else "",
    )
