"""The staff site's own pages: sign-in and sign-out, and the offer and order actions.

Every route names its lowest role through StaffDep / SalesDep / AdminDep (Confirmed...: a
sensitive action, app/admin/sudo.py); every POST has
passed the CSRF middleware before it gets here.
"""

from datetime import date
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqladmin.flash import Flash
from sqlmodel import Session
from starlette.datastructures import URL, FormData
from starlette.responses import Response

from app.admin import throttle, twofactor, users
from app.admin.access import (
    ConfirmedAdminDep,
    SalesDep,
    StaffDep,
    current_staff,
    end_session,
    hold_for_second_factor,
    safe_next,
    start_session,
)
from app.admin.forms import (
    Errors,
    act_and_redirect,
    refusal_errors,
    save_and_redirect,
    validate,
)
from app.admin.layout import render_staff_page
from app.admin.users import InvalidCredentials
from app.admin.views import in_session
from app.admin.views.orders import BULK_TITLE, _orders_and_stages
from app.config import Settings, SettingsDep
from app.db import SessionDep, read_only
from app.errors import AppError, Unprocessable
from app.offers import service as offers_service
from app.offers.dependencies import pdf_response
from app.offers.documents import offer_pdf_async
from app.offers.ids import hyphenate_tracking_id
from app.offers.models import Offer
from app.offers.pdf import PdfRenderer
from app.templating import format_date
from app.tracking import service as tracking_service
from app.tracking.models import OrderStage
from app.tracking.schemas import StageUpdateCreate
from app.versions import VERSION_FIELD, Expected
from app.web import client_key

router = APIRouter(include_in_schema=False)
STAGE_FIELDS = (
    "stage",
    "public_note",
    "internal_note",
    "expected_delivery_date",
    "carrier",
    "tracking_number",
    "tracking_link",
)


async def _render(
    request: Request, template: str, context: dict[str, Any], status: int = 200
) -> Response:
    return await render_staff_page(request, template, context, status)


STAGE_UPDATE_TITLE = {"title": "Add stage update"}


@router.get("/login", name="staff:login")
async def login_page(request: Request, next: str = "") -> Response:
    if await current_staff(request) is not None:
        return RedirectResponse(safe_next(next) or str(request.url_for("admin:index")), 303)
    context = {"next": safe_next(next), "email": "", "error": ""}
    return await _render(request, "admin/login.html", context)


@router.post("/login", name="staff:login_submit")
async def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    who = throttle.attempt(email, client_key(request, settings), key=settings.resolved_secret_key())
    try:
        staff = await anyio.to_thread.run_sync(users.sign_in, session, email, password, who)
    except (InvalidCredentials, throttle.TooManyLogins) as exc:
        context = {"next": safe_next(next), "email": email, "error": exc.detail}
        response = await _render(request, "admin/login.html", context, exc.status_code)
        response.headers.update(exc.headers())
        return response
    step = await in_session(lambda s: twofactor.prepare_second_step(s, staff, settings))
    if step is not twofactor.SecondStep.NONE:
        hold_for_second_factor(request, staff, safe_next(next))
        return RedirectResponse(request.url_for("staff:login_2fa"), 303)
    await start_session(request, staff, second_factor=False)
    return RedirectResponse(safe_next(next) or str(request.url_for("admin:index")), 303)


@router.get("/logout", name="staff:logout_page")
async def logout_page(request: Request, staff: StaffDep) -> Response:
    """Signing out changes state, so the link leads to a form, never straight out."""
    return await _render(request, "admin/logout.html", {"title": "Sign out"})


@router.post("/logout", name="staff:logout")
async def logout(request: Request) -> Response:
    await end_session(request)
    Flash.info(request, "You are signed out.")
    return RedirectResponse(request.url_for("staff:login"), 303)


def _details_url(request: Request, identity: str, offer_id: str) -> URL:
    return request.url_for("admin:details", identity=identity, pk=offer_id)


