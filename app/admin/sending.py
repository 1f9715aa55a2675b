"""'Send to customer' in the staff site: a form with the customer's address, a subject and an
editable message; app.notifications.offer_mail queues the mail (PDF attached, tracking link)
and records it in the offer's history."""

from fastapi import APIRouter, Request
from sqlmodel import Session
from starlette.responses import Response

from app import i18n
from app.admin.access import SalesDep
from app.admin.forms import refusal_errors, save_and_redirect
from app.admin.layout import StaffPages, render_staff_page
from app.admin.views import in_session
from app.config import Settings, SettingsDep
from app.db import read_only
from app.notifications import offer_mail
from app.offers import service as offers_service
from app.offers.models import Offer

router = APIRouter(prefix="/offers", include_in_schema=False)


def _load(session: Session, offer_id: str) -> Offer:
    with read_only(session):
        return offers_service.get_offer(session, offer_id)


async def _page(
    request: Request,
    offer: Offer,
    mail: offer_mail.OfferMail,
    settings: Settings,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    context = {
        "title": "Send to customer",
        "offer": offer,
        "mail": mail,
        "errors": errors or {},
        "tracking_url": offer_mail.tracking_url(offer, settings),
        "language_name": i18n.LANGUAGE_NAMES.get(offer.language, offer.language),
    }
    return await render_staff_page(request, "admin/editor/send.html", context, status)


@router.get("/{offer_id}/send", name="sending:form")
async def send_form(
    request: Request, offer_id: str, settings: SettingsDep, staff: SalesDep
) -> Response:
    offer = await in_session(lambda s: _load(s, offer_id))
    return await _page(request, offer, offer_mail.draft_mail(offer, settings), settings)


@router.post("/{offer_id}/send", name="sending:send")
async def send(request: Request, offer_id: str, settings: SettingsDep, staff: SalesDep) -> Response:
    form = await request.form()
    mail = offer_mail.OfferMail(
        to=str(form.get("to", "")).strip(),
        subject=str(form.get("subject", "")),
        message=str(form.get("message", "")),
    )
    renderer = request.app.state.root.state.pdf_renderer
    outcome = await save_and_redirect(
        request,
        (mail, {}),  # the service checks the mail: a refusal names its field
        lambda s, checked: offer_mail.send_offer(
            s, offer_id, checked, renderer=renderer, actor=staff.actor, settings=settings
        ),
        success=lambda _: f"The offer is on its way to {mail.to}, with the PDF attached.",
        to=lambda _: request.url_for("admin:details", identity="offer", pk=offer_id),
        errors_of=refusal_errors,
    )
    if isinstance(outcome, Response):
        return outcome
    offer = await in_session(lambda s: _load(s, offer_id))
    return await _page(request, offer, mail, settings, outcome, 422)


SENDING_PAGES = StaffPages(router=router)
