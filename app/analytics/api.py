"""The analytics management API: campaigns, creatives, placements and their codes,
conversions and webhook endpoints. Thin: parse, call one service function, answer."""

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from app.analytics import artwork, campaigns, conversions, webhooks
from app.analytics.models import Campaign, Conversion, Creative, Placement, WebhookEndpoint
from app.analytics.schemas import (
    CampaignCreate,
    CampaignRead,
    CampaignUpdate,
    ConversionCreate,
    ConversionRead,
    CreativeCreate,
    CreativeRead,
    DeliveryRead,
    PlacementCreate,
    PlacementRead,
    PlacementUpdate,
    RoutingRule,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointRead,
    WebhookEndpointUpdate,
    WebhookTestResult,
)
from app.auth.dependencies import ApiKeyDep, require_api_key
from app.config import Settings, SettingsDep
from app.db import SessionDep
from app.openapi import WITH_ETAG, IfMatch, PathId, error_responses, single_query_values
from app.versions import Expected, etag_of

router = APIRouter(
    prefix="/api/v1",
    tags=["campaigns"],
    dependencies=[Depends(require_api_key), Depends(single_query_values)],
    responses=error_responses(400, 401, 404, 409, 413),
)


def _campaign(campaign: Campaign) -> CampaignRead:
    return CampaignRead.model_validate(campaign, from_attributes=True)


def _creative(creative: Creative) -> CreativeRead:
    return CreativeRead.model_validate(creative, from_attributes=True)


def placement_read(request: Request, placement: Placement, settings: Settings) -> PlacementRead:
    assert placement.id is not None
    path = request.app.url_path_for("analytics:code", slug=placement.slug)
    return PlacementRead(
        id=placement.id,
        campaign_id=placement.campaign_id,
        name=placement.name,
        slug=placement.slug,
        code_url=settings.public_base_url + path,
        fallback_url=placement.fallback_url,
        fallback_creative_id=placement.fallback_creative_id,
        split_mode=placement.split_mode,
        rules=[RoutingRule.model_validate(rule) for rule in placement.rules],
    )


@router.post("/campaigns", status_code=status.HTTP_201_CREATED, name="campaigns:create")
def create_campaign(data: CampaignCreate, session: SessionDep, key: ApiKeyDep) -> CampaignRead:
    return _campaign(campaigns.create_campaign(session, data, actor=key.actor))


@router.get("/campaigns", name="campaigns:list")
def list_campaigns(session: SessionDep) -> list[CampaignRead]:
    return [_campaign(c) for c in campaigns.list_campaigns(session)]


@router.get("/campaigns/{campaign_id}", name="campaigns:get", responses=WITH_ETAG)
def read_campaign(campaign_id: PathId, session: SessionDep, response: Response) -> CampaignRead:
    campaign = campaigns.get_campaign(session, campaign_id)
    response.headers["ETag"] = etag_of(campaign.updated_at)
    return _campaign(campaign)


@router.patch(
    "/campaigns/{campaign_id}",
    name="campaigns:update",
    responses={**WITH_ETAG, **error_responses(412)},
)
def update_campaign(
    campaign_id: PathId,
    data: CampaignUpdate,
    session: SessionDep,
    key: ApiKeyDep,
    response: Response,
    if_match: IfMatch = None,
) -> CampaignRead:
    """Change some fields; with ``If-Match`` (the ETag of a GET) only if nobody changed the
    campaign since."""
    expected = Expected.from_if_match(if_match)
    campaign = campaigns.update_campaign(
        session, campaign_id, data, actor=key.actor, expected=expected
    )
    response.headers["ETag"] = etag_of(campaign.updated_at)
    return _campaign(campaign)


@router.post(
    "/campaigns/{campaign_id}/creatives",
    status_code=status.HTTP_201_CREATED,
    name="creatives:create",
)
def create_creative(
    campaign_id: PathId, data: CreativeCreate, session: SessionDep, key: ApiKeyDep
) -> CreativeRead:
    return _creative(campaigns.create_creative(session, campaign_id, data, actor=key.actor))


@router.get("/campaigns/{campaign_id}/creatives", name="creatives:list")
def list_creatives(campaign_id: PathId, session: SessionDep) -> list[CreativeRead]:
    return [_creative(c) for c in campaigns.list_creatives(session, campaign_id)]


