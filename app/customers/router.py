"""The Customer API under /api/v1/customers: parse, call one service function, answer."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from app.auth.dependencies import ApiKeyDep, require_api_key
from app.customers import service
from app.customers.schemas import CustomerCreate, CustomerPage, CustomerRead, CustomerUpdate
from app.db import SessionDep
from app.openapi import WITH_ETAG, IfMatch, PathId, error_responses, single_query_values
from app.versions import Expected, etag_of

router = APIRouter(
    prefix="/api/v1/customers",
    tags=["customers"],
    dependencies=[Depends(require_api_key), Depends(single_query_values)],
    responses=error_responses(400, 401, 404, 413),
)


@router.post("", status_code=status.HTTP_201_CREATED, name="customers:create")
def create_customer(data: CustomerCreate, session: SessionDep, key: ApiKeyDep) -> CustomerRead:
    customer = service.create_customer(session, data, actor=key.actor)
    return CustomerRead.model_validate(customer)


@router.get("", name="customers:list")
def list_customers(
    session: SessionDep,
    q: Annotated[str, Query(max_length=200, description="company, contact, e-mail or VAT ID")] = "",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> CustomerPage:
    customers, total = service.search_customers(session, q, limit=limit, offset=offset)
    items = [CustomerRead.model_validate(c) for c in customers]
    return CustomerPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/{customer_id}", name="customers:get", responses=WITH_ETAG)
def read_customer(customer_id: PathId, session: SessionDep, response: Response) -> CustomerRead:
    customer = service.get_customer(session, customer_id)
    response.headers["ETag"] = etag_of(customer.updated_at)
    return CustomerRead.model_validate(customer)


@router.patch(
    "/{customer_id}",
    name="customers:update",
    responses={**WITH_ETAG, **error_responses(412)},
)
def update_customer(
    customer_id: PathId,
    data: CustomerUpdate,
    session: SessionDep,
    key: ApiKeyDep,
    response: Response,
    if_match: IfMatch = None,
) -> CustomerRead:
    """Change some fields; with ``If-Match`` (the ETag of a GET) only if nobody changed the
    record since."""
    expected = Expected.from_if_match(if_match)
    customer = service.update_customer(
        session, customer_id, data, actor=key.actor, expected=expected
    )
    response.headers["ETag"] = etag_of(customer.updated_at)
    return CustomerRead.model_validate(customer)


@router.delete(
    "/{customer_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    name="customers:delete",
    responses=error_responses(412),
)
def delete_customer(
    customer_id: PathId, session: SessionDep, key: ApiKeyDep, if_match: IfMatch = None
) -> None:
    """Delete the record, with ``If-Match`` only if nobody changed it since; offers keep their
    own copy of the customer's details."""
    expected = Expected.from_if_match(if_match)
    service.delete_customer(session, customer_id, actor=key.actor, expected=expected)
