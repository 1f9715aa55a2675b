"""The offer editor of the staff site: create a draft, edit its header and lines, see totals
while typing, duplicate an offer, and confirm the irreversible steps (issue, activate, revise).

Every save goes through the offers service (create_offer, update_offer, ...), the same
functions the API calls. Totals are computed on the server by app.offers.pricing: htmx posts
the form to ``editor:totals`` as staff type and swaps in the partial; without JavaScript the
"Recalculate" button does the same through a full page.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqladmin.flash import Flash
from sqlalchemy import false, or_
from sqlmodel import Session, col, select
from starlette.datastructures import FormData
from starlette.responses import Response

from app import i18n
from app.admin.access import SalesDep, StaffDep
from app.admin.editor_forms import (
    CUSTOMER_FIELDS,
    Errors,
    OfferForm,
    blank_line,
    edit_lines,
    field_to_show,
    preview,
    read_form,
    to_create,
    to_update,
)
from app.admin.forms import save_and_redirect
from app.admin.layout import MenuLink, StaffPages, render_staff_page
from app.admin.users import Staff
from app.admin.views import in_session
from app.auth.staff import Role, StaffUser
from app.config import Settings, SettingsDep
from app.customers import service as customers_service
from app.db import read_only
from app.errors import AppError, Unprocessable
from app.fields import MAX_ROW_ID
from app.formats import DecimalMark
from app.offers import service as offers_service
from app.offers import terms
from app.offers.models import Offer, OfferStatus
from app.offers.schemas import OfferUpdate
from app.versions import VERSION_FIELD, Expected, version_of

router = APIRouter(prefix="/offers", include_in_schema=False)
PARTIAL = "admin/editor/_totals.html"
# The owner as the page showed it: a save changes the owner only when the admin chose another.
OWNER_WAS = "owner_was"


@dataclass(frozen=True)
class Step:
    pressed: bool
    focus: str | None = None


def offer_form(offer: Offer, mark: DecimalMark) -> OfferForm:
    """The editor's fields filled from a stored offer."""
    header = {
        "customer_id": str(offer.customer_id or ""),
        "customer_reference": offer.customer_reference,
        "currency": offer.currency,
        "language": offer.language,
        "valid_until": offer.valid_until.isoformat(),
        "notes": offer.notes,
        "terms": offer.terms,
        "owner_id": str(offer.owner_id or ""),
        OWNER_WAS: str(offer.owner_id or ""),
        VERSION_FIELD: version_of(offer.updated_at),
    }
    customer = (
        {}
        if offer.customer_id
        else {name: getattr(offer, f"customer_{name}") for name in CUSTOMER_FIELDS}
    )
    lines = [
        {
            "description": line.description,
            "quantity": mark.field_value(line.quantity),
            "unit": line.unit,
            "unit_price": mark.field_value(line.unit_price),
            "discount_percent": mark.field_value(line.discount_percent),
            "vat_rate": mark.field_value(line.vat_rate),
        }
        for line in offer.lines
    ]
    return OfferForm(header, customer, lines, mark)


def _row_id(text: str) -> int | None:
    """The id typed, when a row can have it (a longer one overflows the column's type)."""
    if not (text.isascii() and text.isdecimal()) or len(text) > len(str(MAX_ROW_ID)):
        return None
    return int(text) if 1 <= int(text) <= MAX_ROW_ID else None


def _choices(session: Session, with_owners: bool, owner_id: str) -> dict[str, Any]:
    with read_only(session):
        customers, _ = customers_service.search_customers(session, limit=500)
        # Active users, and the owner as they are: a leaver's draft shows them, not "Nobody".
        known = _row_id(owner_id)
        current = col(StaffUser.id) == known if known is not None else false()
        owners = (
            session.exec(
                select(StaffUser)
                .where(or_(col(StaffUser.is_active), current))
                .order_by(col(StaffUser.email))
            ).all()
            if with_owners
            else []
        )
        return {
            "customers": customers,
            "templates": terms.list_templates(session),
            "owners": owners,
        }


async def _editor(
    request: Request,
    staff: Staff,
    settings: Settings,
    form: OfferForm,
    *,
    offer: Offer | None = None,
    errors: Errors | None = None,
    status: int = 200,
    focus: str | None = None,
) -> Response:
    errors = errors or {}
    editable = staff.can(Role.SALES) and (offer is None or offer.status == OfferStatus.DRAFT)
    owner_id = form.value("owner_id")
    choices = await in_session(lambda s: _choices(s, staff.can(Role.ADMIN), owner_id))
    context = {
        "title": "New offer" if offer is None else f"Offer {offer.tracking_id}",
        "offer": offer,
        "form": form,
        "errors": errors,
        "editable": editable,
        # After a refused save, the first field to correct, which may be screens down.
        "focus": focus or next(iter(errors), None),
        "preview": preview(form, settings.default_currency),
        "language_names": i18n.LANGUAGE_NAMES,
        "default_language": settings.default_language,
        **choices,
    }
    return await render_staff_page(request, "admin/editor/offer.html", context, status)