@router.post(
    "/campaigns/{campaign_id}/placements",
    status_code=status.HTTP_201_CREATED,
    name="placements:create",
)
def create_placement(
    request: Request,
    campaign_id: PathId,
    data: PlacementCreate,
    session: SessionDep,
    settings: SettingsDep,
    key: ApiKeyDep,
) -> PlacementRead:
    """A placement and its dynamic code (`code_url`, the URL its QR code opens)."""
    placement = campaigns.create_placement(session, campaign_id, data, actor=key.actor)
    return placement_read(request, placement, settings)


@router.get("/campaigns/{campaign_id}/placements", name="placements:list")
def list_placements(
    request: Request, campaign_id: PathId, session: SessionDep, settings: SettingsDep
) -> list[PlacementRead]:
    placements: Sequence[Placement] = campaigns.list_placements(session, campaign_id)
    return [placement_read(request, p, settings) for p in placements]


@router.get("/placements/{placement_id}", name="placements:get", responses=WITH_ETAG)
def read_placement(
    request: Request,
    response: Response,
    placement_id: PathId,
    session: SessionDep,
    settings: SettingsDep,
) -> PlacementRead:
    placement = campaigns.get_placement(session, placement_id)
    response.headers["ETag"] = etag_of(placement.updated_at)
    return placement_read(request, placement, settings)


@router.patch(
    "/placements/{placement_id}",
    name="placements:update",
    responses={**WITH_ETAG, **error_responses(412)},
)
def update_placement(
    request: Request,
    response: Response,
    placement_id: PathId,
    data: PlacementUpdate,
    session: SessionDep,
    settings: SettingsDep,
    key: ApiKeyDep,
    if_match: IfMatch = None,
) -> PlacementRead:
    """Change the routing rules (`rules` replaces them all), fallback or split mode; with
    ``If-Match`` (the ETag of a GET) only if nobody changed the placement since."""
    expected = Expected.from_if_match(if_match)
    placement = campaigns.update_placement(
        session, placement_id, data, actor=key.actor, expected=expected
    )
    response.headers["ETag"] = etag_of(placement.updated_at)
    return placement_read(request, placement, settings)


def _conversion(conversion: Conversion) -> ConversionRead:
    return ConversionRead.model_validate(conversion, from_attributes=True)


@router.post(
    "/conversions",
    status_code=status.HTTP_201_CREATED,
    name="conversions:create",
    tags=["conversions"],
    responses={200: {"description": "The same external_key and body were recorded before"}},
)
def create_conversion(
    data: ConversionCreate, session: SessionDep, response: Response
) -> ConversionRead:
    """Record an external conversion; idempotent on `external_key` (same body: 200 with the
    first result; a different body: 409)."""
    conversion, created = conversions.record_external(session, data)
    if not created:
        response.status_code = status.HTTP_200_OK
    return _conversion(conversion)


@router.get("/conversions/{conversion_id}", name="conversions:get", tags=["conversions"])
def read_conversion(conversion_id: PathId, session: SessionDep) -> ConversionRead:
    return _conversion(conversions.get_conversion(session, conversion_id))


def _endpoint(endpoint: WebhookEndpoint) -> WebhookEndpointCreated:
    return WebhookEndpointCreated.model_validate(endpoint, from_attributes=True)


@router.post(
    "/webhooks", status_code=status.HTTP_201_CREATED, name="webhooks:create", tags=["webhooks"]
)
def create_endpoint(
    data: WebhookEndpointCreate, session: SessionDep, key: ApiKeyDep
) -> WebhookEndpointCreated:
    """Register an endpoint; the answer carries the secret that signs its deliveries."""
    return _endpoint(webhooks.create_endpoint(session, data, actor=key.actor))


@router.get("/webhooks", name="webhooks:list", tags=["webhooks"])
def list_endpoints(session: SessionDep) -> list[WebhookEndpointRead]:
    return [
        WebhookEndpointRead.model_validate(e, from_attributes=True)
        for e in webhooks.list_endpoints(session)
    ]


@router.get("/webhooks/{endpoint_id}", name="webhooks:get", tags=["webhooks"], responses=WITH_ETAG)
def read_endpoint(
    endpoint_id: PathId, session: SessionDep, response: Response
) -> WebhookEndpointRead:
    """The endpoint without its secret: only creation and rotate-secret show that."""
    endpoint = webhooks.get_endpoint(session, endpoint_id)
    response.headers["ETag"] = etag_of(endpoint.updated_at)
    return WebhookEndpointRead.model_validate(endpoint, from_attributes=True)


