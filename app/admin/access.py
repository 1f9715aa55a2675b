"""Who is signed in, and what their role lets them do: one answer for sqladmin's views and
for plain FastAPI routes of the staff site.

The staff session is kept on the server (app.admin.sessions); its signed cookie of its own
(``ot_staff``, path ``/admin``, never meeting the public site's ``ot_csrf``) holds the
session's random id, the CSRF token of the staff forms and flash messages.
"""

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

import anyio
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqladmin.authentication import AuthenticationBackend
from sqladmin.authorization import AuthorizationBackend
from sqladmin.flash import Flash
from sqlmodel import Session
from starlette.datastructures import URL

from app import csrf
from app.admin import sessions, sudo, twofactor, users
from app.admin.users import Staff
from app.auth.staff import Role
from app.config import get_settings
from app.db import get_engine, read_only, utcnow
from app.errors import AppError
from app.formats import DecimalMark
from app.templating import is_htmx

T = TypeVar("T")

SESSION_COOKIE = "ot_staff"
CSRF_FIELD, CSRF_HEADER = csrf.CSRF_FIELD, csrf.CSRF_HEADER
_SID, _CSRF, _PENDING = "sid", "csrf", "pending_2fa"
# How long the second step of a sign-in may take after the password.
PENDING_FOR = timedelta(minutes=5)
SESSION_ENDED = "Your session had ended, so nothing was saved. Sign in, then send it again."


class LoginRequired(AppError):
    status_code = 401
    title = "Please sign in"

    def __init__(self) -> None:
        super().__init__("Please sign in to continue.")


def sign_in_again(request: Request, status_code: int = 303) -> Response:
    """The sign-in page for a request without a live session, and back afterwards: to the page
    asked for or, for a form, to the page it was sent from. A form's sender is told that
    nothing was saved, since what they typed is not carried through the sign-in."""
    if is_htmx(request):
        # A fragment (the editor's totals) has nowhere to show the sign-in page: htmx swaps
        # nothing on a 401, the person keeps typing, and their next save is told.
        return Response(status_code=401)
    root = request.scope.get("root_path", "")
    back = request.url.path
    # The dashboard is where signing in leads anyway; back to the sign-out page would only
    # ask again.
    if back in (root + "/", root + "/logout"):
        back = ""
    if request.method not in ("GET", "HEAD"):
        Flash.warning(request, SESSION_ENDED)
        back = _own_referer_path(request)
    login = URL(root + "/login")
    if back:
        login = login.include_query_params(next=back)
    return RedirectResponse(str(login), status_code=status_code)


def safe_next(target: str) -> str:
    """Only a path inside the staff site: never another host (open redirect)."""
    if target.startswith("/admin/") and "\\" not in target and target.isprintable():
        return target
    return ""


def _own_referer_path(request: Request) -> str:
    # The sign-in page checks it again: a path of the staff site only.
    referer = urlsplit(request.headers.get("referer", ""))
    return referer.path if referer.netloc == request.url.netloc else ""


class Forbidden(AppError):
    status_code = 403
    title = "Not allowed"

    def __init__(self, required: Role) -> None:
        super().__init__(f"This needs the {required} role; ask an admin if you need to do it.")


