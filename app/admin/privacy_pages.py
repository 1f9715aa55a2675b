"""The data protection officer's requests in the staff site (admins): what is held about an
e-mail address, as a page and as the JSON file `offertrack contact-data` prints, and erasing it
after a page that says what goes and what stays.

The address travels in POST bodies only, never in a URL: addresses in URLs land in access
logs and browser history. Nor does it go into a flash message (the session cookie is signed,
not encrypted): the erasure is reported by its counts and the audit log's reference. Every
page asks for the password given lately (sudo mode, app.admin.sudo): each shows or erases a
person's data held anywhere in the system."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from sqladmin.flash import Flash
from sqlmodel import Session
from starlette.responses import Response

from app import privacy
from app.admin.access import ConfirmedAdminDep
from app.admin.forms import Errors, service_errors
from app.admin.layout import MenuLink, StaffPages, render_staff_page
from app.admin.views import in_session
from app.auth.staff import Role
from app.config import Settings, SettingsDep
from app.db import read_only, utcnow
from app.errors import Unprocessable

router = APIRouter(prefix="/personal-data", include_in_schema=False)
TITLE = "Personal data"


async def _typed(request: Request) -> str:
    return str((await request.form()).get("email", "")).strip()


async def _page(
    request: Request,
    email: str = "",
    places: list[privacy.Place] | None = None,
    errors: Errors | None = None,
    status: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "title": TITLE,
        "email": email,
        "places": places,
        "errors": errors or {},
        "not_held": privacy.NOT_HELD,
        "backups": privacy.BACKUPS,
    }
    return await render_staff_page(request, "admin/privacy/page.html", context, status)


def _held(session: Session, settings: Settings, email: str) -> list[privacy.Place]:
    with read_only(session):
        return privacy.held_places(session, settings, email)


def _report(session: Session, settings: Settings, email: str) -> dict[str, Any]:
    with read_only(session):
        return privacy.contact_data(session, settings, email)


@router.get("", name="privacy_pages:form")
async def form_page(request: Request, staff: ConfirmedAdminDep) -> Response:
    return await _page(request)


@router.post("", name="privacy_pages:lookup")
async def lookup(request: Request, staff: ConfirmedAdminDep, settings: SettingsDep) -> Response:
    email = await _typed(request)
    try:
        places = await in_session(lambda s: _held(s, settings, email))
    except Unprocessable as exc:
        return await _page(request, email, errors=service_errors(exc), status=422)
    return await _page(request, privacy.normalized(email), places)


@router.post("/download", name="privacy_pages:download")
async def download(request: Request, staff: ConfirmedAdminDep, settings: SettingsDep) -> Response:
    email = await _typed(request)
    try:
        report = await in_session(lambda s: _report(s, settings, email))
    except Unprocessable as exc:
        return await _page(request, email, errors=service_errors(exc), status=422)
    # The file's name says when, not whom: downloads are listed by name in the browser.
    name = f"personal-data-{utcnow().date().isoformat()}.json"
    return Response(
        privacy.as_json(report),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post("/erase/confirm", name="privacy_pages:confirm_erase")
async def confirm_erase(
    request: Request, staff: ConfirmedAdminDep, settings: SettingsDep
) -> Response:
    email = await _typed(request)
    try:
        places = await in_session(lambda s: _held(s, settings, email))
    except Unprocessable as exc:
        return await _page(request, email, errors=service_errors(exc), status=422)
    context = {
        "title": "Erase this address?",
        "email": privacy.normalized(email),
        "goes": [p for p in places if p.goes and p.records],
        "stays": [p for p in places if not p.goes and p.records],
        "backups": privacy.BACKUPS,
    }
    return await render_staff_page(request, "admin/privacy/confirm_erase.html", context)


@router.post("/erase", name="privacy_pages:erase")
async def erase(request: Request, staff: ConfirmedAdminDep, settings: SettingsDep) -> Response:
    """The one route that erases (every route here asks for the password given lately)."""
    email = await _typed(request)
    try:
        erased = await in_session(
            lambda s: privacy.erase_contact(s, settings, email, actor=staff.actor)
        )
    except Unprocessable as exc:
        return await _page(request, email, errors=service_errors(exc), status=422)
    Flash.success(request, _erased_message(erased), title="Erased")
    return RedirectResponse(request.url_for("privacy_pages:form"), 303)


def _erased_message(erased: privacy.Erased) -> str:
    kept = []
    if erased.kept_offers:
        n = erased.kept_offers
        kept.append(
            f"the customer snapshot of {n} offer{'s' if n != 1 else ''} (delete an offer for that)"
        )
    if erased.staff_account:
        kept.append("the staff account with this address (delete it on the Users page)")
    message = f"{erased.described()}. The audit log names the contact {erased.reference}."
    return message + (f" Kept: {'; '.join(kept)}." if kept else "")


PRIVACY_PAGES = StaffPages(
    router=router,
    menu=[MenuLink(TITLE, "privacy_pages:form", Role.ADMIN, icon="fa-solid fa-user-shield")],
)
