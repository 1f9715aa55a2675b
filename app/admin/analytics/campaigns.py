"""Campaigns and creatives in the staff site (/admin/analytics/campaigns...), and a new
placement of a campaign (its own page is app.admin.analytics.placements). Viewers read; sales
and admins change them, each change written to the audit log by the service that makes it."""

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlmodel import Session
from starlette.responses import Response

from app.admin.access import SalesDep, StaffDep, require_role
from app.admin.forms import fields, present, save_and_redirect, validate
from app.admin.layout import render_staff_page
from app.admin.views import in_session
from app.analytics import campaigns
from app.analytics.models import Campaign, Placement
from app.analytics.schemas import (
    CampaignCreate,
    CampaignUpdate,
    CreativeCreate,
    PlacementCreate,
)
from app.auth.staff import Role
from app.config import get_settings
from app.db import read_only
from app.openapi import PathId
from app.versions import VERSION_FIELD, Expected, version_of

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
        VERSION_FIELD: version_of(c.updated_at),
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
    values = fields(await request.form(), (*CAMPAIGN_FIELDS, VERSION_FIELD))
    version = values.pop(VERSION_FIELD)
    # Empty dates clear them; empty names and UTM values are refused by the service.
    outcome = await save_and_redirect(
        request,
        validate(CampaignUpdate, {k: (v or None) for k, v in values.items()}),
        lambda s, data: campaigns.update_campaign(
            s, campaign_id, data, actor=staff.actor, expected=Expected.from_form(version)
        ),
        success=lambda _: "Campaign saved; its codes use the new values at once.",
        to=lambda _: request.url_for("analytics:campaign", campaign_id=campaign_id),
    )
    if isinstance(outcome, Response):
        return outcome
    edit = {**values, VERSION_FIELD: version}  # a refusal keeps the version the form was opened at
    return await _render_campaign(request, campaign_id, 422, edit=edit, edit_errors=outcome)


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


# --- placements (their own page, with the rules form, is app.admin.analytics.placements) -

PLACEMENT_FIELDS = ("name", "slug", "fallback_url", "fallback_creative_id", "split_mode")


@router.post("/campaigns/{campaign_id}/placements", name="analytics:placement_create")
async def placement_create(request: Request, campaign_id: PathId, staff: SalesDep) -> Response:
    """A placement without rules yet: its page, where it lands, edits them row by row."""
    values = fields(await request.form(), PLACEMENT_FIELDS)
    outcome = await save_and_redirect(
        request,
        validate(PlacementCreate, present(values)),
        lambda s, data: campaigns.create_placement(s, campaign_id, data, actor=staff.actor),
        success=lambda placement: (
            f"Placement “{placement.name}” created with its code; add its routing rules below."
        ),
        to=lambda placement: request.url_for("analytics:placement", placement_id=placement.id),
    )
    if isinstance(outcome, Response):
        return outcome
    return await _render_campaign(
        request, campaign_id, 422, placement=values, placement_errors=outcome
    )