@router.get("/offers/{offer_id}/pdf", name="staff:offer_pdf")
async def download_pdf(
    offer_id: str, session: SessionDep, settings: SettingsDep, request: Request, staff: StaffDep
) -> Response:
    renderer: PdfRenderer = request.app.state.root.state.pdf_renderer
    document = await offer_pdf_async(session, offer_id, renderer=renderer, settings=settings)
    return pdf_response(document, None)


# The version of the offer the confirmation page was opened from (app.versions).
VersionField = Annotated[str, Form(alias=VERSION_FIELD, max_length=40)]


@router.post("/offers/{offer_id}/activate", name="staff:activate")
async def activate(
    request: Request,
    offer_id: str,
    settings: SettingsDep,
    staff: SalesDep,
    version: VersionField = "",
) -> Response:
    expected = Expected.from_form(version)
    return await act_and_redirect(
        request,
        lambda s: tracking_service.activate_offer(
            s, offer_id, actor=staff.actor, settings=settings, expected=expected
        ),
        success=lambda offer: (
            f"Order {hyphenate_tracking_id(offer.tracking_id)} is active: its tracking ID opens it."
        ),
        to=lambda offer: _details_url(request, "order", offer.id),
        refused="Not activated",
        back=_details_url(request, "offer", offer_id),
    )


@router.post("/offers/{offer_id}/issue", name="staff:issue")
async def issue(
    request: Request,
    offer_id: str,
    settings: SettingsDep,
    staff: SalesDep,
    version: VersionField = "",
) -> Response:
    expected = Expected.from_form(version)
    return await act_and_redirect(
        request,
        lambda s: offers_service.issue_offer(
            s, offer_id, actor=staff.actor, settings=settings, expected=expected
        ),
        success=lambda _: "The offer is issued: its PDF and QR code are final.",
        to=lambda _: _details_url(request, "offer", offer_id),
        refused="Not issued",
        back=_details_url(request, "offer", offer_id),
    )


@router.post("/offers/{offer_id}/revise", name="staff:revise")
async def revise(
    request: Request,
    offer_id: str,
    settings: SettingsDep,
    staff: SalesDep,
    version: VersionField = "",
) -> Response:
    expected = Expected.from_form(version)
    return await act_and_redirect(
        request,
        lambda s: offers_service.revise_offer(
            s, offer_id, actor=staff.actor, settings=settings, expected=expected
        ),
        success=lambda revision: (
            f"Revision {revision.id} created as a draft; the old offer is superseded."
        ),
        to=lambda revision: _details_url(request, "offer", revision.id),
        refused="Not revised",
        back=_details_url(request, "offer", offer_id),
    )


def _stage_form(form: FormData) -> dict[str, str]:
    return {name: str(form.get(name, "")).strip() for name in STAGE_FIELDS}


def _validate_stage_update(
    values: dict[str, str], settings: Settings
) -> tuple[StageUpdateCreate | None, Errors]:
    # Empty optional fields take the schema's default; an empty stage is refused by name.
    filled = {k: v for k, v in values.items() if v != "" or k == "stage"}
    data, errors = validate(StageUpdateCreate, filled)
    if errors and "expected_delivery_date" not in errors:
        # The service checks the date only once the rest is valid: say it now too, or the
        # person corrects one mistake and is sent back for the next.
        errors |= _date_refusal(filled.get("expected_delivery_date", ""), settings)
    return data, errors


def _date_refusal(typed: str, settings: Settings) -> Errors:
    try:
        expected = date.fromisoformat(typed)
    except ValueError:
        return {}
    refusal = tracking_service.delivery_before_update(expected, None, settings)
    return {"expected_delivery_date": refusal.explained(format_date)} if refusal else {}


def _stage_refusal(exc: AppError) -> Errors:
    """A refused field (the stage, the expected delivery) beside it, its dates as the page
    writes dates."""
    if isinstance(exc, tracking_service.DeliveryBeforeUpdate):
        return {"expected_delivery_date": exc.explained(format_date)}
    return refusal_errors(exc)


