"""The Customer API under /api/v1/customers: parse, call one service function, answer."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from app.auth.dependencies import ApiKeyDep, require_api_key
from app.customers import service
from app.customers.schemas import CustomerCreate, CustomerPage, CustomerRead, CustomerUpdate
from app.db import SessionDep
from app.openapi import PathId, error_responses, single_query_values

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


@router.get("/{customer_id}", name="customers:get")
def read_customer(customer_id: PathId, session: SessionDep) -> CustomerRead:
    return CustomerRead.model_validate(service.get_customer(session, customer_id))


@router.patch("/{customer_id}", name="customers:update")
def update_customer(
    customer_id: PathId, data: CustomerUpdate, session: SessionDep, key: ApiKeyDep
) -> CustomerRead:
    customer = service.update_customer(session, customer_id, data, actor=key.actor)
    return CustomerRead.model_validate(customer)


@router.delete("/{customer_id}", status_code=status.HTTP_204_NO_CONTENT, name="customers:delete")
def delete_customer(customer_id: PathId, session: SessionDep, key: ApiKeyDep) -> None:
    """Delete the record; offers keep their own copy of the customer's details."""
    service.delete_customer(session, customer_id, actor=key.actor)
