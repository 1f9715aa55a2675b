"""Webhook endpoints in the staff site (/admin/analytics/webhooks), for admins only: add,
enable or disable, send a test event, rotate the signing secret, read the delivery log. Adding,
enabling (data leaves the company) and rotating (a new secret) ask for the password given
recently (app/admin/sudo.py)."""

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from sqladmin.flash import Flash
from sqlmodel import Session
from starlette.responses import Response

from app.admin import reveal
from app.admin.access import AdminDep, ConfirmedAdminDep, require_role
from app.admin.forms import service_errors, validate
from app.admin.layout import render_staff_page
from app.admin.views import in_session
from app.analytics import webhooks
from app.analytics.models import WebhookEndpoint
from app.analytics.schemas import (
    WEBHOOK_EVENT_TYPES,
    DeliveryRead,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
    WebhookTestResult,
)
from app.auth.staff import Role
from app.config import get_settings
from app.db import read_only
from app.errors import AppError
from app.openapi import PathId

router = APIRouter(
    prefix="/analytics",
    include_in_schema=False,
    dependencies=[Depends(require_role(Role.VIEWER))],
)


# Every type the API offers; a new endpoint starts with the campaign events ticked (the staff
# alerts' offer.* events are chosen on purpose: one per scanned offer and day adds up).
EVENT_TYPES = WEBHOOK_EVENT_TYPES
TICKED_AT_FIRST = ("scan.created", "conversion.created", "offer.accepted", "order.stage_changed")


def _endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(webhooks.list_endpoints(session))


async def _render_webhooks(request: Request, status: int = 200, **extra: Any) -> Response:
    rows = await in_session(_endpoints)
    context: dict[str, Any] = {
        "title": "Webhooks",
        "endpoints": rows,
        "event_types": EVENT_TYPES,
        "form": {"event_types": list(TICKED_AT_FIRST)},
        "errors": {},
        **extra,
    }
    return await render_staff_page(request, "analytics/webhooks.html", context, status)


@router.get("/webhooks", name="analytics:webhooks")
async def webhook_list(request: Request, staff: AdminDep) -> Response:
    return await _render_webhooks(request)


@router.post("/webhooks", name="analytics:webhook_create")
async def webhook_create(request: Request, staff: ConfirmedAdminDep) -> Response:
    form = await request.form()
    values: dict[str, Any] = {
        "url": str(form.get("url", "")).strip(),
        "event_types": [str(t) for t in form.getlist("event_types")],
    }
    data, errors = validate(WebhookEndpointCreate, values)
    if data is not None:

        def work(s: Session) -> WebhookEndpoint:
            return webhooks.create_endpoint(s, data, actor=staff.actor)

        try:
            endpoint = await in_session(work)
        except AppError as exc:
            errors = service_errors(exc)
        else:
            return _show_secret_on_its_page(request, endpoint)
    return await _render_webhooks(request, 422, form=values, errors=errors)


def _show_secret_on_its_page(request: Request, endpoint: WebhookEndpoint) -> Response:
    """Redirect to the endpoint's page, which shows the new secret once: a reload of it sends
    no form again (a second endpoint, another rotation)."""
    reveal.hold(
        request,
        endpoint.secret,
        title="Signing secret",
        label="Copy it into the receiver now: it is shown only this once.",
    )
    return RedirectResponse(request.url_for("analytics:webhook", endpoint_id=endpoint.id), 303)


def _endpoint_page(
    session: Session, endpoint_id: int
) -> tuple[WebhookEndpoint, list[DeliveryRead]]:
    with read_only(session):
        endpoint = webhooks.get_endpoint(session, endpoint_id)
        return endpoint, webhooks.deliveries(session, endpoint_id, limit=100)


@router.get("/webhooks/{endpoint_id}", name="analytics:webhook")
async def webhook_detail(request: Request, endpoint_id: PathId, staff: AdminDep) -> Response:
    endpoint, deliveries = await in_session(lambda s: _endpoint_page(s, endpoint_id))
    context = {
        "title": f"Webhook endpoint {endpoint.id}",
        "endpoint": endpoint,
        "deliveries": deliveries,
    }
    return await render_staff_page(request, "analytics/webhook.html", context)


@router.post("/webhooks/{endpoint_id}/enabled", name="analytics:webhook_enabled")
async def webhook_enabled(
    request: Request, endpoint_id: PathId, staff: ConfirmedAdminDep
) -> Response:
    enable = str((await request.form()).get("enabled", "")) == "true"

    def work(s: Session) -> WebhookEndpoint:
        return webhooks.update_endpoint(
            s, endpoint_id, WebhookEndpointUpdate(enabled=enable), actor=staff.actor
        )

    await in_session(work)
    Flash.success(
        request,
        "Endpoint enabled; its backlog is delivered again." if enable else "Endpoint disabled.",
    )
    return RedirectResponse(request.url_for("analytics:webhook", endpoint_id=endpoint_id), 303)


@router.post("/webhooks/{endpoint_id}/rotate-secret", name="analytics:webhook_rotate")
async def webhook_rotate(
    request: Request, endpoint_id: PathId, staff: ConfirmedAdminDep
) -> Response:
    def work(s: Session) -> WebhookEndpoint:
        return webhooks.rotate_secret(s, endpoint_id, actor=staff.actor)

    return _show_secret_on_its_page(request, await in_session(work))


@router.post("/webhooks/{endpoint_id}/test", name="analytics:webhook_test")
async def webhook_test(request: Request, endpoint_id: PathId, staff: AdminDep) -> Response:
    """Send a test event now; its result shows on the endpoint's page, where a reload sends
    nothing again."""

    def work(s: Session) -> WebhookTestResult:
        return webhooks.send_ping(s, endpoint_id, get_settings())

    result = await in_session(work)
    if result.delivered:
        Flash.success(request, _tested(result), title="Test event delivered")
    else:
        Flash.error(request, _tested(result), title="Test event not delivered")
    return RedirectResponse(request.url_for("analytics:webhook", endpoint_id=endpoint_id), 303)


def _tested(result: WebhookTestResult) -> str:
    took = f"{result.duration_ms} ms"
    if result.delivered:
        return f"The receiver answered HTTP {result.status_code} in {took}."
    error = result.error if result.error.endswith(".") else f"{result.error}."
    return f"{error} Time taken: {took}. Not retried; the endpoint's state is unchanged."
