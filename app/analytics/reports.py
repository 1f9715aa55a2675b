"""The dashboard's aggregates as JSON under /api/v1/analytics, each also as CSV
(``?format=csv``), and the raw events as CSV (built by app.analytics.exports)."""

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from app.analytics import exports
from app.analytics.attribution import (
    AttributionRow,
    Breakdown,
    BreakdownRow,
    DayRow,
    Dimension,
    Funnel,
    Model,
    Period,
)
from app.analytics.exports import Format
from app.auth.dependencies import require_api_key
from app.config import SettingsDep
from app.db import SessionDep
from app.openapi import error_responses, single_query_values

# With ?format=csv a report answers CSV instead of JSON; the schema says so.
CSV_TOO: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}
CSV_ONLY: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV"}
}

router = APIRouter(
    prefix="/api/v1/analytics",
    tags=["analytics"],
    dependencies=[Depends(require_api_key), Depends(single_query_values)],
    responses=error_responses(400, 401, 413),
)


def get_period(
    settings: SettingsDep,
    from_: Annotated[date | None, Query(alias="from", description="First local day")] = None,
    to: Annotated[date | None, Query(description="Last local day, included")] = None,
) -> Period:
    """The date range: local days in the configured zone; the last 30 days by default."""
    return exports.get_period(settings, from_, to)


PeriodDep = Annotated[Period, Depends(get_period)]
FormatQuery = Annotated[Format, Query(alias="format")]


@router.get(
    "/scans-per-day", name="analytics:scans_per_day", response_model=list[DayRow], responses=CSV_TOO
)
def scans_per_day(session: SessionDep, period: PeriodDep, format_: FormatQuery = "json") -> Any:
    """Scans and unique visitors per local day (bots excluded)."""
    return exports.scans_per_day(session, period, format_)


@router.get(
    "/breakdown", name="analytics:breakdown", response_model=list[BreakdownRow], responses=CSV_TOO
)
def breakdown(
    session: SessionDep,
    period: PeriodDep,
    by: Annotated[Breakdown, Query()],
    format_: FormatQuery = "json",
) -> Any:
    """Scans and unique visitors by channel, device, campaign, placement or creative."""
    return exports.breakdown(session, period, by, format_)


@router.get("/funnel", name="analytics:funnel", response_model=Funnel, responses=CSV_TOO)
def funnel(session: SessionDep, period: PeriodDep, format_: FormatQuery = "json") -> Any:
    """Offers issued in the range, and how many were then scanned, accepted and ordered."""
    return exports.funnel(session, period, format_)


@router.get(
    "/attribution",
    name="analytics:attribution",
    response_model=list[AttributionRow],
    responses=CSV_TOO,
)
def attribution_report(
    session: SessionDep,
    period: PeriodDep,
    by: Annotated[Dimension, Query()],
    model: Annotated[Model, Query()] = "last_touch",
    format_: FormatQuery = "json",
) -> Any:
    """Per campaign, placement or creative: scans, unique visitors, conversions (credited to
    the first or last touch), conversion rate, revenue per currency, time to convert, and a
    Bayesian estimate of the rate (Beta posterior mean, 90% interval, probability best)."""
    return exports.attribution_report(session, period, by, model, format_)


@router.get("/time-to-convert", name="analytics:time_to_convert", responses=CSV_TOO)
def time_to_convert(session: SessionDep, period: PeriodDep, format_: FormatQuery = "json") -> Any:
    """Conversions in the range by time from their first scan."""
    return exports.time_to_convert(session, period, format_)


@router.get(
    "/export/{kind}.csv", name="analytics:export", response_class=Response, responses=CSV_ONLY
)
def export_events(
    session: SessionDep, period: PeriodDep, kind: Literal["scans", "conversions"]
) -> Response:
    """Every scan event (bots flagged) or conversion in the range, as CSV."""
    return exports.export_events(session, period, kind)