def _apply_template(
    form: OfferForm, op: str, raw: FormData, templates: dict[int | None, Any]
) -> bool:
    if op not in ("use-terms", "use-notes"):
        return False
    kind = op.removeprefix("use-")
    chosen = str(raw.get(f"{kind}_template", ""))
    template = templates.get(int(chosen)) if chosen.isdecimal() else None
    if template is not None:
        form.header[kind] = template.body
    return True


async def _form_step(raw: FormData, form: OfferForm) -> Step:
    """A button that only changes the form (lines, templates, recalculate): whether it was
    pressed, and the field to show afterwards."""
    op = str(raw.get("op", "save"))
    if op == "recalc":
        return Step(True)
    if edit_lines(form, op):
        return Step(True, field_to_show(op, len(form.lines)))
    if op.startswith("use-"):
        found = await in_session(lambda s: {t.id: t for t in terms.list_templates(s)})
        return Step(_apply_template(form, op, raw, found), op.removeprefix("use-"))
    return Step(False)


def _service_error(exc: AppError) -> Errors:
    """A refusal beside the field its location names (``lines-0-quantity``, as the form's
    names go); any other error is the staff site's error page."""
    if not isinstance(exc, Unprocessable):
        raise exc
    loc = [str(part) for part in exc.loc if part != "body"]
    return {"-".join(loc) or "form": exc.detail}


@router.get("/new", name="editor:new")
async def new_offer(
    request: Request,
    settings: SettingsDep,
    staff: StaffDep,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
) -> Response:
    valid_until = offers_service.today(settings) + timedelta(days=settings.default_validity_days)
    header = {
        "currency": settings.default_currency,
        "valid_until": valid_until.isoformat(),
        "customer_id": str(customer_id or ""),
    }
    form = OfferForm(header=header, lines=[blank_line()], mark=staff.decimal_mark)
    return await _editor(request, staff, settings, form)


@router.post("/new", name="editor:create")
async def create_offer(request: Request, settings: SettingsDep, staff: SalesDep) -> Response:
    raw = await request.form()
    form = read_form(raw, staff.decimal_mark)
    if (step := await _form_step(raw, form)).pressed:
        return await _editor(request, staff, settings, form, focus=step.focus)
    outcome = await save_and_redirect(
        request,
        to_create(form),
        lambda s, data: offers_service.create_offer(
            s, data, actor=staff.actor, settings=settings, owner_id=staff.id
        ),
        success=lambda _: "Draft saved. Preview its PDF, then issue it when it is ready.",
        to=lambda offer: request.url_for("editor:edit", offer_id=offer.id),
        errors_of=_service_error,
    )
    if isinstance(outcome, Response):
        return outcome
    return await _editor(request, staff, settings, form, errors=outcome, status=422)


def _load(session: Session, offer_id: str) -> Offer:
    with read_only(session):
        return offers_service.get_offer(session, offer_id)


@router.get("/{offer_id}/edit", name="editor:edit")
async def edit_offer(
    request: Request, offer_id: str, settings: SettingsDep, staff: StaffDep
) -> Response:
    offer = await in_session(lambda s: _load(s, offer_id))
    return await _editor(
        request, staff, settings, offer_form(offer, staff.decimal_mark), offer=offer
    )


@router.post("/{offer_id}/edit", name="editor:save")
async def save_offer(
    request: Request, offer_id: str, settings: SettingsDep, staff: SalesDep
) -> Response:
    raw = await request.form()
    form = read_form(raw, staff.decimal_mark)
    form.header["owner_id"] = str(raw.get("owner_id", ""))
    form.header[OWNER_WAS] = str(raw.get(OWNER_WAS, ""))
    offer = await in_session(lambda s: _load(s, offer_id))
    if (step := await _form_step(raw, form)).pressed:
        return await _editor(request, staff, settings, form, offer=offer, focus=step.focus)
    outcome = await save_and_redirect(
        request,
        to_update(form),
        lambda s, data: _save_draft(s, offer_id, data, staff, form, settings),
        success=lambda _: "Draft saved.",
        to=lambda saved: request.url_for("editor:edit", offer_id=saved.id),
        errors_of=_service_error,
    )
    if isinstance(outcome, Response):
        return outcome
    return await _editor(request, staff, settings, form, offer=offer, errors=outcome, status=422)


