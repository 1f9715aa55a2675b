"""Sudo mode: sensitive staff actions need the password (or a current two-factor code) given
recently, as GitHub and Google ask, so that a staff page left open or a copied session cookie
is not enough to make an admin, reset a password or hand out an API key.

When it was last given is kept on the server's session row (``confirmed_at``): signing in
sets it, the "Confirm access" page (app/admin/confirm_access.py) sets it again, and it ends
with the session. Which actions are sensitive is said once, where each route names its role:
``require_role(..., confirmed=True)`` (app/admin/access.py) for the staff site's own routes,
``confirm_before`` for sqladmin's views (app/admin/views/base.py). Both end in
``ask_unless_confirmed``; ``tests/security/test_route_walks.py`` fails when an admin's
change is neither marked nor listed as ordinary work.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session
from starlette.datastructures import UploadFile
from starlette.requests import Request

from app import audit
from app.admin import reveal, throttle, twofactor, users
from app.admin import sessions as staff_sessions
from app.admin.users import Staff
from app.config import get_settings
from app.db import read_only, utcnow
from app.errors import AppError

# A form held across the confirmation: in the cookie, sealed (a new user's password may be in
# it), good for as long as the confirmation may take.
HELD_FORM = "sudo_form"
HOLD_SECONDS = 600
# The cookie holds about 4 KB in all; a larger form is not held (its sender is told).
MAX_HELD_BYTES = 2000
_PURPOSE = b"offertrack-staff-sudo-form"
# The request's confirmation, set by app.admin.access.current_staff from the session's row.
STATE_CONFIRMED_AT = "staff_confirmed_at"


class ConfirmAccess(AppError):
    """A sensitive action without a recent confirmation: nothing was done; the staff site
    answers with the "Confirm access" page (app/admin/site.py)."""

    status_code = 303
    title = "Confirm access"

    def __init__(self, held: bool) -> None:
        super().__init__("Confirm your password to continue.")
        self.held = held


def minutes() -> int:
    return get_settings().sudo_minutes


def is_recent(confirmed_at: datetime | None, now: datetime | None = None) -> bool:
    """Whether a confirmation at ``confirmed_at`` still lets sensitive actions through."""
    if confirmed_at is None:
        return False
    return (now or utcnow()) - confirmed_at <= timedelta(minutes=minutes())


async def ask_unless_confirmed(request: Request) -> None:
    """Raise ConfirmAccess unless this request's session confirmed recently. A form sent
    meanwhile is held (sealed) for after the confirmation, unless it is too large."""
    if is_recent(getattr(request.state, STATE_CONFIRMED_AT, None)):
        return
    held = False
    if request.method not in ("GET", "HEAD"):
        held = hold_form(request, request.url.path, await _typed_fields(request))
    else:
        # A page asks now: a form held earlier and left behind is not offered after it.
        request.session.pop(HELD_FORM, None)
    raise ConfirmAccess(held)


async def _typed_fields(request: Request) -> list[tuple[str, str]]:
    form = await request.form()
    return [
        (name, value)
        for name, value in form.multi_items()
        if name != "csrf_token" and not isinstance(value, UploadFile)
    ]


def hold_form(request: Request, to: str, fields: list[tuple[str, str]]) -> bool:
    """Keep what was typed for the page after the confirmation; False when it is too large."""
    text = json.dumps(fields)
    request.session.pop(HELD_FORM, None)
    if len(text.encode()) > MAX_HELD_BYTES:
        return False
    request.session[HELD_FORM] = {"to": to, "sealed": reveal.seal(text, _PURPOSE)}
    return True


@dataclass(frozen=True)
class HeldForm:
    to: str  # the path the form was sent to
    fields: list[tuple[str, str]]


def take_held_form(request: Request) -> HeldForm | None:
    """The form held for after the confirmation, removed from the session."""
    held = request.session.pop(HELD_FORM, None)
    if not isinstance(held, dict) or not str(held.get("to", "")).startswith("/admin/"):
        return None
    text = reveal.unseal(held.get("sealed"), _PURPOSE, HOLD_SECONDS)
    if text is None:
        return None
    fields = [(str(name), str(value)) for name, value in json.loads(text)]
    return HeldForm(str(held["to"]), fields)


def held_form_target(request: Request) -> str:
    """Where the held form goes (for the confirm page to say so); empty without one."""
    held = request.session.get(HELD_FORM)
    return str(held.get("to", "")) if isinstance(held, dict) else ""


def confirm_with_password(
    session: Session, staff: Staff, session_id: int, password: str, who: throttle.Attempt
) -> None:
    """The user's password, counted and throttled as at sign-in (``who`` is a sign-in
    attempt's key), confirms the session; both outcomes are audited. Commits."""
    try:
        users.sign_in(session, staff.email, password, who)
    except AppError as exc:
        _failed(session, staff, "password", exc)
        raise
    _confirmed(session, staff, session_id, "password")


def confirm_with_code(
    session: Session, staff: Staff, session_id: int, code: str, who: throttle.Attempt
) -> None:
    """A current code of the user's app (or a recovery code, used up), counted and throttled
    as the sign-in's second step; both outcomes are audited. Commits."""
    try:
        throttle.count_attempt(session, who)
        if not twofactor.verify(session, staff.id, code):
            raise twofactor.WrongCode()
    except AppError as exc:
        _failed(session, staff, "code", exc)
        raise
    throttle.forgive(session, who)
    _confirmed(session, staff, session_id, "code")


def has_second_factor(session: Session, user_id: int) -> bool:
    with read_only(session):
        return twofactor.is_enabled(session, user_id)


def _confirmed(session: Session, staff: Staff, session_id: int, by: str) -> None:
    staff_sessions.confirm(session, session_id)
    _audit(session, staff, "staff_user.access_confirmed", f"{staff.email} confirmed access", by)
    session.commit()


def _failed(session: Session, staff: Staff, by: str, exc: AppError) -> None:
    session.rollback()
    summary = f"{staff.email} failed to confirm access ({exc.status_code})"
    _audit(session, staff, "staff_user.access_confirm_failed", summary, by)
    session.commit()


def _audit(session: Session, staff: Staff, action: str, summary: str, by: str) -> None:
    audit.record(
        session,
        actor=staff.actor,
        action=action,
        entity_type="staff_user",
        entity_id=staff.id,
        summary=summary,
        changes={"with": by},
    )
