"""The customer's questions about an offer in the staff site: read them, and delete one (the
deletion path of its text and address; the offer's history keeps only its reference)."""

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from sqladmin.flash import Flash
from sqlmodel import Session
from starlette.responses import Response

from app.admin.access import SalesDep, StaffDep
from app.admin.layout import StaffPages, render_staff_page
from app.admin.views import in_session
from app.config import Settings, SettingsDep
from app.db import read_only
from app.notifications import questions
from app.notifications.models import CustomerQuestion
from app.notifications.offer_mail import draft_mail
from app.offers import service as offers_service
from app.offers.models import Offer

router = APIRouter(prefix="/offers", include_in_schema=False)


def _load(session: Session, offer_id: str) -> tuple[Offer, list[CustomerQuestion]]:
    with read_only(session):
        offer = offers_service.get_offer(session, offer_id)
        return offer, list(questions.offer_questions(session, offer.id))


def answer_link(offer: Offer, question: CustomerQuestion, settings: Settings) -> str:
    """A mail to the asker, its subject the offer's (in the offer's language, as the offer
    was sent) after "Re:", the question quoted below the cursor."""
    subject = f"Re: {draft_mail(offer, settings).subject}"
    quoted = "".join(f"> {line}\n" for line in question.message.splitlines())
    body = "\n\n" + quoted
    return f"mailto:{quote(question.email, safe='@')}?subject={quote(subject)}&body={quote(body)}"


@router.get("/{offer_id}/questions", name="questions:list")
async def question_list(
    request: Request, offer_id: str, staff: StaffDep, settings: SettingsDep
) -> Response:
    offer, asked = await in_session(lambda s: _load(s, offer_id))
    answers = {q.id: answer_link(offer, q, settings) for q in asked}
    context = {
        "title": "Customer questions",
        "offer": offer,
        "questions": asked,
        "answers": answers,
    }
    return await render_staff_page(request, "admin/questions.html", context)


@router.post("/{offer_id}/questions/{question_id}/delete", name="questions:delete")
async def delete_question(
    request: Request, offer_id: str, question_id: str, staff: SalesDep, settings: SettingsDep
) -> Response:
    await in_session(
        lambda s: questions.delete_question(
            s, offer_id, question_id, actor=staff.actor, settings=settings
        )
    )
    Flash.success(request, "The question and its personal data are deleted.")
    return RedirectResponse(request.url_for("questions:list", offer_id=offer_id), 303)


QUESTION_PAGES = StaffPages(router=router)
