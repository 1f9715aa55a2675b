"""The campaign dashboard of the staff site (/admin/analytics/): figures for a date range,
their htmx panel, and their CSV downloads (built by app.analytics.exports, as the API's are)."""

from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, Query, Request
from sqlmodel import Session
from starlette.responses import Response

from app.admin import access
from app.admin.access import StaffDep, require_role
from app.admin.layout import render_staff_page, render_staff_partial
from app.admin.views import in_session
from app.analytics import attribution, charts, exports
from app.analytics.attribution import Funnel, Period
from app.auth.staff import Role
from app.config import Settings, SettingsDep
from app.db import read_only
from app.errors import NotFound, Unprocessable
from app.formats import DecimalMark
from app.templating import is_htmx

router = APIRouter(
    prefix="/analytics",
    include_in_schema=False,
    dependencies=[Depends(require_role(Role.VIEWER))],
)


DIMENSIONS: tuple[attribution.Dimension, ...] = ("campaign", "creative", "placement")
MODELS: tuple[attribution.Model, ...] = ("first_touch", "last_touch")
BREAKDOWNS: tuple[attribution.Breakdown, ...] = ("channel", "device", "placement", "creative")
# The CSV downloads are the API's files: every breakdown it makes, not only the panels shown.
CSV_BREAKDOWNS: tuple[attribution.Breakdown, ...] = get_args(attribution.Breakdown)
CsvTable = Literal[
    "scans_per_day", "breakdown", "funnel", "attribution", "time_to_convert", "scans", "conversions"
]
# What a CSV link without ``by`` gets: the first panel of its kind on the dashboard.
DEFAULT_BY = {"breakdown": BREAKDOWNS[0], "attribution": DIMENSIONS[0]}


@dataclass(frozen=True)
class Dashboard:
    period: Period
    days: list[attribution.DayRow]
    breakdowns: dict[str, list[attribution.BreakdownRow]]
    funnel: Funnel
    attribution: dict[tuple[str, str], list[attribution.AttributionRow]]
    time_to_convert: list[tuple[str, int]]


def _dashboard(session: Session, period: Period) -> Dashboard:
    with read_only(session):
        return Dashboard(
            period=period,
            days=attribution.scans_per_day(session, period),
            breakdowns={by: attribution.scan_breakdown(session, period, by) for by in BREAKDOWNS},
            funnel=attribution.funnel(session, period),
            attribution={
                (by, model): attribution.attribution(session, period, by, model)
                for by in DIMENSIONS
                for model in MODELS
            },
            time_to_convert=attribution.time_to_convert(session, period),
        )


def _period(settings: Settings, start: str, end: str) -> tuple[Period, dict[str, str]]:
    """The range asked for, or the default range with an error naming the field."""
    try:
        return exports.get_period(settings, _date(start, "from"), _date(end, "to")), {}
    except Unprocessable as exc:
        field = str(exc.loc[-1]) if exc.loc else "from"
        return exports.get_period(settings), {field: exc.detail}


