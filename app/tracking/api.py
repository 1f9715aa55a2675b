"""The order API: stage updates pushed by integrations."""

from fastapi import APIRouter, Depends, Request, Response, status

from app.auth.dependencies import ApiKeyDep, require_api_key
from app.config import SettingsDep
from app.db import SessionDep
from app.offers.dependencies import offer_read
from app.offers.models import Offer
from app.offers.schemas import OfferRead
from app.openapi import WITH_ETAG, IfMatch, error_responses, single_query_values
from app.tracking import service
from app.tracking.models import OrderStage, StageUpdate
from app.tracking.schemas import StageUpdateCreate, StageUpdateRead
from app.versions import Expected, etag_of

router = APIRouter(
    prefix="/api/v1/orders",
    tags=["orders"],
    dependencies=[Depends(require_api_key), Depends(single_query_values)],
    responses=error_responses(400, 401, 404, 413),
)
# Activation is an offer's URL (/api/v1/offers/{id}/activate) but a use case of orders, so its
# route lives here: offers know nothing of orders.
offer_router = APIRouter(
    prefix="/api/v1/offers",
    tags=["offers"],
    dependencies=[Depends(require_api_key), Depends(single_query_values)],
    responses=error_responses(400, 401, 404, 409, 413),
)


def _read(update: StageUpdate, offer: Offer, stage: OrderStage) -> StageUpdateRead:
    assert update.id is not None
    return StageUpdateRead(
        order_id=offer.id,
        tracking_id=offer.tracking_id,
        stage=stage.key,
        stage_label=stage.label,
        **update.model_dump(exclude={"offer_id", "stage_key", "created_at"}),
    )


@router.post(
    "/{code}/updates",
    status_code=status.HTTP_201_CREATED,
    name="orders:add_update",
    responses={200: {"model": StageUpdateRead, "description": "A repeat of the latest update"}},
)
def add_stage_update(
    code: str,
    data: StageUpdateCreate,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    key: ApiKeyDep,
) -> StageUpdateRead:
    """Append a stage update; `code` is the order's ULID or tracking ID in any spelling. An
    `expected_delivery_date` before the update's day (`happened_at`, else today) is a 422.
    The same update sent again by the same key within 60 seconds (a retry after a timeout) is
    a 200 with the update saved the first time: nothing is added and nobody is mailed again."""
    added = service.add_stage_update(session, code, data, actor=key.actor, settings=settings)
    if added.repeated:
        response.status_code = status.HTTP_200_OK
    return _read(added.update, added.offer, added.stage)


@router.get("/{code}/updates", name="orders:updates")
def list_stage_updates(code: str, session: SessionDep) -> list[StageUpdateRead]:
    """The order's stage history, newest first, internal notes included."""
    offer = service.find_order(session, code)
    timeline = service.build_timeline(session, offer)
    return [_read(update, offer, stage) for update, stage in timeline.updates]


@offer_router.post(
    "/{offer_id}/activate",
    name="offers:activate",
    responses={**WITH_ETAG, **error_responses(412)},
)
def activate_offer(
    request: Request,
    response: Response,
    offer_id: str,
    session: SessionDep,
    settings: SettingsDep,
    key: ApiKeyDep,
    if_match: IfMatch = None,
) -> OfferRead:
    """Make an issued or accepted offer an order; its tracking ID then opens the order page.
    Calling it again for an order changes nothing; with ``If-Match`` (the ETag of the offer's
    GET) it activates only if nobody changed the offer since."""
    expected = Expected.from_if_match(if_match)
    offer = service.activate_offer(
        session, offer_id, actor=key.actor, settings=settings, expected=expected
    )
    response.headers["ETag"] = etag_of(offer.updated_at)
    return offer_read(request, offer, settings, None)