def _field_or_orders(exc: AppError) -> Errors:
    """A refused field beside it (``_stage_refusal``); else an order not found."""
    if isinstance(exc, Unprocessable) and exc.loc:
        return _stage_refusal(exc)
    return {"orders": f"{exc.detail} Nothing was changed."}


def _orders(n: int) -> str:
    return f"{n} order{'s' if n != 1 else ''}"


def _order_and_stages(session: Session, offer_id: str) -> tuple[Offer, list[OrderStage]]:
    with read_only(session):
        offer = tracking_service.find_order(session, offer_id)
        return offer, list(tracking_service.list_stages(session))


@router.get("/orders/{offer_id}/stage-update", name="staff:stage_update_form")
async def stage_update_form(request: Request, offer_id: str, staff: SalesDep) -> Response:
    offer, stages = await in_session(lambda s: _order_and_stages(s, offer_id))
    upcoming = await in_session(lambda s: _next_stage(s, offer))
    context = {"offer": offer, "stages": stages, "form": {"stage": upcoming}, "errors": {}}
    return await _render(request, "admin/stage_update.html", context | STAGE_UPDATE_TITLE)


def _next_stage(session: Session, offer: Offer) -> str:
    """The stage after the order's current one: the update staff most likely post next."""
    with read_only(session):
        steps = tracking_service.build_timeline(session, offer).steps
    return next((step.stage.key for step in steps if step.state == "upcoming"), "")


@router.post("/orders/{offer_id}/stage-update", name="staff:stage_update")
async def add_stage_update(
    request: Request, offer_id: str, settings: SettingsDep, staff: SalesDep
) -> Response:
    values = _stage_form(await request.form())
    outcome = await save_and_redirect(
        request,
        _validate_stage_update(values, settings),
        lambda s, data: tracking_service.add_stage_update(
            s, offer_id, data, actor=staff.actor, settings=settings
        ),
        success=lambda added: (
            f"Stage update “{added.stage.label}” added; the customer sees it now."
        ),
        to=lambda added: request.url_for("admin:details", identity="order", pk=added.offer.id),
        errors_of=_stage_refusal,
    )
    if isinstance(outcome, Response):
        return outcome
    offer, stages = await in_session(lambda s: _order_and_stages(s, offer_id))
    context = {"offer": offer, "stages": stages, "form": values, "errors": outcome}
    return await _render(request, "admin/stage_update.html", context | STAGE_UPDATE_TITLE, 422)


@router.post("/orders/bulk-stage-update", name="staff:bulk_stage_update")
async def bulk_stage_update(request: Request, settings: SettingsDep, staff: SalesDep) -> Response:
    form = await request.form()
    pks = [str(pk) for pk in form.getlist("pks") if pk]
    values = _stage_form(form)
    if not pks:
        Flash.warning(request, "Select at least one order first.")
        return RedirectResponse(request.url_for("admin:list", identity="order"), 303)
    outcome = await save_and_redirect(
        request,
        _validate_stage_update(values, settings),
        lambda s, data: tracking_service.add_stage_updates(
            s, pks, data, actor=staff.actor, settings=settings
        ),
        success=lambda offers: f"Stage update added to {_orders(len(offers))}.",
        to=lambda _: request.url_for("admin:list", identity="order"),
        errors_of=_field_or_orders,
    )
    if isinstance(outcome, Response):
        return outcome
    orders, stages = await in_session(lambda s: _orders_and_stages(s, pks))
    context = {"orders": orders, "stages": stages, "form": values, "errors": outcome}
    return await _render(request, "admin/bulk_stage_update.html", context | BULK_TITLE, 422)


@router.get("/settings", name="staff:settings")
async def settings_page(
    request: Request, settings: SettingsDep, staff: ConfirmedAdminDep
) -> Response:
    rows = sorted((f"OFFERTRACK_{k.upper()}", v) for k, v in settings.for_display().items())
    context = {"rows": rows, "title": "Settings"}
    return await _render(request, "admin/settings.html", context)