def csrf_token(request: Request) -> str:
    """The staff session's CSRF token, created on first use."""
    token = request.session.get(_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[_CSRF] = token
    return token


def decimal_mark(request: Request) -> DecimalMark:
    """How the signed-in staff user types and reads numbers (a point before sign-in)."""
    staff = getattr(request.state, "staff", None)
    return staff.decimal_mark if isinstance(staff, Staff) else DecimalMark.POINT


def carries_a_session(session: dict[str, Any]) -> bool:
    """Whether the cookie names a staff session (live or not): not after sign-out or without
    the cookie, when only the sign-in form's token may be there."""
    return isinstance(session.get(_SID), str)


def expected_csrf_token(session: dict[str, Any]) -> str | None:
    token = session.get(_CSRF)
    return token if isinstance(token, str) else None


async def start_session(request: Request, staff: Staff, *, second_factor: bool) -> None:
    """A fresh session (and CSRF token) at every sign-in, so none can be planted beforehand."""
    user_agent = request.headers.get("user-agent", "")

    def start(session: Session) -> str:
        return sessions.start(session, staff.id, user_agent, second_factor=second_factor)

    token = await anyio.to_thread.run_sync(_in_session, start)
    request.session.clear()
    request.session.update({_SID: token, _CSRF: secrets.token_urlsafe(32)})
    request.state.staff = staff


def use_renewed_session(request: Request, token: str) -> None:
    """The cookie carries the session's new token (sessions.renew); its CSRF token stays, so
    forms open in other tabs of this browser still send."""
    request.session[_SID] = token


def hold_for_second_factor(request: Request, staff: Staff, next_path: str) -> None:
    """The password was right; the session starts once the second factor is given too. Until
    then the cookie only says whose code is awaited (for PENDING_FOR)."""
    request.session.clear()
    pending = {"uid": staff.id, "at": utcnow().isoformat(), "next": next_path}
    request.session.update({_PENDING: pending, _CSRF: secrets.token_urlsafe(32)})


def pending_second_factor(request: Request) -> tuple[int, str] | None:
    """Whose second factor is awaited, and where to go then; None when nobody's is."""
    pending = request.session.get(_PENDING)
    if not isinstance(pending, dict) or not isinstance(pending.get("uid"), int):
        return None
    try:
        since = datetime.fromisoformat(str(pending.get("at")))
    except ValueError:
        return None
    if utcnow() - since > PENDING_FOR:
        return None
    return pending["uid"], str(pending.get("next", ""))


async def end_session(request: Request) -> None:
    """Sign-out: the server forgets the session, so a copy of the cookie is worthless too."""
    token = request.session.get(_SID)
    if isinstance(token, str):
        await anyio.to_thread.run_sync(_in_session, lambda s: sessions.end(s, token))
    request.session.clear()
    request.state.staff = None


def _in_session(work: Callable[[Session], T]) -> T:
    with Session(get_engine(), expire_on_commit=False) as session:
        return work(session)


def _load(token: str, idle: timedelta) -> tuple[Staff, sessions.LiveSession] | None:
    with Session(get_engine()) as session, read_only(session):
        live = sessions.find_live(session, token, idle)
        staff = users.load_active(session, live.user_id) if live else None
    if staff is None or live is None:
        return None
    sessions.touch(get_engine(), live)
    return staff, live


async def _end_without_second_factor(request: Request) -> None:
    """Sign-in would not start this session today: it began on the password alone, and this
    admin must now give a second factor too (OFFERTRACK_REQUIRE_ADMIN_2FA switched on since).
    It ends rather than being let through to set one up, so a stolen cookie cannot enrol its
    thief's app: signing in again asks for the password, then the code or its set-up."""
    await end_session(request)
    Flash.warning(
        request,
        "Admins must now sign in with two-factor sign-in. Please sign in again: you will be "
        "asked for a code from your authenticator app, or to set one up.",
    )


async def current_staff(request: Request) -> Staff | None:
    """The signed-in staff user, loaded once per request; None when signed out."""
    if "staff" in request.state._state:
        staff: Staff | None = request.state.staff
        return staff
    token = request.session.get(_SID)
    staff = None
    if isinstance(token, str):
        idle = timedelta(minutes=get_settings().admin_idle_minutes)
        found = await anyio.to_thread.run_sync(_load, token, idle)
        if found is None:  # signed out, ended elsewhere, expired, or the user deactivated
            request.session.clear()
        elif twofactor.required(found[0], get_settings()) and not found[1].second_factor:
            await _end_without_second_factor(request)
        else:
            staff, live = found
            request.state.staff_session_id = live.id
            setattr(request.state, sudo.STATE_CONFIRMED_AT, live.confirmed_at)
            sessions.current_session_id.set(live.id)
    request.state.staff = staff
    return staff


def require_role(role: Role, *, confirmed: bool = False) -> Callable[[Request], Awaitable[Staff]]:
    """A dependency for staff routes: the signed-in user, if their role includes ``role``;
    ``confirmed``: a sensitive action, which also needs the password given recently
    (app/admin/sudo.py).

    Signed out: a redirect to the sign-in page; signed in without the role: a 403 page;
    not confirmed recently: the "Confirm access" page, nothing done.
    """

    async def dependency(request: Request) -> Staff:
        staff = await current_staff(request)
        if staff is None:
            raise LoginRequired()
        if not staff.can(role):
            raise Forbidden(role)
        if confirmed:
            await sudo.ask_unless_confirmed(request)
        return staff

    dependency.__name__ = f"require_{role}"
    dependency.asks_confirmation = confirmed  # type: ignore[attr-defined]
    return dependency


StaffDep = Annotated[Staff, Depends(require_role(Role.VIEWER))]
SalesDep = Annotated[Staff, Depends(require_role(Role.SALES))]
AdminDep = Annotated[Staff, Depends(require_role(Role.ADMIN))]
# Sensitive actions (sudo mode): what grants access, moves ownership, reveals or creates a
# secret, or sends data out of the company.
ConfirmedStaffDep = Annotated[Staff, Depends(require_role(Role.VIEWER, confirmed=True))]
ConfirmedAdminDep = Annotated[Staff, Depends(require_role(Role.ADMIN, confirmed=True))]


class StaffAuthentication(AuthenticationBackend):
    """sqladmin's sign-in check. Sign-in and sign-out themselves are the staff site's own
    routes (with CSRF tokens and throttling), which shadow sqladmin's."""

    def __init__(self) -> None:
        # No SessionMiddleware of sqladmin's own: the staff site wraps everything in one.
        self.middlewares = []

    async def authenticate(self, request: Request) -> bool | Response:
        # sqladmin's own answer to a signed-out request forgets where it was going (a staff
        # alert's "Open the offer" would end on the dashboard).
        return await current_staff(request) is not None or sign_in_again(request, 302)

    async def get_user_id(self, request: Request) -> int | None:
        staff = await current_staff(request)
        return staff.id if staff else None

    async def login(self, request: Request) -> bool:
        return False

    async def logout(self, request: Request) -> bool:
        await end_session(request)
        return False


class RoleAuthorization(AuthorizationBackend):
    """Every sqladmin list, detail, export and action is checked against the view's
    ``permissions`` table (action → lowest role allowed); anything not listed is refused."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, Role]] = {}

    def register(self, identity: str, permissions: dict[str, Role]) -> None:
        self._tables[identity] = dict(permissions)

    def has_permission(
        self, request: Request, identity: str, action: str, obj: Any | None = None
    ) -> bool:
        staff: Staff | None = getattr(request.state, "staff", None)
        required = self._tables.get(identity, {}).get(str(action))
        return staff is not None and required is not None and staff.can(required)
