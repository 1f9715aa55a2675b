"""Customer records in the staff site: search, create and edit (sales and admins; viewers read).

Changes go through app.customers.service, the functions the API calls; a form that does not
validate comes back with each error beside its field and what was typed kept.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from sqladmin.flash import Flash
from sqlmodel import Session
from starlette.responses import Response

from app.admin.access import SalesDep, StaffDep
from app.admin.forms import Errors, refusal_errors, save_and_redirect, validate
from app.admin.layout import MenuLink, StaffPages, render_staff_page
from app.admin.views import in_session
from app.auth.staff import Role
from app.config import SettingsDep
from app.customers import service
from app.customers.models import Customer
from app.customers.schemas import CustomerCreate, CustomerUpdate
from app.db import read_only
from app.i18n import LANGUAGE_NAMES
from app.openapi import PathId
from app.versions import VERSION_FIELD, Expected, version_of

router = APIRouter(prefix="/customers", include_in_schema=False)
FIELDS = tuple(CustomerCreate.model_fields)
PAGE_SIZE = 50


def _search(session: Session, term: str, offset: int) -> tuple[Any, int]:
    with read_only(session):
        return service.search_customers(session, term, limit=PAGE_SIZE, offset=offset)


@router.get("", name="customer_pages:list")
async def list_page(
    request: Request,
    staff: StaffDep,
    q: Annotated[str, Query(max_length=200)] = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    customers, total = await in_session(lambda s: _search(s, q, offset))
    context = {
        "title": "Customers",
        "customers": customers,
        "total": total,
        "q": q,
        "offset": offset,
        "page_size": PAGE_SIZE,
    }
    return await render_staff_page(request, "admin/customers/list.html", context)


async def _form_page(
    request: Request,
    values: dict[str, str],
    *,
    customer: Customer | None = None,
    errors: Errors | None = None,
    status: int = 200,
) -> Response:
    context = {
        "title": customer.company if customer else "New customer",
        "customer": customer,
        "form": values,
        "errors": errors or {},
        "language_names": LANGUAGE_NAMES,
    }
    return await render_staff_page(request, "admin/customers/form.html", context, status)


@router.get("/new", name="customer_pages:new")
async def new_page(request: Request, staff: StaffDep, settings: SettingsDep) -> Response:
    return await _form_page(request, {"language": settings.default_language})


def _values(form: Any) -> dict[str, str]:
    return {name: str(form.get(name, "")) for name in FIELDS}


@router.post("/new", name="customer_pages:create")
async def create(request: Request, staff: SalesDep) -> Response:
    values = _values(await request.form())
    outcome = await save_and_redirect(
        request,
        validate(CustomerCreate, values),
        lambda s, data: service.create_customer(s, data, actor=staff.actor),
        success=lambda customer: f"Customer {customer.company} saved.",
        to=lambda customer: request.url_for("customer_pages:edit", customer_id=customer.id),
        errors_of=refusal_errors,
    )
    if isinstance(outcome, Response):
        return outcome
    return await _form_page(request, values, errors=outcome, status=422)


def _load(session: Session, customer_id: int) -> Customer:
    with read_only(session):
        return service.get_customer(session, customer_id)


@router.get("/{customer_id}", name="customer_pages:edit")
async def edit_page(request: Request, customer_id: PathId, staff: StaffDep) -> Response:
    customer = await in_session(lambda s: _load(s, customer_id))
    values = {name: str(getattr(customer, name)) for name in FIELDS}
    values[VERSION_FIELD] = version_of(customer.updated_at)
    return await _form_page(request, values, customer=customer)


@router.post("/{customer_id}", name="customer_pages:save")
async def save(request: Request, customer_id: PathId, staff: SalesDep) -> Response:
    form = await request.form()
    values = _values(form)
    expected = Expected.from_form(form.get(VERSION_FIELD))
    outcome = await save_and_redirect(
        request,
        validate(CustomerUpdate, values),
        lambda s, data: service.update_customer(
            s, customer_id, data, actor=staff.actor, expected=expected
        ),
        success=lambda customer: (
            f"Customer {customer.company} saved. Issued offers keep their copy."
        ),
        to=lambda _: request.url_for("customer_pages:edit", customer_id=customer_id),
        errors_of=refusal_errors,
    )
    if isinstance(outcome, Response):
        return outcome
    customer = await in_session(lambda s: _load(s, customer_id))
    values[VERSION_FIELD] = str(form.get(VERSION_FIELD, ""))  # a refusal keeps the form's version
    return await _form_page(request, values, customer=customer, errors=outcome, status=422)


@router.post("/{customer_id}/delete", name="customer_pages:delete")
async def delete(request: Request, customer_id: PathId, staff: SalesDep) -> Response:
    form = await request.form()
    customer = await in_session(lambda s: _load(s, customer_id))
    if form.get("confirmed") != "yes":
        context = {"title": f"Delete {customer.company}?", "customer": customer}
        return await render_staff_page(request, "admin/customers/confirm_delete.html", context)
    await in_session(lambda s: service.delete_customer(s, customer_id, actor=staff.actor))
    Flash.success(request, f"Customer {customer.company} deleted; offers keep their copy.")
    return RedirectResponse(request.url_for("customer_pages:list"), 303)


CUSTOMER_PAGES = StaffPages(
    router=router,
    menu=[MenuLink("Customers", "customer_pages:list", Role.VIEWER, icon="fa-solid fa-building")],
)
