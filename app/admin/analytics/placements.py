"""A placement's page in the staff site (/admin/analytics/placements/{id}): its rules in words,
the QR code it prints, its scans and conversions of the last 30 days, its artwork download,
and the rules form (app.admin.analytics.placement_form). Viewers read; sales and admins save,
each change written to the audit log by the service that makes it.

Row buttons ("Add rule", "Add variant", "Remove", "Move up") are submit buttons of the form:
without JavaScript they post it and the page comes back with the row changed and nothing
saved; only "Save placement" saves.
"""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from markupsafe import Markup
from sqlmodel import Session
from starlette.responses import Response

from app.admin import access
from app.admin.access import SalesDep, StaffDep, require_role
from app.admin.analytics import placement_form
from app.admin.analytics.placement_form import OS_CHOICES, WEEKDAYS, Errors, RuleRow
from app.admin.forms import fields, save_and_redirect
from app.admin.layout import render_staff_page
from app.admin.views import in_session
from app.analytics import artwork, attribution, campaigns, charts, exports
from app.analytics.models import Campaign, Creative, Placement
from app.auth.staff import Role
from app.config import get_settings
from app.db import read_only
from app.errors import AppError, Conflict, Unprocessable
from app.formats import DecimalMark
from app.openapi import PathId
from app.versions import VERSION_FIELD, Expected, version_of

router = APIRouter(
    prefix="/analytics",
    include_in_schema=False,
    dependencies=[Depends(require_role(Role.VIEWER))],
)
FIELDS = ("name", "fallback_url", "fallback_creative_id", "split_mode", VERSION_FIELD)


@dataclass(frozen=True)
class PlacementPage:
    placement: Placement
    campaign: Campaign
    creatives: list[Creative]
    period: attribution.Period
    days: list[attribution.DayRow]
    conversions: list[int]
    totals: attribution.AttributionRow


def _page(session: Session, placement_id: int) -> PlacementPage:
    with read_only(session):
        placement = campaigns.get_placement(session, placement_id)
        campaign = campaigns.get_campaign(session, placement.campaign_id)
        creatives = list(campaigns.list_creatives(session, campaign.id or 0))
        period = exports.get_period(get_settings())
        ranked = attribution.attribution(session, period, "placement", "last_touch")
        totals = next(
            (row for row in ranked if row.id == placement_id),
            attribution.AttributionRow(placement_id, placement.name),
        )
        return PlacementPage(
            placement,
            campaign,
            creatives,
            period,
            attribution.scans_per_day(session, period, placement_id),
            attribution.conversions_per_day(session, period, placement_id),
            totals,
        )


def _chart(page: PlacementPage, mark: DecimalMark) -> Markup:
    return charts.daily(
        "chart-placement",
        "Scans and conversions per day, last 30 days",
        [row.day for row in page.days],
        [
            charts.Series("Scans", [row.scans for row in page.days]),
            charts.Series("Conversions", page.conversions),
        ],
        mark=mark,
    )


def _stored_form(placement: Placement) -> dict[str, str]:
    return {
        "name": placement.name,
        "fallback_url": placement.fallback_url,
        "fallback_creative_id": str(placement.fallback_creative_id or ""),
        "split_mode": str(placement.split_mode),
        VERSION_FIELD: version_of(placement.updated_at),
    }


async def _render(
    request: Request,
    placement_id: int,
    status: int = 200,
    *,
    form: dict[str, str] | None = None,
    rows: list[RuleRow] | None = None,
    errors: Errors | None = None,
    **extra: Any,
) -> Response:
    page = await in_session(lambda s: _page(s, placement_id))
    placement = page.placement
    path = request.app.state.root.url_path_for("analytics:code", slug=placement.slug)
    code_url = get_settings().public_base_url + path
    context: dict[str, Any] = {
        "title": f"Placement {placement.name}",
        "placement": placement,
        "campaign": page.campaign,
        "creatives": {c.id: c.name for c in page.creatives},
        "code_url": code_url,
        "zone": get_settings().timezone,  # the rules' times and dates are local to it
        "qr_svg": Markup(artwork.preview_svg(code_url)),  # segno's paths, no text of ours
        "stats": page,
        "chart": _chart(page, access.decimal_mark(request)),
        "form": form or _stored_form(placement),
        "rows": placement_form.rows_of(placement.rules) if rows is None else rows,
        "errors": errors or {},
        "os_choices": OS_CHOICES,
        "weekdays": WEEKDAYS,
        "art": {"size_mm": "30", "error": "M", "fmt": "svg"},
        "art_error": "",  # beside the width
        "art_choice_error": "",  # a level or format not offered (a link typed by hand)
        **extra,
    }
    return await render_staff_page(request, "analytics/placement.html", context, status)


