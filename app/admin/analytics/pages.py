"""The analytics pages of the staff site (/admin/analytics): the campaign dashboard, campaigns,
creatives, placements with their routing rules and QR artwork, and webhook endpoints.

Figures come from app.analytics.attribution and CSV downloads from the API's own exports
(app.analytics.reports), so the page, the API and the CSV always agree. Viewers read; sales and
admins change campaigns; webhooks are for admins only. Every change is a POST (the staff site's
CSRF middleware has checked it) and is written to the audit log in the same transaction.
"""

import json
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ValidationError
from sqladmin.flash import Flash
from sqlmodel import Session
from starlette.datastructures import FormData
from starlette.responses import Response

from app.admin.access import AdminDep, SalesDep, StaffDep, require_role
from app.admin.layout import MenuLink, StaffPages, render_staff_page
from app.admin.views import in_session
from app.analytics import artwork, attribution, campaigns, charts, exports, webhooks
from app.analytics.attribution import Funnel, Period
from app.analytics.models import Campaign, Placement, WebhookEndpoint
from app.analytics.schemas import (
    CampaignCreate,
    CampaignUpdate,
    CreativeCreate,
    DeliveryRead,
    PlacementCreate,
    PlacementUpdate,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
)
from app.auth.staff import Role
from app.config import Settings, SettingsDep, get_settings
from app.db import read_only
from app.errors import AppError, Unprocessable
from app.openapi import PathId

router = APIRouter(
    prefix="/analytics",
    include_in_schema=False,
    dependencies=[Depends(require_role(Role.VIEWER))],
)
DIMENSIONS: tuple[attribution.Dimension, ...] = ("campaign", "creative", "placement")
MODELS: tuple[attribution.Model, ...] = ("first_touch", "last_touch")
BREAKDOWNS: tuple[attribution.Breakdown, ...] = ("channel", "device", "placement", "creative")
CsvTable = Literal[
    "scans_per_day", "breakdown", "funnel", "attribution", "time_to_convert", "scans", "conversions"
]
Errors = dict[str, str]
M = TypeVar("M", bound=BaseModel)


# --- the dashboard -----------------------------------------------------------------------


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


def _period(settings: Settings, start: str, end: str) -> tuple[Period, Errors]:
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