@router.patch(
    "/webhooks/{endpoint_id}",
    name="webhooks:update",
    tags=["webhooks"],
    responses={**WITH_ETAG, **error_responses(412)},
)
def update_endpoint(
    endpoint_id: PathId,
    data: WebhookEndpointUpdate,
    session: SessionDep,
    key: ApiKeyDep,
    response: Response,
    if_match: IfMatch = None,
) -> WebhookEndpointRead:
    """Change some fields; with ``If-Match`` (the ETag of a GET) only if nobody changed the
    endpoint since."""
    expected = Expected.from_if_match(if_match)
    endpoint = webhooks.update_endpoint(
        session, endpoint_id, data, actor=key.actor, expected=expected
    )
    response.headers["ETag"] = etag_of(endpoint.updated_at)
    return WebhookEndpointRead.model_validate(endpoint, from_attributes=True)


@router.post(
    "/webhooks/{endpoint_id}/rotate-secret",
    name="webhooks:rotate",
    tags=["webhooks"],
    responses={**WITH_ETAG, **error_responses(412)},
)
def rotate_secret(
    endpoint_id: PathId,
    session: SessionDep,
    key: ApiKeyDep,
    response: Response,
    if_match: IfMatch = None,
) -> WebhookEndpointCreated:
    """A new signing secret (in the answer, once); with ``If-Match`` only if nobody changed the
    endpoint since."""
    expected = Expected.from_if_match(if_match)
    endpoint = webhooks.rotate_secret(session, endpoint_id, actor=key.actor, expected=expected)
    response.headers["ETag"] = etag_of(endpoint.updated_at)
    return _endpoint(endpoint)


@router.delete(
    "/webhooks/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    name="webhooks:delete",
    tags=["webhooks"],
    responses=error_responses(412),
)
def delete_endpoint(
    endpoint_id: PathId, session: SessionDep, key: ApiKeyDep, if_match: IfMatch = None
) -> None:
    """Remove the endpoint, its queued events and its delivery log; with ``If-Match`` only if
    nobody changed it since."""
    expected = Expected.from_if_match(if_match)
    webhooks.delete_endpoint(session, endpoint_id, actor=key.actor, expected=expected)


@router.post(
    "/webhooks/{endpoint_id}/test",
    name="webhooks:test",
    tags=["webhooks"],
    responses=error_responses(503),
)
def send_test_event(
    endpoint_id: PathId, session: SessionDep, settings: SettingsDep
) -> WebhookTestResult:
    """Send the endpoint a signed `ping` event now (enabled or disabled: check a receiver
    before enabling it again) and answer what happened: the receiver's status and the time
    taken, or the error in words. Headers and signature are those of every delivery; the
    address is checked as for every delivery. The test is sent once, never retried, does
    not count toward the endpoint's failures and is not in its delivery log. A receiver that
    fails is still a 200 here, with `delivered` false. While two tests are under way in the
    server process, another is refused with 503 and `Retry-After`."""
    return webhooks.send_ping(session, endpoint_id, settings)


@router.get("/webhooks/{endpoint_id}/deliveries", name="webhooks:deliveries", tags=["webhooks"])
def list_deliveries(
    endpoint_id: PathId,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryRead]:
    """The latest delivery attempts, newest first."""
    return webhooks.deliveries(session, endpoint_id, limit=limit)


@router.get(
    "/placements/{placement_id}/qr.{fmt}",
    name="placements:artwork",
    response_class=Response,
    responses={
        200: {"content": {t: {} for t in artwork.MEDIA_TYPES.values()}},
        422: {"description": "Too dense for the size: the message names the smallest size"},
    },
)
def code_artwork(
    request: Request,
    placement_id: PathId,
    fmt: artwork.ArtworkFormat,
    session: SessionDep,
    settings: SettingsDep,
    size_mm: Annotated[float, Query(ge=5, le=2000, description="Width, quiet zone included")],
    error: Annotated[artwork.ErrorLevel, Query(description="Error correction level")] = "M",
) -> Response:
    """The placement's QR code as SVG, PNG or PDF artwork, `size_mm` wide with its quiet
    zone; refused (422) when its modules would be under 0.33 mm."""
    placement = campaigns.get_placement(session, placement_id)
    url = placement_read(request, placement, settings).code_url
    art = artwork.render(url, size_mm=size_mm, error=error, fmt=fmt, name=placement.slug)
    headers = {"Content-Disposition": f'inline; filename="{art.filename}"'}
    return Response(art.content, media_type=art.media_type, headers=headers)
