"""Staff pages of notifications (/admin/alerts): each user's alert preferences, and, in
development, the mails written to disk instead of sent.

A module of the staff site (it sits above app.notifications and calls its services); the
notifications package itself never imports the staff site.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import default
from email.utils import parsedate_to_datetime
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse
from starlette.responses import Response

from app.admin.access import AdminDep, StaffDep, require_role
from app.admin.forms import save_and_redirect
from app.admin.layout import MenuLink, StaffPages, render_staff_page
from app.admin.views.base import in_session
from app.auth.staff import Role
from app.config import Settings, SettingsDep
from app.errors import NotFound
from app.notifications import alerts, delivery
from app.notifications.alerts import AlertKind, AlertMode

router = APIRouter(prefix="/alerts", dependencies=[Depends(require_role(Role.VIEWER))])
MAIL_FILE = re.compile(r"\d{8}\.eml")
MAX_LISTED = 200


@router.get("/", name="notifications:alerts")
async def alert_preferences(request: Request, staff: StaffDep) -> Response:
    modes = await in_session(lambda s: alerts.preferences(s, staff.id))
    context = {"title": "My alerts", "modes": modes, "errors": {}, **_choices()}
    return await render_staff_page(request, "notifications/alerts.html", context)


@router.post("/", name="notifications:alerts_save")
async def save_alert_preferences(request: Request, staff: StaffDep) -> Response:
    form = await request.form()
    chosen = {kind: str(form.get(kind, "")) for kind in AlertKind}
    allowed = {mode.value for mode in AlertMode}
    errors = {
        kind.value: "Choose one of the options." for kind, v in chosen.items() if v not in allowed
    }
    modes = None if errors else {kind: AlertMode(value) for kind, value in chosen.items()}
    outcome = await save_and_redirect(
        request,
        (modes, errors),
        lambda s, valid: alerts.set_preferences(s, staff.id, valid),
        success=lambda _: "Your alert preferences are saved.",
        to=lambda _: request.url_for("notifications:alerts"),
    )
    if isinstance(outcome, Response):
        return outcome
    context = {"title": "My alerts", "modes": chosen, "errors": outcome, **_choices()}
    return await render_staff_page(request, "notifications/alerts.html", context, 422)


def _choices() -> dict[str, object]:
    return {"kinds": list(AlertKind), "mode_choices": list(AlertMode)}


@dataclass(frozen=True)
class WrittenMail:
    name: str
    date: datetime | None
    to: str
    subject: str


def _development_only(settings: Settings) -> None:
    # Written mails are for development: where mail goes out by SMTP there is nothing here.
    if settings.smtp_url or settings.env == "production":
        raise NotFound("Mails are sent by SMTP here; none are written to disk.")


def written_mails(directory: Path) -> list[WrittenMail]:
    """The newest mails written to disk, newest first, from their headers."""
    paths = sorted(directory.glob("*.eml"), reverse=True)[:MAX_LISTED]
    parser = BytesHeaderParser(policy=default)
    mails = []
    for path in paths:
        with path.open("rb") as file:
            headers = parser.parse(file)
        date = headers.get("Date")
        mails.append(
            WrittenMail(
                name=path.name,
                date=parsedate_to_datetime(str(date)) if date else None,
                to=str(headers.get("To", "")),
                subject=str(headers.get("Subject", "")),
            )
        )
    return mails


@router.get("/mail", name="notifications:written_mails")
async def mail_list(request: Request, staff: AdminDep, settings: SettingsDep) -> Response:
    _development_only(settings)
    directory = delivery.mail_directory(settings)
    context = {
        "title": "Mails written to disk",
        "mails": written_mails(directory),
        "directory": directory.resolve(),
    }
    return await render_staff_page(request, "notifications/written_mails.html", context)


@router.get("/mail/{name}", name="notifications:written_mail")
async def mail_file(name: str, staff: AdminDep, settings: SettingsDep) -> Response:
    _development_only(settings)
    path = delivery.mail_directory(settings) / name
    if not MAIL_FILE.fullmatch(name) or not path.is_file():
        raise NotFound("No such mail.")
    # As text: a mail's HTML part must not run as a page of the staff site.
    return PlainTextResponse(path.read_bytes(), headers={"Content-Disposition": "inline"})


def notification_pages(settings: Settings) -> StaffPages:
    """The pages and their menu entries; the written mails only where mails are written."""
    menu = [MenuLink("My alerts", "notifications:alerts", Role.VIEWER, icon="fa-solid fa-bell")]
    if not settings.smtp_url and settings.env != "production":
        menu.append(
            MenuLink(
                "Mails (development)",
                "notifications:written_mails",
                Role.ADMIN,
                icon="fa-solid fa-envelope",
            )
        )
    return StaffPages(router=router, menu=menu)