@router.get("/placements/{placement_id}", name="analytics:placement")
async def placement_detail(request: Request, placement_id: PathId, staff: StaffDep) -> Response:
    return await _render(request, placement_id)


def _errors_of(exc: AppError) -> Errors:
    """A service's refusal beside the field its location names (a rule's creative, say)."""
    if isinstance(exc, Unprocessable | Conflict) and exc.loc:
        return {placement_form.field_name(exc.loc): exc.detail}
    return {"form": exc.detail}


@router.post("/placements/{placement_id}", name="analytics:placement_update")
async def placement_update(request: Request, placement_id: PathId, staff: SalesDep) -> Response:
    """Save the placement and its rules, or apply a row button and show the form again."""
    posted = await request.form()
    values = fields(posted, FIELDS)
    rows = placement_form.read_rules(posted)
    op = str(posted.get("op", "save"))
    if op != "save":  # a row button: the form comes back changed, nothing is saved
        placement_form.edit_rows(rows, op)
        return await _render(request, placement_id, form=values, rows=rows)
    rows = placement_form.compact(rows)
    outcome = await save_and_redirect(
        request,
        placement_form.validate_placement(values, rows),
        lambda s, data: campaigns.update_placement(
            s,
            placement_id,
            data,
            actor=staff.actor,
            expected=Expected.from_form(values[VERSION_FIELD]),
        ),
        success=lambda _: "Placement saved; its code routes by the new rules now.",
        to=lambda _: request.url_for("analytics:placement", placement_id=placement_id),
        errors_of=_errors_of,
    )
    if isinstance(outcome, Response):
        return outcome
    return await _render(request, placement_id, 422, form=values, rows=rows, errors=outcome)


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
    placement = await in_session(lambda s: _placement(s, placement_id))
    path = request.app.state.root.url_path_for("analytics:code", slug=placement.slug)
    url = get_settings().public_base_url + path
    art_form = {"size_mm": size_mm, "error": error, "fmt": fmt}
    if error not in ("L", "M", "Q", "H") or fmt not in artwork.MEDIA_TYPES:
        choice = "Choose an error level (L, M, Q, H) and a format (SVG, PNG, PDF)."
        return await _render(request, placement_id, 422, art=art_form, art_choice_error=choice)
    size, problem = _width(size_mm, staff.decimal_mark)
    if not problem:
        try:
            art = artwork.render(url, size_mm=size, error=error, fmt=fmt, name=placement.slug)  # type: ignore[arg-type]
        except artwork.CodeTooDense as exc:
            problem = exc.detail
        else:
            headers = {"Content-Disposition": f'attachment; filename="{art.filename}"'}
            return Response(art.content, media_type=art.media_type, headers=headers)
    return await _render(request, placement_id, 422, art=art_form, art_error=problem)


def _width(typed: str, mark: DecimalMark) -> tuple[float, str]:
    """The artwork's width in mm as typed with the user's decimal mark, or what to fix."""
    try:
        size = mark.parse(typed)
    except ValueError as refused:
        return 0.0, str(refused)
    if not 5 <= size <= 2000:
        return 0.0, "Choose a width between 5 and 2000 mm."
    return float(size), ""


def _placement(session: Session, placement_id: int) -> Placement:
    with read_only(session):
        return campaigns.get_placement(session, placement_id)
