"""Who is signed in, and what their role lets them do: one answer for sqladmin's views and
for plain FastAPI routes of the staff site.

The staff session is a signed cookie of its own (``ot_staff``, path ``/admin``), so it never
meets the public site's ``ot_csrf`` cookie. It holds the user's id and session version, the
sign-in time and the CSRF token of the staff forms.
"""

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

import anyio
from fastapi import Depends, Request
from sqladmin.authentication import AuthenticationBackend
from sqladmin.authorization import AuthorizationBackend
from sqlmodel import Session

from app import csrf
from app.admin import users
from app.admin.users import Staff
from app.auth.staff import Role
from app.db import get_engine, read_only, utcnow
from app.errors import AppError

SESSION_COOKIE = "ot_staff"
CSRF_FIELD, CSRF_HEADER = csrf.CSRF_FIELD, csrf.CSRF_HEADER
_UID, _VERSION, _CSRF, _SIGNED_IN = "uid", "ver", "csrf", "signed_in"
# However busy, a session ends this long after sign-in; idleness ends it sooner (cookie age).
MAX_SESSION_AGE = timedelta(hours=12)


class LoginRequired(AppError):
    status_code = 401
    title = "Please sign in"

    def __init__(self) -> None:
        super().__init__("Please sign in to continue.")


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


def expected_csrf_token(session: dict[str, Any]) -> str | None:
    token = session.get(_CSRF)
    return token if isinstance(token, str) else None


def start_session(request: Request, staff: Staff) -> None:
    """A fresh session (and CSRF token) at every sign-in, so none can be planted beforehand."""
    request.session.clear()
    request.session.update(
        {
            _UID: staff.id,
            _VERSION: staff.session_version,
            _SIGNED_IN: utcnow().isoformat(),
            _CSRF: secrets.token_urlsafe(32),
        }
    )
    request.state.staff = staff


def end_session(request: Request) -> None:
    request.session.clear()
    request.state.staff = None


def _expired(signed_in: object) -> bool:
    try:
        started = datetime.fromisoformat(str(signed_in))
    except ValueError:
        return True
    return utcnow() - started > MAX_SESSION_AGE


def _load(user_id: int, version: int) -> Staff | None:
    with Session(get_engine()) as session, read_only(session):
        return users.load_staff(session, user_id, version)


async def current_staff(request: Request) -> Staff | None:
    """The signed-in staff user, loaded once per request; None when signed out."""
    if "staff" in request.state._state:
        staff: Staff | None = request.state.staff
        return staff
    uid, version = request.session.get(_UID), request.session.get(_VERSION)
    staff = None
    if isinstance(uid, int) and isinstance(version, int):
        if _expired(request.session.get(_SIGNED_IN)):
            request.session.clear()
        else:
            staff = await anyio.to_thread.run_sync(_load, uid, version)
            if staff is None:  # deactivated, or the password changed since
                request.session.clear()
    request.state.staff = staff
    return staff


def require_role(role: Role) -> Callable[[Request], Awaitable[Staff]]:
    """A dependency for staff routes: the signed-in user, if their role includes ``role``.

    Signed out: a redirect to the sign-in page; signed in without the role: a 403 page.
    """

    async def dependency(request: Request) -> Staff:
        staff = await current_staff(request)
        if staff is None:
            raise LoginRequired()
        if not staff.can(role):
            raise Forbidden(role)
        return staff

    dependency.__name__ = f"require_{role}"
    return dependency


StaffDep = Annotated[Staff, Depends(require_role(Role.VIEWER))]
SalesDep = Annotated[Staff, Depends(require_role(Role.SALES))]
AdminDep = Annotated[Staff, Depends(require_role(Role.ADMIN))]


class StaffAuthentication(AuthenticationBackend):
    """sqladmin's sign-in check. Sign-in and sign-out themselves are the staff site's own
    routes (with CSRF tokens and throttling), which shadow sqladmin's."""

    def __init__(self) -> None:
        # No SessionMiddleware of sqladmin's own: the staff site wraps everything in one.
        self.middlewares = []

    async def authenticate(self, request: Request) -> bool:
        return await current_staff(request) is not None

    async def get_user_id(self, request: Request) -> int | None:
        staff = await current_staff(request)
        return staff.id if staff else None

    async def login(self, request: Request) -> bool:
        return False

    async def logout(self, request: Request) -> bool:
        end_session(request)
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