def _charts(d: Dashboard) -> dict[str, Any]:
    s = charts.Series
    out: dict[str, Any] = {
        "daily": charts.daily(
            "chart-daily",
            "Scans and unique visitors per day",
            [r.day for r in d.days],
            [
                s("Scans", [r.scans for r in d.days]),
                s("Unique visitors", [r.visitors for r in d.days]),
            ],
        ),
        "funnel": charts.bars(
            "chart-funnel",
            "Funnel: offers issued, scanned, accepted, ordered",
            ["Issued", "Scanned", "Accepted", "Ordered"],
            [s("Offers", [d.funnel.issued, d.funnel.scanned, d.funnel.accepted, d.funnel.ordered])],
        ),
        "time_to_convert": charts.bars(
            "chart-ttc",
            "Conversions by time from first scan",
            [label for label, _ in d.time_to_convert],
            [s("Conversions", [n for _, n in d.time_to_convert])],
        ),
    }
    for by, rows in d.breakdowns.items():
        out[f"by_{by}"] = charts.bars(
            f"chart-by-{by}",
            f"Scans by {by}",
            [r.label for r in rows],
            [s("Scans", [r.scans for r in rows]), s("Unique visitors", [r.visitors for r in rows])],
        )
    for (by, model), ranked in d.attribution.items():
        if model != "last_touch":
            continue
        out[f"rate_{by}"] = charts.bars(
            f"chart-rate-{by}",
            f"Conversion rate by {by} (last touch)",
            [r.label for r in ranked],
            [s("Conversion rate", [round((r.conversion_rate or 0) * 100, 1) for r in ranked])],
            unit="%",
        )
        out[f"estimate_{by}"] = charts.intervals(
            f"chart-estimate-{by}",
            f"Estimated conversion rate by {by}: posterior mean and 90% interval",
            [
                charts.Estimate(
                    r.label, r.posterior_mean, r.interval_low, r.interval_high, r.probability_best
                )
                for r in ranked
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
        "charts": _charts(data),
        "errors": errors,
        "form": {"from": query.get("from", ""), "to": query.get("to", "")},
        "range": {"from": period.start.isoformat(), "to": period.end.isoformat()},
    }


@router.get("/", name="analytics:dashboard")
async def dashboard(request: Request, settings: SettingsDep, staff: StaffDep) -> Response:
    context = await _dashboard_context(request, settings)
    status = 422 if context["errors"] else 200
    return await render_staff_page(request, "analytics/dashboard.html", context, status)


@router.get("/panels", name="analytics:panels")
async def panels(request: Request, settings: SettingsDep, staff: StaffDep) -> Response:
    """The dashboard's figures alone: what htmx swaps in when the range changes."""
    context = await _dashboard_context(request, settings)
    # 200 even for a bad range (htmx swaps only successes): the panel says what was wrong and
    # shows the default range. The address bar follows, so a reload or a link shows the same.
    response = await render_staff_page(request, "analytics/_panels.html", context)
    if not context["errors"]:
        shown = request.url_for("analytics:dashboard").include_query_params(**context["range"])
        response.headers["HX-Push-Url"] = shown.path + "?" + shown.query
    return response


@router.get("/csv/{table}", name="analytics:csv")
async def csv_export(
    table: CsvTable,
    settings: SettingsDep,
    staff: StaffDep,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: Annotated[date | None, Query()] = None,
    by: Annotated[str, Query(max_length=20)] = "campaign",
    model: Annotated[attribution.Model, Query()] = "last_touch",
) -> Response:
    """The same CSV as the API's ``format=csv``, for a signed-in staff user (no API key)."""
    period = exports.get_period(settings, from_, to)

    def export(session: Session) -> Any:  # the report functions answer Any (JSON or CSV)
        match table:
            case "scans_per_day":
                return exports.scans_per_day(session, period, "csv")
            case "breakdown":
                return exports.breakdown(session, period, _one_of(by, BREAKDOWNS), "csv")
            case "funnel":
                return exports.funnel(session, period, "csv")
            case "attribution":
                dims = ("campaign", "placement", "creative")
                by_dim = _one_of(by, dims)
                return exports.attribution_report(session, period, by_dim, model, "csv")
            case "time_to_convert":
                return exports.time_to_convert(session, period, "csv")
            case "scans" | "conversions":
                return exports.export_events(session, period, table)

    response: Response = await in_session(export)
    return response


def _one_of(value: str, allowed: tuple[Any, ...]) -> Any:
    if value not in allowed:
        raise Unprocessable(f"by must be one of {', '.join(allowed)}.", loc=("query", "by"))
    return value


# --- audit and form helpers --------------------------------------------------------------


def _fields(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    return {name: str(form.get(name, "")).strip() for name in names}


def _validate(model: type[M], data: dict[str, Any]) -> tuple[M | None, Errors]:
    try:
        return model.model_validate(data), {}
    except ValidationError as error:
        found: dict[str, list[str]] = {}
        for e in error.errors():
            field, rest = (str(e["loc"][0]) if e["loc"] else "form"), list(e["loc"][1:])
            message = e["msg"].removeprefix("Value error, ")
            found.setdefault(field, []).append(f"{_where(rest)}{message}")
        return None, {field: "; ".join(messages) for field, messages in found.items()}


def _where(path: list[Any]) -> str:
    """Where in a nested field (a rule's JSON) an error is, counted from 1 as people do."""
    if not path:
        return ""
    head = f"Rule {path[0] + 1}" if isinstance(path[0], int) else str(path[0])
    tail = ".".join(str(p) for p in path[1:])
    return f"{head}{', ' + tail if tail else ''}: "


def _service_error(exc: AppError) -> Errors:
    if isinstance(exc, Unprocessable) and exc.loc:
        loc = [str(p) for p in exc.loc if p not in {"body", "query"}]
        return {loc[0] if loc else "form": exc.detail}
    return {"form": exc.detail}


def _present(values: dict[str, str]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v != ""}


# --- campaigns and creatives -------------------------------------------------------------

CAMPAIGN_FIELDS = ("name", "starts_on", "ends_on", "utm_source", "utm_medium", "utm_campaign")


def _campaign_list(session: Session) -> list[Campaign]:
    with read_only(session):
        return list(campaigns.list_campaigns(session))


@router.get("/campaigns", name="analytics:campaigns")
async def campaign_list(request: Request, staff: StaffDep) -> Response:
    rows = await in_session(_campaign_list)
    context = {"title": "Campaigns", "campaigns": rows, "form": {}, "errors": {}}
    return await render_staff_page(request, "analytics/campaigns.html", context)


@router.post("/campaigns", name="analytics:campaign_create")
async def campaign_create(request: Request, staff: SalesDep) -> Response:
    values = _fields(await request.form(), CAMPAIGN_FIELDS)
    data, errors = _validate(CampaignCreate, _present(values))
    if data is not None:
        try:
            campaign = await in_session(
                lambda s: campaigns.create_campaign(s, data, actor=staff.actor)
            )
        except AppError as exc:
            errors = _service_error(exc)
        else:
            Flash.success(request, f"Campaign “{campaign.name}” created.")
            return _to(request, "analytics:campaign", campaign_id=campaign.id)
    rows = await in_session(_campaign_list)
    context = {"title": "Campaigns", "campaigns": rows, "form": values, "errors": errors}
    return await render_staff_page(request, "analytics/campaigns.html", context, 422)


def _to(request: Request, name: str, **params: Any) -> RedirectResponse:
    return RedirectResponse(request.url_for(name, **params), 303)


@dataclass(frozen=True)
class CampaignPage:
    campaign: Campaign
    creatives: list[Any]
    placements: list[Placement]


def _campaign_page(session: Session, campaign_id: int) -> CampaignPage:
    with read_only(session):
        return CampaignPage(
            campaigns.get_campaign(session, campaign_id),
            list(campaigns.list_creatives(session, campaign_id)),
            list(campaigns.list_placements(session, campaign_id)),
        )


async def _render_campaign(
    request: Request, campaign_id: int, status: int = 200, **forms: Any
) -> Response:
    page = await in_session(lambda s: _campaign_page(s, campaign_id))
    c = page.campaign
    edit = {
        "name": c.name,
        "starts_on": c.starts_on.isoformat() if c.starts_on else "",
        "ends_on": c.ends_on.isoformat() if c.ends_on else "",
        "utm_source": c.utm_source,
        "utm_medium": c.utm_medium,
        "utm_campaign": c.utm_campaign,
    }
    context: dict[str, Any] = {
        "title": f"Campaign {c.name}",
        "page": page,
        "edit": edit,
        "edit_errors": {},
        "creative": {},
        "creative_errors": {},
        "placement": {},
        "placement_errors": {},
        "code_base": get_settings().public_base_url,
        **forms,
    }
    return await render_staff_page(request, "analytics/campaign.html", context, status)


@router.get("/campaigns/{campaign_id}", name="analytics:campaign")
async def campaign_detail(request: Request, campaign_id: PathId, staff: StaffDep) -> Response:
    return await _render_campaign(request, campaign_id)


@router.post("/campaigns/{campaign_id}", name="analytics:campaign_update")
async def campaign_update(request: Request, campaign_id: PathId, staff: SalesDep) -> Response:
    values = _fields(await request.form(), CAMPAIGN_FIELDS)
    # Empty dates clear them; empty names and UTM values are refused by the service.
    data, errors = _validate(CampaignUpdate, {k: (v or None) for k, v in values.items()})
    if data is not None:

        def work(s: Session) -> Campaign:
            return campaigns.update_campaign(s, campaign_id, data, actor=staff.actor)

        try:
            await in_session(work)
        except AppError as exc:
            errors = _service_error(exc)
        else:
            Flash.success(request, "Campaign saved; its codes use the new values at once.")
            return _to(request, "analytics:campaign", campaign_id=campaign_id)
    return await _render_campaign(request, campaign_id, 422, edit=values, edit_errors=errors)


@router.post("/campaigns/{campaign_id}/creatives", name="analytics:creative_create")
async def creative_create(request: Request, campaign_id: PathId, staff: SalesDep) -> Response:
    values = _fields(await request.form(), ("name", "utm_content"))
    data, errors = _validate(CreativeCreate, _present(values))
    if data is not None:

        def work(s: Session) -> Any:
            return campaigns.create_creative(s, campaign_id, data, actor=staff.actor)

        try:
            await in_session(work)
        except AppError as exc:
            errors = _service_error(exc)
        else:
            Flash.success(request, f"Creative “{data.name}” added.")
            return _to(request, "analytics:campaign", campaign_id=campaign_id)
    return await _render_campaign(
        request, campaign_id, 422, creative=values, creative_errors=errors
    )


# --- placements --------------------------------------------------------------------------

PLACEMENT_FIELDS = ("name", "slug", "fallback_url", "fallback_creative_id", "split_mode", "rules")


def _rules_json(text: str, errors: Errors) -> Any:
    if not text:
        return []
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        errors["rules"] = f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        return None


def _placement_data(values: dict[str, str], *, creating: bool) -> tuple[Any, Errors]:
    errors: Errors = {}
    rules = _rules_json(values["rules"], errors)
    data: dict[str, Any] = {k: v for k, v in values.items() if k != "rules"}
    if not creating:
        data.pop("slug", None)
    data["fallback_creative_id"] = data["fallback_creative_id"] or None
    if creating:
        data = {k: v for k, v in data.items() if v not in ("", None)}
    data["rules"] = rules if rules is not None else []
    model: type[BaseModel] = PlacementCreate if creating else PlacementUpdate
    parsed, more = _validate(model, data)
    errors = {**more, **errors}
    return (parsed if not errors else None), errors


@router.post("/campaigns/{campaign_id}/placements", name="analytics:placement_create")
async def placement_create(request: Request, campaign_id: PathId, staff: SalesDep) -> Response:
    values = _fields(await request.form(), PLACEMENT_FIELDS)
    data, errors = _placement_data(values, creating=True)
    if data is not None:

        def work(s: Session) -> Placement:
            return campaigns.create_placement(s, campaign_id, data, actor=staff.actor)

        try:
            placement = await in_session(work)
        except AppError as exc:
            errors = _service_error(exc)
        else:
            Flash.success(request, f"Placement “{placement.name}” created with its code.")
            return _to(request, "analytics:placement", placement_id=placement.id)
    return await _render_campaign(
        request, campaign_id, 422, placement=values, placement_errors=errors
    )


def _placement(session: Session, placement_id: int) -> tuple[Placement, Campaign, list[Any]]:
    with read_only(session):
        placement = campaigns.get_placement(session, placement_id)
        campaign = campaigns.get_campaign(session, placement.campaign_id)
        return placement, campaign, list(campaigns.list_creatives(session, campaign.id or 0))


async def _render_placement(
    request: Request, placement_id: int, status: int = 200, **extra: Any
) -> Response:
    placement, campaign, creatives = await in_session(lambda s: _placement(s, placement_id))
    form = {
        "name": placement.name,
        "fallback_url": placement.fallback_url,
        "fallback_creative_id": str(placement.fallback_creative_id or ""),
        "split_mode": str(placement.split_mode),
        "rules": json.dumps(placement.rules, indent=2, ensure_ascii=False),
    }
    path = request.app.state.root.url_path_for("analytics:code", slug=placement.slug)
    context: dict[str, Any] = {
        "title": f"Placement {placement.name}",
        "placement": placement,
        "campaign": campaign,
        "creatives": {c.id: c.name for c in creatives},
        "code_url": get_settings().public_base_url + path,
        "form": form,
        "errors": {},
        "art": {"size_mm": "30", "error": "M", "fmt": "svg"},
        "art_error": "",
        **extra,
    }
    return await render_staff_page(request, "analytics/placement.html", context, status)


@router.get("/placements/{placement_id}", name="analytics:placement")
async def placement_detail(request: Request, placement_id: PathId, staff: StaffDep) -> Response:
    return await _render_placement(request, placement_id)


@router.post("/placements/{placement_id}", name="analytics:placement_update")
async def placement_update(request: Request, placement_id: PathId, staff: SalesDep) -> Response:
    values = _fields(await request.form(), PLACEMENT_FIELDS)
    data, errors = _placement_data(values, creating=False)
    if data is not None:

        def work(s: Session) -> Placement:
            return campaigns.update_placement(s, placement_id, data, actor=staff.actor)

        try:
            await in_session(work)
        except AppError as exc:
            errors = _service_error(exc)
        else:
            Flash.success(request, "Placement saved; its code routes by the new rules now.")
            return _to(request, "analytics:placement", placement_id=placement_id)
    return await _render_placement(request, placement_id, 422, form=values, errors=errors)


@router.get("/placements/{placement_id}/qr", name="analytics:placement_qr")
async def placement_qr(
    request: Request,
    placement_id: PathId,
    staff: StaffDep,
    size_mm: Annotated[str, Query(max_length=20)] = "30",
    error: Annotated[str, Query(max_length=1)] = "M",
    fmt: Annotated[str, Query(max_length=3)] = "svg",
) -> Response:
    """The placement's QR artwork; a size too small for the code is explained on the page."""
    placement, _, _ = await in_session(lambda s: _placement(s, placement_id))
    path = request.app.state.root.url_path_for("analytics:code", slug=placement.slug)
    url = get_settings().public_base_url + path
    art_form = {"size_mm": size_mm, "error": error, "fmt": fmt}
    problem = ""
    try:
        size = float(size_mm)
    except ValueError:
        size, problem = 0.0, "Enter the width in millimetres, for example 30."
    if not problem and not 5 <= size <= 2000:
        problem = "Choose a width between 5 and 2000 mm."
    if error not in ("L", "M", "Q", "H") or fmt not in artwork.MEDIA_TYPES:
        problem = "Choose an error level (L, M, Q, H) and a format (SVG, PNG, PDF)."
    if not problem:
        try:
            art = artwork.render(url, size_mm=size, error=error, fmt=fmt, name=placement.slug)  # type: ignore[arg-type]
        except artwork.CodeTooDense as exc:
            problem = exc.detail
        else:
            headers = {"Content-Disposition": f'attachment; filename="{art.filename}"'}
            return Response(art.content, media_type=art.media_type, headers=headers)
    return await _render_placement(request, placement_id, 422, art=art_form, art_error=problem)


# --- webhooks (admins only) --------------------------------------------------------------

EVENT_TYPES = ("scan.created", "conversion.created", "offer.accepted", "order.stage_changed")


def _endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(webhooks.list_endpoints(session))


async def _render_webhooks(request: Request, status: int = 200, **extra: Any) -> Response:
    rows = await in_session(_endpoints)
    context: dict[str, Any] = {
        "title": "Webhooks",
        "endpoints": rows,
        "event_types": EVENT_TYPES,
        "form": {"event_types": list(EVENT_TYPES)},
        "errors": {},
        **extra,
    }
    return await render_staff_page(request, "analytics/webhooks.html", context, status)


@router.get("/webhooks", name="analytics:webhooks")
async def webhook_list(request: Request, staff: AdminDep) -> Response:
    return await _render_webhooks(request)


@router.post("/webhooks", name="analytics:webhook_create")
async def webhook_create(request: Request, staff: AdminDep) -> Response:
    form = await request.form()
    values: dict[str, Any] = {
        "url": str(form.get("url", "")).strip(),
        "event_types": [str(t) for t in form.getlist("event_types")],
    }
    data, errors = _validate(WebhookEndpointCreate, values)
    if data is not None:

        def work(s: Session) -> WebhookEndpoint:
            return webhooks.create_endpoint(s, data, actor=staff.actor)

        try:
            endpoint = await in_session(work)
        except AppError as exc:
            errors = _service_error(exc)
        else:
            return await _render_endpoint(request, endpoint.id or 0, secret=endpoint.secret)
    return await _render_webhooks(request, 422, form=values, errors=errors)


def _endpoint_page(
    session: Session, endpoint_id: int
) -> tuple[WebhookEndpoint, list[DeliveryRead]]:
    with read_only(session):
        endpoint = webhooks.get_endpoint(session, endpoint_id)
        return endpoint, webhooks.deliveries(session, endpoint_id, limit=100)


async def _render_endpoint(
    request: Request, endpoint_id: int, status: int = 200, secret: str = ""
) -> Response:
    endpoint, deliveries = await in_session(lambda s: _endpoint_page(s, endpoint_id))
    context = {
        "title": f"Webhook endpoint {endpoint.id}",
        "endpoint": endpoint,
        "deliveries": deliveries,
        "secret": secret,  # shown once, on the page answering its creation or rotation
    }
    return await render_staff_page(request, "analytics/webhook.html", context, status)


@router.get("/webhooks/{endpoint_id}", name="analytics:webhook")
async def webhook_detail(request: Request, endpoint_id: PathId, staff: AdminDep) -> Response:
    return await _render_endpoint(request, endpoint_id)


@router.post("/webhooks/{endpoint_id}/enabled", name="analytics:webhook_enabled")
async def webhook_enabled(request: Request, endpoint_id: PathId, staff: AdminDep) -> Response:
    enable = str((await request.form()).get("enabled", "")) == "true"

    def work(s: Session) -> WebhookEndpoint:
        return webhooks.update_endpoint(
            s, endpoint_id, WebhookEndpointUpdate(enabled=enable), actor=staff.actor
        )

    await in_session(work)
    Flash.success(
        request,
        "Endpoint enabled; its backlog is delivered again." if enable else "Endpoint disabled.",
    )
    return _to(request, "analytics:webhook", endpoint_id=endpoint_id)


@router.post("/webhooks/{endpoint_id}/rotate-secret", name="analytics:webhook_rotate")
async def webhook_rotate(request: Request, endpoint_id: PathId, staff: AdminDep) -> Response:
    def work(s: Session) -> WebhookEndpoint:
        return webhooks.rotate_secret(s, endpoint_id, actor=staff.actor)

    endpoint = await in_session(work)
    return await _render_endpoint(request, endpoint_id, secret=endpoint.secret)


ANALYTICS_PAGES = StaffPages(
    router=router,
    menu=[
        MenuLink("Campaign dashboard", "analytics:dashboard", Role.VIEWER),
        MenuLink("Campaigns", "analytics:campaigns", Role.VIEWER, icon="fa-solid fa-bullhorn"),
        MenuLink("Webhooks", "analytics:webhooks", Role.ADMIN, icon="fa-solid fa-paper-plane"),
    ],
)