def _date(text: str, field: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise Unprocessable("Enter a date as YYYY-MM-DD.", loc=("query", field)) from None


def _charts(d: Dashboard, mark: DecimalMark) -> dict[str, Any]:
    s = charts.Series
    # Every figure with the user's decimal mark, as the tables beside the charts.
    bars, daily = partial(charts.bars, mark=mark), partial(charts.daily, mark=mark)
    intervals = partial(charts.intervals, mark=mark)
    out: dict[str, Any] = {
        "daily": daily(
            "chart-daily",
            "Scans and unique visitors per day",
            [r.day for r in d.days],
            [
                s("Scans", [r.scans for r in d.days]),
                s("Unique visitors", [r.visitors for r in d.days]),
            ],
        ),
        "funnel": bars(
            "chart-funnel",
            "Funnel: offers issued, scanned, accepted, ordered",
            ["Issued", "Scanned", "Accepted", "Ordered"],
            [s("Offers", [d.funnel.issued, d.funnel.scanned, d.funnel.accepted, d.funnel.ordered])],
        ),
        "time_to_convert": bars(
            "chart-ttc",
            "Conversions by time from first scan",
            [label for label, _ in d.time_to_convert],
            [s("Conversions", [n for _, n in d.time_to_convert])],
        ),
    }
    for by, rows in d.breakdowns.items():
        out[f"by_{by}"] = bars(
            f"chart-by-{by}",
            f"Scans by {by}",
            [r.label for r in rows],
            [s("Scans", [r.scans for r in rows]), s("Unique visitors", [r.visitors for r in rows])],
        )
    for (by, model), ranked in d.attribution.items():
        if model != "last_touch":
            continue
        rated = [r for r in ranked if r.conversion_rate is not None]  # rows with visitors
        out[f"rate_{by}"] = bars(
            f"chart-rate-{by}",
            f"Conversion rate by {by} (last touch)",
            [r.label for r in rated],
            [s("Conversion rate", [round((r.conversion_rate or 0) * 100, 1) for r in rated])],
            unit="%",
            zero_is_data=True,
        )
        out[f"estimate_{by}"] = intervals(
            f"chart-estimate-{by}",
            f"Estimated conversion rate by {by}: posterior mean and 90% interval",
            [
                charts.Estimate(
                    r.label,
                    r.posterior_mean,
                    r.interval_low,
                    r.interval_high,
                    r.probability_best,
                )
                for r in ranked
                if r.posterior_mean is not None
                and r.interval_low is not None
                and r.interval_high is not None
            ],
        )
    return out


async def _dashboard_context(request: Request, settings: Settings) -> dict[str, Any]:
    query = request.query_params
    period, errors = _period(settings, query.get("from", ""), query.get("to", ""))
    data = await in_session(lambda s: _dashboard(s, period))
    return {
        "title": "Campaign dashboard",
        "d": data,
        "charts": _charts(data, access.decimal_mark(request)),
        "errors": errors,
        "form": {"from": query.get("from", ""), "to": query.get("to", "")},
        "range": {"from": period.start.isoformat(), "to": period.end.isoformat()},
    }


@router.get("/", name="analytics:dashboard")
async def dashboard(request: Request, settings: SettingsDep, staff: StaffDep) -> Response:
    """The dashboard; htmx asking (HX-Request) gets only its panels, for the range chosen."""
    context = await _dashboard_context(request, settings)
    # htmx restoring a page from history (its cache missed) wants the whole page.
    if is_htmx(request) and "HX-History-Restore-Request" not in request.headers:
        return _panels(request, context)
    status = 422 if context["errors"] else 200
    response = await render_staff_page(request, "analytics/dashboard.html", context, status)
    response.headers["Vary"] = "HX-Request"
    return response


@router.get("/panels", name="analytics:panels")
async def panels(request: Request, settings: SettingsDep, staff: StaffDep) -> Response:
    """The dashboard's figures alone, for a link or script that wants only them."""
    return _panels(request, await _dashboard_context(request, settings))


def _panels(request: Request, context: dict[str, Any]) -> Response:
    # 200 even for a bad range (htmx swaps only successes): the panel says what was wrong and
    # shows the default range. The address bar follows, so a reload or a link shows the same.
    figures = {name: context[name] for name in ("d", "charts", "errors")}
    response = render_staff_partial(request, "analytics/_panels.html", **figures)
    if not context["errors"]:
        shown = request.url_for("analytics:dashboard").include_query_params(**context["range"])
        response.headers["HX-Push-Url"] = shown.path + "?" + shown.query
    return response


@router.get("/csv/{table}", name="analytics:csv")
async def csv_export(
    table: str,
    settings: SettingsDep,
    staff: StaffDep,
    from_: Annotated[str, Query(alias="from", max_length=40)] = "",
    to: Annotated[str, Query(max_length=40)] = "",
    by: Annotated[str, Query(max_length=20)] = "",
    model: Annotated[str, Query(max_length=20)] = "last_touch",
) -> Response:
    """The same CSV as the API's ``format=csv``, for a signed-in staff user (no API key). The
    dashboard's links name every choice; a link without ``by`` gets the dashboard's first
    panel of its kind, and one edited into nonsense a page that says what to choose."""
    if table not in get_args(CsvTable):
        raise NotFound("There is no such CSV download; the dashboard links to each one.")
    period = _csv_period(settings, from_, to)
    by = by or DEFAULT_BY.get(table, "")
    mark = staff.decimal_mark

    def export(session: Session) -> Any:  # the report functions answer Any (JSON or CSV)
        match table:
            case "scans_per_day":
                return exports.scans_per_day(session, period, "csv", mark=mark)
            case "breakdown":
                return exports.breakdown(session, period, _breakdown(by), "csv", mark=mark)
            case "funnel":
                return exports.funnel(session, period, "csv", mark=mark)
            case "attribution":
                chosen = _dimension(by), _model(model)
                return exports.attribution_report(session, period, *chosen, "csv", mark=mark)
            case "time_to_convert":
                return exports.time_to_convert(session, period, "csv", mark=mark)
            case "scans" | "conversions":
                return exports.export_events(session, period, table, mark=mark)

    response: Response = await in_session(export)
    return response


class CsvRefused(Unprocessable):
    """A CSV link that asks for something we do not make, explained to the staff user."""

    title = "This CSV cannot be made"


def _csv_period(settings: Settings, start: str, end: str) -> Period:
    # A download of another range than the one asked for would pass unnoticed: refuse instead
    # of falling back to the default range as the dashboard's panels do.
    period, errors = _period(settings, start, end)
    if errors:
        labels = {"from": "From", "to": "To"}
        raise CsvRefused(" ".join(f"{labels[f]}: {m}" for f, m in sorted(errors.items())))
    return period


def _breakdown(by: str) -> attribution.Breakdown:
    if by not in CSV_BREAKDOWNS:
        raise CsvRefused(
            f"Scans can be broken down by {_either(CSV_BREAKDOWNS)} (by= in the link)."
        )
    return by


def _dimension(by: str) -> attribution.Dimension:
    if by not in DIMENSIONS:
        raise CsvRefused(
            f"Conversions can be attributed by {_either(DIMENSIONS)} (by= in the link)."
        )
    return by


def _model(model: str) -> attribution.Model:
    if model not in MODELS:
        raise CsvRefused(f"The attribution model is {_either(MODELS)} (model= in the link).")
    return model


def _either(choices: tuple[str, ...]) -> str:
    return f"{', '.join(choices[:-1])} or {choices[-1]}"
