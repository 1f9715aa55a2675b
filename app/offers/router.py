"""The Offer API under /api/v1/offers: parse, call one service function, answer."""

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from pydantic import AfterValidator, BeforeValidator

from app.auth.dependencies import ApiKeyDep, require_api_key
from app.config import Settings, SettingsDep
from app.db import SessionDep
from app.offers import service
from app.offers.dependencies import RendererDep, offer_read, pdf_response
from app.offers.documents import offer_pdf_async
from app.offers.models import Offer, OfferStatus
from app.offers.schemas import OfferCreate, OfferPage, OfferRead, OfferUpdate
from app.openapi import (
    WITH_ETAG,
    WITH_ETAG_CREATED,
    IfMatch,
    error_responses,
    single_query_values,
)
from app.versions import Expected, etag_of

router = APIRouter(
    prefix="/api/v1/offers",
    tags=["offers"],
    dependencies=[Depends(require_api_key), Depends(single_query_values)],
    responses=error_responses(400, 401, 404, 409, 413),
)


_ISO_DATE_START = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_only(value: object) -> object:
    # pydantic would also read "0.5" or "1e-241" as seconds since 1970, which the schema
    # (format: date-time) does not promise and no client means.
    if isinstance(value, str) and not _ISO_DATE_START.match(value):
        raise ValueError("use an ISO 8601 date or date-time, e.g. 2026-01-31T00:00:00Z")
    return value


def _utc_if_naive(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


QueryDateTime = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_utc_if_naive)]


def get_offer(session: SessionDep, offer_id: str) -> Offer:
    return service.get_offer(session, offer_id)


OfferDep = Annotated[Offer, Depends(get_offer)]


def _read_many(
    request: Request, session: SessionDep, offers: Sequence[Offer], settings: Settings
) -> list[OfferRead]:
    revisions = service.superseded_by(session, [offer.id for offer in offers])
    return [offer_read(request, offer, settings, revisions.get(offer.id)) for offer in offers]


@router.post("", status_code=status.HTTP_201_CREATED, name="offers:create")
def create_offer(
    request: Request,
    data: OfferCreate,
    session: SessionDep,
    settings: SettingsDep,
    key: ApiKeyDep,
) -> OfferRead:
    offer = service.create_offer(session, data, actor=key.actor, settings=settings)
    return offer_read(request, offer, settings, None)


@router.get("", name="offers:list")
def list_offers(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    status_: Annotated[OfferStatus | None, Query(alias="status")] = None,
    customer: Annotated[str | None, Query(max_length=200)] = None,
    created_from: Annotated[QueryDateTime | None, Query()] = None,
    created_to: Annotated[QueryDateTime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> OfferPage:
    filters = service.OfferFilter(
        status=status_, customer=customer, created_from=created_from, created_to=created_to
    )
    offers, total = service.list_offers(
        session, filters, settings=settings, limit=limit, offset=offset
    )
    items = _read_many(request, session, offers, settings)
    return OfferPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/{offer_id}", name="offers:get", responses=WITH_ETAG)
def read_offer(
    request: Request,
    response: Response,
    offer: OfferDep,
    session: SessionDep,
    settings: SettingsDep,
) -> OfferRead:
    response.headers["ETag"] = etag_of(offer.updated_at)
    return _read_many(request, session, [offer], settings)[0]


@router.patch(
    "/{offer_id}",
    name="offers:update",
    responses={**WITH_ETAG, **error_responses(412)},
)
def update_offer(
    request: Request,
    response: Response,
    offer_id: str,
    data: OfferUpdate,
    session: SessionDep,
    settings: SettingsDep,
    key: ApiKeyDep,
    if_match: IfMatch = None,
) -> OfferRead:
    """Change a draft; with ``If-Match`` (the ETag of a GET) only if nobody changed it since."""
    offer = service.update_offer(
        session,
        offer_id,
        data,
        actor=key.actor,
        settings=settings,
        expected=Expected.from_if_match(if_match),
    )
    response.headers["ETag"] = etag_of(offer.updated_at)
    return offer_read(request, offer, settings, None)


@router.post(
    "/{offer_id}/issue", name="offers:issue", responses={**WITH_ETAG, **error_responses(412)}
)
def issue_offer(
    request: Request,
    response: Response,
    offer_id: str,
    session: SessionDep,
    settings: SettingsDep,
    key: ApiKeyDep,
    if_match: IfMatch = None,
) -> OfferRead:
    """Issue a draft; with ``If-Match`` (the ETag of a GET) only if nobody changed it since."""
    expected = Expected.from_if_match(if_match)
    offer = service.issue_offer(
        session, offer_id, actor=key.actor, settings=settings, expected=expected
    )
    response.headers["ETag"] = etag_of(offer.updated_at)
    return offer_read(request, offer, settings, None)


@router.post(
    "/{offer_id}/revise",
    status_code=status.HTTP_201_CREATED,
    name="offers:revise",
    responses={**WITH_ETAG_CREATED, **error_responses(412)},
)
def revise_offer(
    request: Request,
    response: Response,
    offer_id: str,
    session: SessionDep,
    settings: SettingsDep,
    key: ApiKeyDep,
    if_match: IfMatch = None,
) -> OfferRead:
    """Revise an issued offer into a new draft (the answer, with the draft's ``ETag``); with
    ``If-Match`` (the ETag of the offer's GET) only if nobody changed the offer since."""
    expected = Expected.from_if_match(if_match)
    revision = service.revise_offer(
        session, offer_id, actor=key.actor, settings=settings, expected=expected
    )
    response.headers["ETag"] = etag_of(revision.updated_at)
    return offer_read(request, revision, settings, None)


@router.get(
    "/{offer_id}/pdf",
    name="offers:pdf",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}},
        304: {"description": "Not modified"},
        **error_responses(503),
    },
)
async def download_pdf(
    offer_id: str,
    session: SessionDep,
    settings: SettingsDep,
    renderer: RendererDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    # Async: a request waiting for a renderer holds no thread (API writes need them).
    document = await offer_pdf_async(session, offer_id, renderer=renderer, settings=settings)
    return pdf_response(document, if_none_match)
