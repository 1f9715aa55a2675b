"""The dashboard's reports: each aggregate as rows (JSON for the API) or as a CSV download,
and the raw events as CSV. Shared by the API (app.analytics.reports) and the staff site's
downloads; no route lives here."""

import io
import tempfile
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict
from datetime import date, timedelta
from typing import Any, Literal

from fastapi.responses import StreamingResponse
from sqlmodel import Session
from starlette.responses import Response

from app import csvsafe
from app.analytics import attribution
from app.analytics.attribution import (
    AttributionRow,
    Breakdown,
    Dimension,
    Model,
    Period,
)
from app.config import Settings
from app.errors import Unprocessable
from app.formats import DecimalMark
from app.offers import service as offers_service

MAX_DAYS = 366
DEFAULT_DAYS = 30
Format = Literal["json", "csv"]
# A CSV ``mark``: a staff user's decimal mark, their download laid out for their spreadsheet;
# None: for a program (the API).


def get_period(settings: Settings, from_: date | None = None, to: date | None = None) -> Period:
    """The date range: local days in the configured zone; the last 30 days by default."""
    end = to or offers_service.today(settings)
    start = from_ or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise Unprocessable("The start must not be after the end.", loc=("query", "from"))
    if (end - start).days >= MAX_DAYS:
        raise Unprocessable(f"A range spans at most {MAX_DAYS} days.", loc=("query", "to"))
    if start.year < 2000 or end.year > 2999:
        raise Unprocessable("Dates must lie between 2000 and 2999.", loc=("query", "from"))
    return Period(start, end, settings.zone)


def _csv(
    period: Period,
    what: str,
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    times: Collection[str] = (),
    mark: DecimalMark | None = None,
) -> Response:
    """``rows`` as a CSV download, its times (the columns named in ``times``) local to the
    period's zone, the zone named in their header."""
    # Spooled: small exports stay in memory, a million events go to a temporary file.
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024, mode="w+b")  # noqa: SIM115
    text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
    writer = csvsafe.SafeWriter(text, period.zone, mark)
    writer.writeheader(header, times)
    writer.writerows(rows)
    text.flush()
    spool.seek(0)
    text.detach()

    def chunks() -> Iterable[bytes]:
        with spool:
            while chunk := spool.read(64 * 1024):
                yield chunk

    headers = {
        "Content-Disposition": f'attachment; filename="{_name(period, what)}"',
        "Cache-Control": "no-store",  # customer data: never kept in a cache
    }
    return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8", headers=headers)


def _name(period: Period, what: str) -> str:
    return f"{what}_{period.start.isoformat()}_{period.end.isoformat()}.csv"


def scans_per_day(
    session: Session, period: Period, format_: Format = "json", *, mark: DecimalMark | None = None
) -> Any:
    """Scans and unique visitors per local day (bots excluded)."""
    rows = attribution.scans_per_day(session, period)
    if format_ == "csv":
        return _csv(
            period,
            "scans_per_day",
            ("day", "scans", "unique_visitors"),
            ((r.day.isoformat(), r.scans, r.visitors) for r in rows),
            mark=mark,
        )
    return rows


def breakdown(
    session: Session,
    period: Period,
    by: Breakdown,
    format_: Format = "json",
    *,
    mark: DecimalMark | None = None,
) -> Any:
    """Scans and unique visitors by channel, device, campaign, placement or creative."""
    rows = attribution.scan_breakdown(session, period, by)
    if format_ == "csv":
        return _csv(
            period,
            f"scans_by_{by}",
            (by, "label", "scans", "unique_visitors"),
            ((r.key, r.label, r.scans, r.visitors) for r in rows),
            mark=mark,
        )
    return rows


def funnel(
    session: Session, period: Period, format_: Format = "json", *, mark: DecimalMark | None = None
) -> Any:
    """Offers issued in the range, and how many were then scanned, accepted and ordered."""
    result = attribution.funnel(session, period)
    if format_ == "csv":
        return _csv(period, "funnel", ("step", "offers"), asdict(result).items(), mark=mark)
    return result


ATTRIBUTION_CSV = (
    "id",
    "label",
    "scans",
    "unique_visitors",
    "conversions",
    "conversion_rate",
    "revenue",
    "mean_seconds_to_convert",
    "median_seconds_to_convert",
    "posterior_mean",
    "interval_90_low",
    "interval_90_high",
    "probability_best",
)


def _attribution_csv_row(row: AttributionRow, mark: DecimalMark) -> tuple[Any, ...]:
    revenue = "; ".join(
        f"{cur} {csvsafe.number_text(amount, mark)}" for cur, amount in sorted(row.revenue.items())
    )
    return (
        row.id,
        row.label,
        row.scans,
        row.visitors,
        row.conversions,
        row.conversion_rate,
        revenue,
        row.mean_seconds_to_convert,
        row.median_seconds_to_convert,
        _rounded(row.posterior_mean, 6),
        _rounded(row.interval_low, 6),
        _rounded(row.interval_high, 6),
        _rounded(row.probability_best, 4),
    )


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def attribution_report(
    session: Session,
    period: Period,
    by: Dimension,
    model: Model = "last_touch",
    format_: Format = "json",
    *,
    mark: DecimalMark | None = None,
) -> Any:
    """Per campaign, placement or creative: scans, unique visitors, conversions (credited to
    the first or last touch), conversion rate, revenue per currency, time to convert, and a
    Bayesian estimate of the rate (Beta posterior mean, 90% interval, probability best)."""
    rows = attribution.attribution(session, period, by, model)
    if format_ == "csv":
        return _csv(
            period,
            f"attribution_{by}_{model}",
            ATTRIBUTION_CSV,
            (_attribution_csv_row(r, mark or DecimalMark.POINT) for r in rows),
            mark=mark,
        )
    return rows


def time_to_convert(
    session: Session, period: Period, format_: Format = "json", *, mark: DecimalMark | None = None
) -> Any:
    """Conversions in the range by time from their first scan."""
    buckets = attribution.time_to_convert(session, period)
    if format_ == "csv":
        header = ("time_from_first_scan", "conversions")
        return _csv(period, "time_to_convert", header, buckets, mark=mark)
    return [{"bucket": label, "conversions": count} for label, count in buckets]


def export_events(
    session: Session,
    period: Period,
    kind: Literal["scans", "conversions"],
    *,
    mark: DecimalMark | None = None,
) -> Response:
    """Every scan event (bots flagged) or conversion in the range, as CSV."""
    columns = attribution.EXPORT_COLUMNS[kind]
    rows = attribution.export_events(session, period, kind)
    return _csv(period, kind, columns, rows, event_time_columns(kind), mark)


def event_time_columns(kind: Literal["scans", "conversions"]) -> set[str]:
    """The columns of an event export that hold times."""
    table = attribution.scans if kind == "scans" else attribution.conversions
    return {name for name in attribution.EXPORT_COLUMNS[kind] if csvsafe.is_time(table[name].type)}
