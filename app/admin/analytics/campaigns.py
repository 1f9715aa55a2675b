"""Campaigns, creatives and placements in the staff site (/admin/analytics/campaigns...): their
forms, routing rules and QR artwork. Viewers read; sales and admins change them, each change
written to the audit log by the service that makes it."""

import json
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from sqlmodel import Session
from starlette.responses import Response

from app.admin.access import SalesDep, StaffDep, require_role
from app.admin.forms import Errors, fields, present, save_and_redirect, validate
from app.admin.layout import render_staff_page
from app.admin.views import in_session
from app.analytics import artwork, campaigns
from app.analytics.models import Campaign, Placement
from app.analytics.schemas import (
    CampaignCreate,
    CampaignUpdate,
    CreativeCreate,
    PlacementCreate,
    PlacementUpdate,
)
from app.auth.staff import Role
from app.config import get_settings
from app.db import read_only
from app.openapi import PathId

router = APIRouter(
    prefix="/analytics",
    include_in_schema=False,
    dependencies=[Depends(require_role(Role.VIEWER))],
)


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
    values = fields(await request.form(), CAMPAIGN_FIELDS)
    outcome = await save_and_redirect(
        request,
        validate(CampaignCreate, present(values)),
        lambda s, data: campaigns.create_campaign(s, data, actor=staff.actor),
        success=lambda campaign: f"Campaign “{campaign.name}” created.",
        to=lambda campaign: request.url_for("analytics:campaign", campaign_id=campaign.id),
    )
    if isinstance(outcome, Response):
        return outcome
    rows = await in_session(_campaign_list)
    context = {"title": "Campaigns", "campaigns": rows, "form": values, "errors": outcome}
    return await render_staff_page(request, "analytics/campaigns.html", context, 422)


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
    values = fields(await request.form(), CAMPAIGN_FIELDS)
    # Empty dates clear them; empty names and UTM values are refused by the service.
    outcome = await save_and_redirect(
        request,
        validate(CampaignUpdate, {k: (v or None) for k, v in values.items()}),
        lambda s, data: campaigns.update_campaign(s, campaign_id, data, actor=staff.actor),
        success=lambda _: "Campaign saved; its codes use the new values at once.",
        to=lambda _: request.url_for("analytics:campaign", campaign_id=campaign_id),
    )
    if isinstance(outcome, Response):
        return outcome
    return await _render_campaign(request, campaign_id, 422, edit=values, edit_errors=outcome)


@router.post("/campaigns/{campaign_id}/creatives", name="analytics:creative_create")
async def creative_create(request: Request, campaign_id: PathId, staff: SalesDep) -> Response:
    values = fields(await request.form(), ("name", "utm_content"))
    outcome = await save_and_redirect(
        request,
        validate(CreativeCreate, present(values)),
        lambda s, data: campaigns.create_creative(s, campaign_id, data, actor=staff.actor),
        success=lambda creative: f"Creative “{creative.name}” added.",
        to=lambda _: request.url_for("analytics:campaign", campaign_id=campaign_id),
    )
    if isinstance(outcome, Response):
        return outcome
    return await _render_campaign(
        request, campaign_id, 422, creative=values, creative_errors=outcome
    )


# --- placements --------------------------------------------------------------------------

P = TypeVar("P", PlacementCreate, PlacementUpdate)
PLACEMENT_FIELDS = ("name", "slug", "fallback_url", "fallback_creative_id", "split_mode", "rules")


def _rules_json(text: str, errors: Errors) -> Any:
    if not text:
        return []
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        errors["rules"] = f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        return None


def _placement_data(values: dict[str, str], model: type[P]) -> tuple[P | None, Errors]:
    creating = model is PlacementCreate
    errors: Errors = {}
    rules = _rules_json(values["rules"], errors)
    data: dict[str, Any] = {k: v for k, v in values.items() if k != "rules"}
    if not creating:
        data.pop("slug", None)
    data["fallback_creative_id"] = data["fallback_creative_id"] or None
    if creating:
        data = {k: v for k, v in data.items() if v not in ("", None)}
    data["rules"] = rules if rules is not None else []
    parsed, more = validate(model, data)
    errors = {**more, **errors}
    return (parsed if not errors else None), errors


@router.post("/campaigns/{campaign_id}/placements", name="analytics:placement_create")
async def placement_create(request: Request, campaign_id: PathId, staff: SalesDep) -> Response:
    values = fields(await request.form(), PLACEMENT_FIELDS)
    outcome = await save_and_redirect(
        request,
        _placement_data(values, PlacementCreate),
        lambda s, data: campaigns.create_placement(s, campaign_id, data, actor=staff.actor),
        success=lambda placement: f"Placement “{placement.name}” created with its code.",
        to=lambda placement: request.url_for("analytics:placement", placement_id=placement.id),
    )
    if isinstance(outcome, Response):
        return outcome
    return await _render_campaign(
        request, campaign_id, 422, placement=values, placement_errors=outcome
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
    values = fields(await request.form(), PLACEMENT_FIELDS)
    outcome = await save_and_redirect(
        request,
        _placement_data(values, PlacementUpdate),
        lambda s, data: campaigns.update_placement(s, placement_id, data, actor=staff.actor),
        success=lambda _: "Placement saved; its code routes by the new rules now.",
        to=lambda _: request.url_for("analytics:placement", placement_id=placement_id),
    )
    if isinstance(outcome, Response):
        return outcome
    return await _render_placement(request, placement_id, 422, form=values, errors=outcome)


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