def _save_draft(
    session: Session,
    offer_id: str,
    data: OfferUpdate,
    staff: Staff,
    form: OfferForm,
    settings: Settings,
) -> Offer:
    expected = Expected.from_form(form.value(VERSION_FIELD))
    # Only an admin hands an offer to someone else; for others the field is not shown. Only
    # a choice they made counts: the owner as the page showed it may have been handed over
    # since (a leaver's offers), which leaves the draft's version as it was.
    owner = form.value("owner_id")
    chosen = staff.can(Role.ADMIN) and owner != form.value(OWNER_WAS)
    if owner and _row_id(owner) is None:  # a forged form: no row has this id
        raise Unprocessable(f"No staff user with id {owner[:20]}.", loc=("owner_id",))
    new_owner = offers_service.Owner(_row_id(owner))
    return offers_service.update_offer(
        session,
        offer_id,
        data,
        actor=staff.actor,
        settings=settings,
        expected=expected,
        owner=new_owner if chosen else None,
    )


@router.post("/editor/totals", name="editor:totals")
async def totals(request: Request, settings: SettingsDep, staff: SalesDep) -> Response:
    """The totals partial for the lines as typed (htmx, while staff type)."""
    form = read_form(await request.form(), staff.decimal_mark, keep_blank=True)
    # The request: the partial writes amounts with the user's decimal mark (app.admin.site).
    context = {"request": request, "preview": preview(form, settings.default_currency), "oob": True}
    # The same partial the page includes, rendered through jinja-partials (see site.py).
    render_partial = request.app.state.admin.templates.env.globals["render_partial"]
    html = await anyio.to_thread.run_sync(lambda: str(render_partial(PARTIAL, **context)))
    return HTMLResponse(html, headers={"Vary": "HX-Request"})


@router.post("/{offer_id}/duplicate", name="editor:duplicate")
async def duplicate(
    request: Request, offer_id: str, settings: SettingsDep, staff: SalesDep
) -> Response:
    copy = await in_session(
        lambda s: offers_service.duplicate_offer(
            s, offer_id, actor=staff.actor, settings=settings, owner_id=staff.id
        )
    )
    Flash.success(request, f"A new draft, copied from offer {offer_id}. You are its owner.")
    return RedirectResponse(request.url_for("editor:edit", offer_id=copy.id), 303)


CONFIRMATIONS = {
    "issue": (
        "staff:issue",
        "Issue this offer?",
        "Once issued, the offer and its PDF never change again: to change anything later you "
        "revise it into a new offer.",
    ),
    "activate": (
        "staff:activate",
        "Activate this offer as an order?",
        "Its tracking ID then opens the order page for anyone who has it. This cannot be undone.",
    ),
    "revise": (
        "staff:revise",
        "Revise this offer?",
        "A new draft with a new ID is created; the customer's copy is marked superseded. "
        "This cannot be undone.",
    ),
}


# The steps whose button checks the version the page was opened from (app.versions).
VERSIONED_STEPS = frozenset({"issue", "activate", "revise"})
# The version of the page the step's link was on: the page asks about what its reader saw.
VersionQuery = Annotated[str | None, Query(alias=VERSION_FIELD, max_length=40)]


async def _confirm(
    request: Request, offer_id: str, step: str, version: str | None = None
) -> Response:
    offer = await in_session(lambda s: _load(s, offer_id))
    route, question, consequence = CONFIRMATIONS[step]
    if step in VERSIONED_STEPS:
        version = version or version_of(offer.updated_at)
    context = {
        "title": question,
        "offer": offer,
        "version": version if step in VERSIONED_STEPS else None,
        "question": question,
        "consequence": consequence,
        "action_url": request.url_for(route, offer_id=offer.id),
        "label": question.removesuffix("?").split(" this")[0],
    }
    return await render_staff_page(request, "admin/editor/confirm.html", context)


@router.get("/{offer_id}/issue", name="editor:confirm_issue")
async def confirm_issue(
    request: Request, offer_id: str, staff: SalesDep, version: VersionQuery = None
) -> Response:
    return await _confirm(request, offer_id, "issue", version)


@router.get("/{offer_id}/activate", name="editor:confirm_activate")
async def confirm_activate(
    request: Request, offer_id: str, staff: SalesDep, version: VersionQuery = None
) -> Response:
    return await _confirm(request, offer_id, "activate", version)


@router.get("/{offer_id}/revise", name="editor:confirm_revise")
async def confirm_revise(
    request: Request, offer_id: str, staff: SalesDep, version: VersionQuery = None
) -> Response:
    return await _confirm(request, offer_id, "revise", version)


EDITOR_PAGES = StaffPages(
    router=router,
    menu=[MenuLink("New offer", "editor:new", Role.SALES, icon="fa-solid fa-file-circle-plus")],
)
